package testenv

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// AgeDecryptPassphrase runs `age -d -o out in` as a user would, typing the
// passphrase at the terminal: age 1.1 reads passphrases only from a terminal,
// so script(1) gives it a pseudo-terminal fed from stdin. It returns age's
// error and output, for tests that expect a wrong passphrase to fail.
func AgeDecryptPassphrase(t testing.TB, in, out, passphrase string) ([]byte, error) {
	t.Helper()
	age := Tool(t, "age")
	script := Tool(t, "script")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmdline := strings.Join([]string{shellQuote(age), "-d", "-o", shellQuote(out), shellQuote(in)}, " ")
	cmd := exec.CommandContext(ctx, script, "-qec", cmdline, "/dev/null")
	cmd.Stdin = strings.NewReader(passphrase + "\n")
	return cmd.CombinedOutput()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
