package status

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// Writer timing: the file is rewritten every DefaultWriteInterval so its
// timestamp proves the daemon is alive, and at most every minWriteGap on change.
const (
	DefaultWriteInterval = 5 * time.Second
	minWriteGap          = 250 * time.Millisecond
)

// WriteFile writes doc to path atomically: a temporary file in the same folder,
// renamed over path, so a reader sees the old document or the new one, never half.
func WriteFile(path string, doc Status) error {
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("write status file: %w", err)
	}
	b = append(b, '\n')
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write status file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// Readable by a healthcheck running as another user; it holds no secret.
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("write status file: %w", err)
	}
	return nil
}

// ReadFile reads a status document written by WriteFile.
func ReadFile(path string) (*Status, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read status file: %w", err)
	}
	var doc Status
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("read status file %s: %w", path, err)
	}
	return &doc, nil
}

// WriteLoop writes the board's document to path now, on every change (at most
// every 250 ms) and every interval (DefaultWriteInterval when zero) until ctx
// ends, then once more, so the last state (stopping) is on disk. Write errors
// are logged once until a write succeeds again.
func (b *Board) WriteLoop(ctx context.Context, path string, interval time.Duration, log *slog.Logger) {
	if interval <= 0 {
		interval = DefaultWriteInterval
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var lastErr string
	write := func() {
		err := WriteFile(path, b.Snapshot())
		switch {
		case err != nil && err.Error() != lastErr:
			log.Warn("status file not written", "path", path, "error", err)
			lastErr = err.Error()
		case err == nil && lastErr != "":
			log.Info("status file written again", "path", path)
			lastErr = ""
		}
	}
	write()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			write()
			return
		case <-tick.C:
		case <-b.Changed():
			// Coalesce bursts of updates into one write.
			select {
			case <-ctx.Done():
				write()
				return
			case <-time.After(minWriteGap):
			}
		}
		write()
	}
}
