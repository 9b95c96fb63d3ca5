package testenv

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// SmallFS mounts a tmpfs of size bytes on a fresh folder for the test and
// unmounts it at the end: a file system a test can fill. It needs root; without
// it the test fails under CI and skips elsewhere.
func SmallFS(t testing.TB, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		unavailable(t, "mounting a small file system needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.Itoa(size), "vwstream-test", dir).CombinedOutput(); err != nil {
		unavailable(t, "mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}
