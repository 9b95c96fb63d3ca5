//go:build norclone

package objstore

import (
	"context"
	"errors"
	"log/slog"
)

// RcloneOptions configure NewRclone.
type RcloneOptions struct {
	Remotes         map[string]map[string]string
	LowLevelRetries int
	Logger          *slog.Logger
}

// NewRclone is unavailable in binaries built with -tags norclone (lighter
// builds and test binaries without rclone's backends).
func NewRclone(ctx context.Context, remote string, opts RcloneOptions) (Store, error) {
	return nil, errors.New("rclone remotes are not built into this binary (built with -tags norclone)")
}
