//go:build !norclone

package objstore_test

import (
	"testing"

	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/objstore/storetest"
)

// The rclone store passes the conformance suite over rclone's local backend
// (conditional puts are emulated: atomic within one process only).
func TestRclone_Conformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Target {
		remotes := map[string]map[string]string{"disk": {"type": "local"}}
		s, err := objstore.NewRclone(t.Context(), "disk:"+t.TempDir(), objstore.RcloneOptions{Remotes: remotes})
		if err != nil {
			t.Fatal(err)
		}
		return storetest.Target{Store: s}
	})
}

// An unknown remote or backend is refused with the variable to set.
func TestNewRclone_Unknown(t *testing.T) {
	if _, err := objstore.NewRclone(t.Context(), "nowhere:x", objstore.RcloneOptions{}); err == nil {
		t.Fatal("NewRclone with an unconfigured remote succeeded")
	}
	remotes := map[string]map[string]string{"ftp": {"type": "ftp"}}
	if _, err := objstore.NewRclone(t.Context(), "ftp:x", objstore.RcloneOptions{Remotes: remotes}); err == nil {
		t.Fatal("NewRclone with a backend that is not built in succeeded")
	}
}
