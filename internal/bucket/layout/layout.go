// Package layout names every object vwstream keeps under S3_PREFIX: the one
// list of the bucket's layout (docs/FORMAT.md describes each). It is a leaf,
// so every capability can name its own objects from here, and it answers the
// one question about the layout that several of them ask: does this prefix
// already hold sealed data.
package layout

import (
	"context"
	"fmt"

	"github.com/vwstream/vwstream/internal/objstore"
)

// The object names under the prefix.
const (
	// DB holds the database replica (LTX files, litestream's key layout), sealed.
	DB = "db/"
	// Files holds one sealed object per synced file, and the file manifest.
	Files = "files/"
	// Trash holds sealed files that were deleted locally, until retention ends.
	Trash = "trash/"
	// TrashFiles is where file sync puts them: trash/files/<path>@<unix seconds>.
	TrashFiles = Trash + "files/"
	// Keys holds the bucket key wrapped with the passphrase, and its recipient.
	Keys = "keys/"
	// KeyPath is the bucket key, an age file wrapped with the passphrase (scrypt).
	KeyPath = Keys + "age-identity.age"
	// RecipientPath is the bucket key's public age recipient, in plain text.
	RecipientPath = Keys + "age-recipient.txt"
	// MarkerPath records that the prefix's objects are authenticated (the
	// upgrade marker, docs/FORMAT.md "Authentication").
	MarkerPath = Keys + "objects-authenticated"
	// Head is the replica's freshness record (internal/head), sealed.
	Head = "head"
	// Snapshots holds the snapshot archives, their sidecars and the latest copy.
	Snapshots = "snapshots/"
	// Lease is the primary's lease (conditional writes).
	Lease = "lease"
)

// Sealed lists the prefixes whose objects are sealed with the bucket key.
var Sealed = []string{DB, Files, Trash}

// HoldsSealedData reports the first prefix of Sealed under which store holds
// an object, or "" when it holds none: a prefix with sealed data must never get
// a new bucket key, nor be written in plaintext.
func HoldsSealedData(ctx context.Context, store objstore.Store) (prefix string, err error) {
	for _, p := range Sealed {
		for _, err := range store.List(ctx, p) {
			if err != nil {
				return "", fmt.Errorf("look for sealed data under %s: %w", p, err)
			}
			return p, nil
		}
	}
	return "", nil
}
