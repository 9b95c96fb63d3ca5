package rclone_test

import (
	"testing"

	"github.com/vwstream/vwstream/internal/objstore/rclone"
	"github.com/vwstream/vwstream/internal/objstore/storetest"
)

// The rclone store passes the conformance suite over rclone's local backend
// (conditional puts are emulated: atomic within one process only).
func TestRclone_Conformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Target {
		remotes := map[string]map[string]string{"disk": {"type": "local"}}
		s, err := rclone.New(t.Context(), "disk:"+t.TempDir(), rclone.Options{Remotes: remotes})
		if err != nil {
			t.Fatal(err)
		}
		return storetest.Target{Store: s}
	})
}

// An unknown remote or backend is refused with the variable to set.
func TestNew_Unknown(t *testing.T) {
	if _, err := rclone.New(t.Context(), "nowhere:x", rclone.Options{}); err == nil {
		t.Fatal("NewRclone with an unconfigured remote succeeded")
	}
	remotes := map[string]map[string]string{"ftp": {"type": "ftp"}}
	if _, err := rclone.New(t.Context(), "ftp:x", rclone.Options{Remotes: remotes}); err == nil {
		t.Fatal("NewRclone with a backend that is not built in succeeded")
	}
}
