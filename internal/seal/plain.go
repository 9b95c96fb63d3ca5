package seal

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
)

// ErrSealedPrefix reports a prefix that holds a bucket key or sealed objects,
// met by a caller without the key: writing it in plaintext would downgrade it
// (plaintext objects beside sealed ones, which the passphrase then no longer
// restores), and reading it in plaintext would report age files as damage.
var ErrSealedPrefix = errors.New("the prefix holds sealed data")

// CheckUnsealed returns an error matching ErrSealedPrefix, naming what it
// found, when store (the plain store at the prefix) holds a bucket key under
// keys/ or an age file as the first object under db/, files/ or trash/. It
// costs a few requests: Stats of the key objects, and a listing and a ranged
// Get of the first object per prefix. It writes nothing.
func CheckUnsealed(ctx context.Context, store objstore.Store) error {
	opts := KeyOptions{}
	for _, p := range []string{opts.path(), opts.recipientPath(), opts.markerPath()} {
		_, err := store.Stat(ctx, p)
		if err == nil {
			return fmt.Errorf("%w: %s is there", ErrSealedPrefix, p)
		} else if !errors.Is(err, objstore.ErrNotFound) {
			return fmt.Errorf("look for a bucket key at %s: %w", p, err)
		}
	}
	const intro = "age-encryption.org/v1\n"
	for _, prefix := range layout.Sealed {
		for info, err := range store.List(ctx, prefix) {
			if err != nil {
				return fmt.Errorf("look for sealed data under %s: %w", prefix, err)
			}
			if info.Size < PayloadOffset {
				break
			}
			rc, err := store.Get(ctx, info.Key, 0, int64(len(intro)))
			if errors.Is(err, objstore.ErrNotFound) {
				break
			} else if err != nil {
				return fmt.Errorf("look for sealed data in %s: %w", info.Key, err)
			}
			head, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return fmt.Errorf("look for sealed data in %s: %w", info.Key, err)
			}
			if string(head) == intro {
				return fmt.Errorf("%w: %s is sealed", ErrSealedPrefix, info.Key)
			}
			break
		}
	}
	return nil
}
