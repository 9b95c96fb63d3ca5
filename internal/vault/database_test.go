package vault_test

import (
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vault"
)

// InUse sees a database another process (the stock sqlite3 shell) has open in
// WAL mode, and a free one as free.
func TestInUse(t *testing.T) {
	sqlite3 := testenv.Tool(t, "sqlite3")
	db := filepath.Join(t.TempDir(), "db.sqlite3")
	if out, err := exec.Command(sqlite3, db, "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);").CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v: %s", err, out)
	}
	if busy, err := vault.InUse(db); err != nil || busy {
		t.Fatalf("InUse of a closed database = %v, %v; want false", busy, err)
	}

	cmd := exec.Command(sqlite3, db)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// A read opens the WAL index; the shell then keeps the connection open.
	if _, err := io.WriteString(stdin, "SELECT 'open', count(*) FROM t;\n"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := stdout.Read(buf)
	if !strings.Contains(string(buf[:n]), "open") {
		t.Fatalf("sqlite3 answered %q", buf[:n])
	}
	if busy, err := vault.InUse(db); err != nil || !busy {
		t.Fatalf("InUse while sqlite3 has it open = %v, %v; want true", busy, err)
	}

	_ = stdin.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("sqlite3 did not exit")
	}
	if busy, err := vault.InUse(db); err != nil || busy {
		t.Fatalf("InUse after sqlite3 closed it = %v, %v; want false", busy, err)
	}
}
