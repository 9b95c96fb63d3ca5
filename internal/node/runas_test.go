package node_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/vwstream/vwstream/internal/node"
	"github.com/vwstream/vwstream/internal/testenv"
)

// With RUN_AS, a node started as root runs its child as that user and group,
// with no supplementary groups.
func TestNode_ChildRunsAs(t *testing.T) {
	if os.Geteuid() != 0 {
		if testenv.InCI() {
			t.Fatal("RUN_AS switches users: the test needs root")
		}
		t.Skip("RUN_AS switches users: the test needs root")
	}
	s := testenv.NewS3(t)
	cfg := s3Config(t, s, t.TempDir(), "RUN_AS=65534:65533")
	var out testenv.SyncBuffer
	err := node.Run(context.Background(), node.Options{
		Config: cfg, Command: []string{"sh", "-c", `echo "ids $(id -u):$(id -g) groups $(id -G)"`},
		Env: os.Environ(), Stdout: &out, Stderr: testWriter{t}, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	got := out.String()
	if !strings.Contains(got, "ids 65534:65533 groups 65533\n") {
		t.Fatalf("child output %q, want it to run as 65534:65533 without root's groups", got)
	}
}
