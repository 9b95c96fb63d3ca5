package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/vwstream/vwstream/internal/bucket"
	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/seal"
)

// rekeyResult is what `vwstream rekey --json` prints.
type rekeyResult struct {
	Key       string `json:"key"`       // the re-wrapped key object
	Recipient string `json:"recipient"` // the bucket key's public recipient (unchanged)
}

// runRekey is `vwstream rekey`: the bucket key, re-wrapped with a new passphrase.
func runRekey(ctx context.Context, a *app, args []string) error {
	c := a.newCLI("rekey [--json] [flags]",
		"Re-wrap the bucket key (keys/age-identity.age) with NEW_ENCRYPTION_PASSPHRASE, after\n"+
			"ENCRYPTION_PASSPHRASE opened it. The replica, the files and the snapshots are not\n"+
			"touched: they stay sealed with the same key. The key object is replaced only if\n"+
			"nobody changed it meanwhile. Then give every node the new ENCRYPTION_PASSPHRASE.")
	asJSON := c.Bool("json", false, "print the result as JSON")
	cfg, err := a.parseAndLoad(c, args, false)
	if err != nil {
		return err
	}
	switch {
	case cfg.Encryption.Passphrase == "":
		return usageErrorf("rekey: ENCRYPTION_PASSPHRASE (the current passphrase) is not set")
	case cfg.Encryption.NewPassphrase == "":
		return usageErrorf("rekey: NEW_ENCRYPTION_PASSPHRASE (or NEW_ENCRYPTION_PASSPHRASE_FILE) is not set")
	case cfg.Encryption.NewPassphrase == cfg.Encryption.Passphrase:
		return usageErrorf("rekey: NEW_ENCRYPTION_PASSPHRASE is the current passphrase")
	}
	plain, err := bucket.Open(ctx, cfg, newLogger(cfg, a.stderr))
	if err != nil {
		return err
	}
	key, err := seal.ChangePassphrase(ctx, plain, cfg.Encryption.Passphrase, cfg.Encryption.NewPassphrase, seal.KeyOptions{})
	if errors.Is(err, seal.ErrNoKey) {
		return fmt.Errorf("rekey: %w", err)
	} else if err != nil {
		return fmt.Errorf("rekey (current passphrase from %s): %w", cfg.Encryption.PassphraseSource, err)
	}
	res := rekeyResult{Key: layout.KeyPath, Recipient: key.Recipient()}
	if *asJSON {
		return printJSON(a.stdout, res)
	}
	fmt.Fprintf(a.stdout, "re-wrapped %s in %s with NEW_ENCRYPTION_PASSPHRASE (recipient %s)\n", res.Key, plain, res.Recipient)
	fmt.Fprintln(a.stdout, "set ENCRYPTION_PASSPHRASE to the new passphrase on every node; the old one no longer opens the key")
	return nil
}
