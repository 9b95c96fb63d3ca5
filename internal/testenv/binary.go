package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// binPrefix names the folders Binaries builds into; binMaxAge is when a
// folder left by an earlier test process is swept.
const (
	binPrefix = "vwstream-test-bin-"
	binMaxAge = 2 * time.Hour
)

var (
	binMu  sync.Mutex
	binDir string
	binErr error
	built  = map[string]string{} // import path -> executable
)

// Binaries builds the commands with these import paths (for example
// "github.com/vwstream/vwstream/cmd/vwload") once per test process, without
// -race (the in-process tests cover races, and the build stays short), and
// returns the executables' paths in the same order.
func Binaries(t testing.TB, pkgs ...string) []string {
	t.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	if binDir == "" && binErr == nil {
		sweepBinaries()
		binDir, binErr = os.MkdirTemp("", binPrefix)
	}
	if binErr != nil {
		t.Fatal(binErr)
	}
	out := make([]string, len(pkgs))
	for i, pkg := range pkgs {
		if exe, ok := built[pkg]; ok {
			out[i] = exe
			continue
		}
		exe := filepath.Join(binDir, path.Base(pkg))
		if b, err := exec.Command("go", "build", "-o", exe, pkg).CombinedOutput(); err != nil {
			t.Fatal(fmt.Errorf("go build %s: %v\n%s", pkg, err, b))
		}
		built[pkg], out[i] = exe, exe
	}
	return out
}

// sweepBinaries removes binary folders of earlier test processes (a package
// has no hook after its last test without a TestMain).
func sweepBinaries() {
	old, _ := filepath.Glob(filepath.Join(os.TempDir(), binPrefix+"*"))
	for _, d := range old {
		if fi, err := os.Stat(d); err == nil && time.Since(fi.ModTime()) > binMaxAge {
			_ = os.RemoveAll(d)
		}
	}
}
