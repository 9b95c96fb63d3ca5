package serverdb_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/vwstream/vwstream/internal/vaultsim"
)

// vault creates Vaultwarden's schema (vaultsim's subset) with seed ciphers.
func vault(t testing.TB, ctx context.Context, db *sql.DB, kind string, seed int) {
	t.Helper()
	if err := vaultsim.CreateServerVault(ctx, db, kind, seed); err != nil {
		t.Fatal(err)
	}
}

var migrationVersions = vaultsim.ServerMigrations
