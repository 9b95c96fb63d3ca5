package serverdb_test

import "github.com/vwstream/vwstream/internal/vaultsim"

var migrationVersions = vaultsim.ServerMigrations
