package vaultsim_test

import (
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// richSmall is a small vault that still fills every table.
var richSmall = vaultsim.Options{Seed: 7, Users: 4, Orgs: 2, Collections: 3, Ciphers: 120, Attachments: 12, Sends: 6}

func createVault(t *testing.T, opts vaultsim.Options) *vaultsim.Vault {
	t.Helper()
	v, err := vaultsim.Create(filepath.Join(t.TempDir(), "data"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// digest hashes every row of every table (in insertion order) and every file
// except the database's own.
func digest(t *testing.T, v *vaultsim.Vault) string {
	t.Helper()
	h := sha256.New()
	for _, table := range vaultsim.Tables {
		rows, err := v.DB.Query(`SELECT * FROM ` + table + ` ORDER BY rowid`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(h, "%s%#v\n", table, vals)
		}
		rows.Close()
	}
	err := filepath.WalkDir(v.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), vaultsim.DBName) {
			return err
		}
		b, err := os.ReadFile(path)
		rel, _ := filepath.Rel(v.Dir, path)
		fmt.Fprintf(h, "%s %x\n", rel, sha256.Sum256(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestCreate_Deterministic(t *testing.T) {
	a, b := digest(t, createVault(t, richSmall)), digest(t, createVault(t, richSmall))
	if a != b {
		t.Fatalf("same seed, different vaults: %s != %s", a, b)
	}
	other := richSmall
	other.Seed++
	if c := digest(t, createVault(t, other)); c == a {
		t.Fatal("different seeds gave the same vault")
	}
}

func TestCreate_Schema(t *testing.T) {
	v := createVault(t, richSmall)
	want := map[string][]string{
		"users": {"uuid", "enabled", "created_at", "updated_at", "email", "name", "password_hash", "salt",
			"password_iterations", "akey", "private_key", "public_key", "security_stamp", "equivalent_domains",
			"excluded_globals", "client_kdf_type", "client_kdf_iter", "api_key", "avatar_color", "verified_at"},
		"ciphers": {"uuid", "created_at", "updated_at", "user_uuid", "organization_uuid", "atype", "name", "notes",
			"fields", "data", "key", "password_history", "deleted_at", "reprompt"},
		"attachments":         {"id", "cipher_uuid", "file_name", "file_size", "akey"},
		"folders":             {"uuid", "created_at", "updated_at", "user_uuid", "name"},
		"folders_ciphers":     {"cipher_uuid", "folder_uuid"},
		"favorites":           {"user_uuid", "cipher_uuid"},
		"organizations":       {"uuid", "name", "billing_email", "private_key", "public_key"},
		"users_organizations": {"uuid", "user_uuid", "org_uuid", "access_all", "akey", "status", "atype"},
		"collections":         {"uuid", "org_uuid", "name"},
		"ciphers_collections": {"cipher_uuid", "collection_uuid"},
		"users_collections":   {"user_uuid", "collection_uuid", "read_only", "hide_passwords", "manage"},
		"devices": {"uuid", "user_uuid", "created_at", "updated_at", "name", "atype", "push_token",
			"refresh_token", "twofactor_remember"},
		"sends": {"uuid", "user_uuid", "organization_uuid", "name", "notes", "atype", "data", "akey", "password_hash",
			"access_count", "max_access_count", "creation_date", "revision_date", "expiration_date", "deletion_date",
			"disabled", "hide_email"},
		"twofactor":                  {"uuid", "user_uuid", "atype", "enabled", "data", "last_used"},
		"__diesel_schema_migrations": {"version", "run_on"},
		"emergency_access":           {"uuid"},
		"org_policies":               {"uuid"},
		"invitations":                {"email"},
		"event":                      {"uuid", "event_type", "event_date"},
		"auth_requests":              {"uuid"},
		"groups":                     {"uuid"},
		"groups_users":               {"groups_uuid", "users_organizations_uuid"},
		"collections_groups":         {"collections_uuid", "groups_uuid"},
	}
	for table, cols := range want {
		have := map[string]bool{}
		rows, err := v.DB.Query(`SELECT name FROM pragma_table_info(?)`, table)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var n string
			rows.Scan(&n)
			have[n] = true
		}
		rows.Close()
		if len(have) == 0 {
			t.Errorf("table %s missing", table)
		}
		for _, c := range cols {
			if !have[c] {
				t.Errorf("table %s has no column %s", table, c)
			}
		}
		var n int
		if err := v.DB.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil || n == 0 {
			t.Errorf("table %s: %d rows, err %v; want some", table, n, err)
		}
	}
}

func TestCreate_ReadableBySQLiteCLI(t *testing.T) {
	sqlite3 := testenv.Tool(t, "sqlite3")
	v := createVault(t, richSmall)
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sqlite3, v.DBPath(), "PRAGMA journal_mode; PRAGMA integrity_check; SELECT count(*) FROM ciphers;").CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3: %v: %s", err, out)
	}
	if got, want := strings.Fields(string(out)), []string{"wal", "ok", "120"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("sqlite3 says %q, want %q", got, want)
	}
}

func TestCreate_Files(t *testing.T) {
	v := createVault(t, richSmall)
	probs, err := vaultsim.CheckAttachments(v.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(probs) != 0 {
		t.Fatalf("attachment problems in a fresh vault: %+v", probs)
	}
	var rows, files int
	v.DB.QueryRow(`SELECT count(*) FROM attachments`).Scan(&rows)
	filepath.WalkDir(filepath.Join(v.Dir, vaultsim.AttachmentsDir), func(_ string, d fs.DirEntry, _ error) error {
		if !d.IsDir() {
			files++
		}
		return nil
	})
	if rows != 12 || files != rows {
		t.Fatalf("%d attachment rows, %d files; want 12 of each", rows, files)
	}

	sends, err := v.DB.Query(`SELECT uuid, data FROM sends WHERE atype = 1`)
	if err != nil {
		t.Fatal(err)
	}
	var fileSends int
	for sends.Next() {
		var id, data string
		sends.Scan(&id, &data)
		var d struct{ ID, Size string }
		if err := json.Unmarshal([]byte(data), &d); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(v.SendPath(id, d.ID))
		if err != nil || fmt.Sprint(fi.Size()) != d.Size {
			t.Errorf("send %s: file %v, want %s bytes", id, err, d.Size)
		}
		fileSends++
	}
	sends.Close()
	if fileSends == 0 {
		t.Error("no file sends")
	}

	b, err := os.ReadFile(filepath.Join(v.Dir, vaultsim.RSAKeyName))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("rsa_key.pem is not PEM")
	}
	key, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatalf("rsa_key.pem: %v", err)
	}
	if key.N.BitLen() != 2048 {
		t.Fatalf("rsa key has %d bits, want 2048", key.N.BitLen())
	}
	var cfg map[string]any
	b, _ = os.ReadFile(filepath.Join(v.Dir, vaultsim.ConfigName))
	if err := json.Unmarshal(b, &cfg); err != nil || cfg["admin_token"] == nil {
		t.Fatalf("config.json: %v, admin_token %v", err, cfg["admin_token"])
	}
}

func TestCreate_RefusesExistingDatabase(t *testing.T) {
	v := createVault(t, vaultsim.Options{})
	if _, err := vaultsim.Create(v.Dir, vaultsim.Options{}); err == nil {
		t.Fatal("Create over an existing vault succeeded")
	}
	if _, err := vaultsim.Create(t.TempDir(), vaultsim.Options{Size: "huge"}); err == nil {
		t.Fatal("Create with an unknown size succeeded")
	}
}

func TestOpen_ConnectionSettings(t *testing.T) {
	v := createVault(t, vaultsim.Options{})
	v.Close()
	v, err := vaultsim.Open(v.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	// Hold several connections so the check covers more than the first one.
	var conns []*sql.Conn
	for range 3 {
		c, err := v.DB.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		var mode string
		var busy, sync, autockpt int
		c.QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode)
		c.QueryRowContext(t.Context(), `PRAGMA busy_timeout`).Scan(&busy)
		c.QueryRowContext(t.Context(), `PRAGMA synchronous`).Scan(&sync)
		c.QueryRowContext(t.Context(), `PRAGMA wal_autocheckpoint`).Scan(&autockpt)
		if mode != "wal" || busy != 5000 || sync != 1 || autockpt != 1000 {
			t.Errorf("conn %d: journal_mode %s busy_timeout %d synchronous %d wal_autocheckpoint %d; want wal 5000 1 1000",
				i, mode, busy, sync, autockpt)
		}
		c.Close()
	}
	if _, err := vaultsim.Open(t.TempDir()); err == nil {
		t.Fatal("Open of an empty folder succeeded")
	}
}
