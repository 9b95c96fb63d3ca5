package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/dbrepl"
	"github.com/vwstream/vwstream/internal/filesync"
	"github.com/vwstream/vwstream/internal/lease"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/snapshot"
)

// load is Load with real files and the given environment.
func load(t *testing.T, args []string, env ...string) (*config.Config, error) {
	t.Helper()
	return config.Load(args, env, os.ReadFile)
}

func mustLoad(t *testing.T, args []string, env ...string) *config.Config {
	t.Helper()
	c, err := load(t, args, env...)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return c
}

// mustFail asserts a one-line *config.Error that mentions name.
func mustFail(t *testing.T, name string, args []string, env ...string) *config.Error {
	t.Helper()
	_, err := load(t, args, env...)
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("env %q args %q: got %v, want *config.Error", env, args, err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "config: ") || strings.ContainsAny(msg, "\r\n") {
		t.Fatalf("error is not one config line: %q", msg)
	}
	if !strings.Contains(msg, name) {
		t.Fatalf("error %q does not name %s", msg, name)
	}
	if !strings.Contains(msg, "accepted:") {
		t.Fatalf("error %q does not say what is accepted", msg)
	}
	return ce
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad_Defaults(t *testing.T) {
	c := mustLoad(t, nil)
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"DataFolder", c.DataFolder, "/data"},
		{"DBPath", c.DBPath, "/data/db.sqlite3"},
		{"AttachmentsFolder", c.Vaultwarden.AttachmentsFolder, "/data/attachments"},
		{"RSAKeyFilename", c.Vaultwarden.RSAKeyFilename, "/data/rsa_key"},
		{"Prefix", c.S3.Prefix, "vaultwarden"},
		{"Region", c.S3.Region, "auto"},
		{"Provider", c.S3.Provider, "Other"},
		{"Role", c.Role, config.RolePrimary},
		{"Mode", c.Mode, config.ModePersistent},
		{"SyncInterval", c.Replication.SyncInterval, time.Second},
		{"ShutdownTimeout", c.Replication.ShutdownTimeout, 30 * time.Second},
		{"PrimaryInterval", c.Sync.PrimaryInterval, 300 * time.Second},
		{"SecondaryInterval", c.Sync.SecondaryInterval, time.Hour},
		{"IncludeIconCache", c.Sync.IncludeIconCache, false},
		{"IncludeSends", c.Sync.IncludeSends, true},
		{"Compression", c.Backup.Compression, snapshot.CompressGzip},
		{"RetentionDays", c.Backup.RetentionDays, 30},
		{"MinKeep", c.Backup.MinKeep, 3},
		{"PruningLeeway", c.Backup.PruningLeeway, time.Minute},
		{"MaxAge", c.Backup.MaxAge, 48 * time.Hour},
		{"LeaseTTL", c.Lease.TTL, 30 * time.Second},
		{"MaxSyncAge", c.Health.MaxSyncAge, 600 * time.Second},
		{"StatusAddr", c.Health.StatusAddr, "127.0.0.1:8081"},
		{"RocketPort", c.Vaultwarden.RocketPort, 80},
		{"LocalTarget", c.LocalTarget, "./vwstream-backup"},
		{"Remote", c.Remote(), false},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if len(c.Warnings()) == 0 || !strings.Contains(strings.Join(c.Warnings(), "\n"), "same disk") {
		t.Errorf("no local-target warning: %q", c.Warnings())
	}
}

// badValues holds a wrong value for every variable that can have one.
var badValues = []struct{ name, value string }{
	{"PROMOTE_TOKEN", "short"},
	{"RUN_AS", "vaultwarden"},
	{"DATA_FOLDER", " "},
	{"DATABASE_URL", "postgresql://u:p@db/"},
	{"DATABASE_URL", "mysql://u:p@/vw"},
	{"DATABASE_URL", "mariadb://u:p@db/vw"},
	{"DATABASE_URL", "sqlite://"},
	{"TZ", "Mars/Olympus"},
	{"DOCKER_HOST", "ssh://user@host"},
	{"UPDATE_ENABLED", "maybe"},
	{"UPDATE_SCHEDULE", "every day"},
	{"UPDATE_SCHEDULE", "0 0 4 * * * *"},
	{"UPDATE_COOLDOWN", "two days"},
	{"WATCHTOWER_LABEL_ENABLE", "maybe"},
	{"UPDATE_MONITOR_ONLY", "2"},
	{"UPDATE_HEALTH_TIMEOUT", "soon"},
	{"UPDATE_STABLE_FOR", "-1s"},
	{"UPDATE_CLEANUP", "yes please"},
	{"DOCKER_CONFIG", " "},
	{"BACKUP_STOP_DURING_BACKUP_LABEL", "yes please"},
	{"EXEC_LABEL", "a;b"},
	{"S3_ENDPOINT", "ftp://host"},
	{"S3_ENDPOINT", "https://"},
	{"S3_ENDPOINT", "https://key:secret@s3.example.com"},
	{"S3_PROVIDER", "Dropbox"},
	{"S3_FORCE_PATH_STYLE", "maybe"},
	{"S3_CA_FILE", "/nonexistent/ca.pem"},
	{"LOCAL_TARGET", " "},
	{"GPG_PUBLIC_KEY_RING", "not a key"},
	{"AGE_PUBLIC_KEYS", "ssh,rsa"},
	{"ALLOW_UNENCRYPTED", "sure"},
	{"NODE_ROLE", "leader"},
	{"DEPLOYMENT_MODE", "lambda"},
	{"LEASE_LOST_ACTION", "failover"},
	{"LEASE_TTL", "0"},
	{"LEASE_RENEW_INTERVAL", "-1"},
	{"LITESTREAM_SYNC_INTERVAL", "abc"},
	{"LITESTREAM_SHUTDOWN_TIMEOUT", "0"},
	{"PRIMARY_SYNC_INTERVAL", "0"},
	{"SECONDARY_SYNC_INTERVAL", "1x"},
	{"SYNC_SHUTDOWN_TIMEOUT", "-5s"},
	{"SYNC_INCLUDE_ATTACHMENTS", "2"},
	{"SYNC_INCLUDE_SENDS", "y"},
	{"SYNC_INCLUDE_CONFIG", "nope"},
	{"SYNC_INCLUDE_ICON_CACHE", "t"},
	{"BACKUP_ENABLED", "enabled"},
	{"BACKUP_CRON", "61 * * * *"},
	{"BACKUP_ON_STARTUP", "x"},
	{"BACKUP_FILENAME", "a/b"},
	{"BACKUP_FILENAME", "vw-%Q"},
	{"BACKUP_COMPRESSION", "bz2"},
	{"BACKUP_RETENTION_DAYS", "-1"},
	{"BACKUP_MIN_KEEP", "three"},
	{"BACKUP_PRUNING_LEEWAY", "-1m"},
	{"BACKUP_EXTRA_REMOTES", "nocolon"},
	{"BACKUP_SOURCES", "relative/dumps"},
	{"BACKUP_VERIFY", "x"},
	{"BACKUP_REQUIRE_ALL", "x"},
	{"BACKUP_INCLUDE_ATTACHMENTS", "x"},
	{"BACKUP_INCLUDE_SENDS", "x"},
	{"BACKUP_INCLUDE_CONFIG", "x"},
	{"BACKUP_INCLUDE_ICON_CACHE", "x"},
	{"BACKUP_MAX_AGE", "0"},
	{"NOTIFICATION_URLS", "not-a-url"},
	{"NOTIFICATION_LEVEL", "debug"},
	{"REPLICATION_ALERT_AFTER", "0"},
	{"DISK_FREE_MIN", "2 lots"},
	{"DISK_FREE_MIN", "-1GB"},
	{"UNHEALTHY_AFTER", "soon"},
	{"VAULTWARDEN_ALIVE_URL", "vaultwarden:80"},
	{"VAULTWARDEN_ALIVE_URL", "http://admin:hunter2@vaultwarden/alive"},
	{"ALERT_REPEAT", "0"},
	{"DRILL_CRON", "weekly"},
	{"BACKUP_FALLBACK_MAX_BYTES", "lots"},
	{"HEALTHCHECK_PING_URL", "hc-ping.com/uuid"},
	{"NOTIFICATION_TITLE", "{{.Event"},
	{"NOTIFICATION_BODY", "{{end}}"},
	{"HEALTHCHECK_MAX_SYNC_AGE", "60"},
	{"STATUS_FILE", " "},
	{"STATUS_ADDR", "localhost"},
	{"ATTACHMENTS_FOLDER", " "},
	{"SENDS_FOLDER", " "},
	{"ICON_CACHE_FOLDER", " "},
	{"TMP_FOLDER", " "},
	{"RSA_KEY_FILENAME", " "},
	{"ROCKET_PORT", "70000"},
	{"DOMAIN", "vault.example.com"},
	{"ENABLE_WEBSOCKET", "x"},
	{"LOG_LEVEL", "verbose"},
	{"LOG_FORMAT", "xml"},
	{"ENCRYPTION_KEY", "age1notasecretkey"},
	{"ENCRYPTION_KEY", testKey[:len(testKey)-1] + "Q"}, // checksum wrong
	// Accepted by a pattern, refused at the first use: each is caught at load.
	{"BACKUP_CRON", "@every 0s"},
	{"BACKUP_CRON", "@every 30s"},
	{"BACKUP_CRON", "0 0 31 2 *"},
	{"BACKUP_CRON", "0 0 30 2 *"},
	{"NOTIFICATION_TITLE", "{{.Event}}"},
	{"NOTIFICATION_BODY", "{{range .Destinations}}{{.Nmae}}{{end}}"},
	{"NOTIFICATION_BODY", "{{bytes .Name}}"},
	{"NOTIFICATION_URLS", "smpt://user:pw@mail.example.com/?to=a@example.com"},
	{"NOTIFICATION_URLS", "ntfy://ntfy.sh/t https://example.com/hook"},
	{"AGE_PUBLIC_KEYS", "age1xyz"},
	{"AGE_PUBLIC_KEYS", "ssh-ed25519 AAAA"},
	{"AGE_PUBLIC_KEYS", testRecipient + ",ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFRt7IEHTUkFJBFGzhFxwxtqq"},
	{"DATABASE_URL", "/srv/elsewhere/db.sqlite3"},
	{"DATABASE_URL", "sqlite:///data/sub/db.sqlite3"},
	{"BACKUP_EXTRA_REMOTES", "undefined:vw"},
	{"BACKUP_FILENAME", "vaultwarden-latest"},
	{"S3_PREFIX", "../other"},
	{"S3_PREFIX", "vw/../../x"},
}

// Valid keys for AGE_PUBLIC_KEYS.
const (
	testRecipient = "age126wfuflegpakvevqafrju8fa8ed89kwr0ucu95m2cvl3qpk02uzshgu0ur"
	testSSHKey    = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFRt7IEHTUkFJBFGzhFxwxtqqSQYLaMiPIZjAkvI+kEI test"
)

func TestLoad_BadValue(t *testing.T) {
	for _, tc := range badValues {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			e := mustFail(t, tc.name, nil, tc.name+"="+tc.value)
			if e.Name != tc.name {
				t.Errorf("Name = %q, want %q", e.Name, tc.name)
			}
			echo := tc.value
			if strings.Contains(echo, "://") {
				echo = config.RedactURL(echo) // passwords in URLs are masked even in errors
				if strings.Contains(e.Error(), ":p@") || strings.Contains(e.Error(), ":secret@") {
					t.Errorf("error %q shows the password of the URL", e.Error())
				}
			}
			if !e.Secret && !strings.Contains(e.Error(), echo) && !strings.HasPrefix(tc.name, "S3_CA") {
				t.Errorf("error %q does not echo the value", e.Error())
			}
		})
	}
}

// Every variable of the table that can be wrong is in badValues.
func TestVars_BadValueCoverage(t *testing.T) {
	anyValue := map[string]bool{"S3_BUCKET": true, "S3_ACCESS_KEY_ID": true, "S3_SECRET_ACCESS_KEY": true,
		"S3_REGION": true, "ENCRYPTION_PASSPHRASE": true, "GPG_PASSPHRASE": true,
		"AGE_PASSPHRASE": true, "NEW_ENCRYPTION_PASSPHRASE": true, "ROCKET_TLS": true,
		"BACKUP_FALLBACK_DIR": true, // empty turns it off
		"UPDATE_SCOPE":        true} // a label value: any string
	tested := map[string]bool{}
	for _, tc := range badValues {
		tested[tc.name] = true
	}
	for _, v := range config.Vars() {
		if !anyValue[v.Name] && !tested[v.Name] {
			t.Errorf("%s has no wrong value in badValues", v.Name)
		}
	}
}

func TestLoad_Aliases(t *testing.T) {
	for _, v := range config.Vars() {
		for _, alias := range v.Aliases {
			t.Run(alias, func(t *testing.T) {
				good := map[string][2]string{ // a value for the name and a different one for the alias
					"DATABASE_URL": {"/data/a.sqlite3", "/data/b.sqlite3"}, "S3_ENDPOINT": {"https://a", "https://b"},
					"S3_FORCE_PATH_STYLE": {"true", "false"}, "S3_CA_FILE": {"", ""}, "BACKUP_CRON": {"@daily", "@hourly"},
					"BACKUP_COMPRESSION": {"zst", "none"}, "BACKUP_EXTRA_REMOTES": {":local:x", ":local:y"},
					"NOTIFICATION_URLS": {"ntfy://a/t", "ntfy://b/t"}, "NOTIFICATION_LEVEL": {"info", "error"},
					"GPG_PASSPHRASE": {"p1", "p2"}, "UPDATE_SCHEDULE": {"@daily", "0 0 4 * * *"},
					"UPDATE_MONITOR_ONLY": {"true", "false"}, "UPDATE_CLEANUP": {"true", "false"},
				}[v.Name]
				if good[0] == "" {
					good = [2]string{"one", "two"}
				}
				if v.Name == "S3_CA_FILE" {
					good = [2]string{writeFile(t, "-----BEGIN CERTIFICATE-----\n"), writeFile(t, "-----BEGIN CERTIFICATE-----\n")}
				}
				rowOf := func(c *config.Config) config.Row {
					for _, r := range c.Rows() {
						if r.Name == v.Name {
							return r
						}
					}
					t.Fatalf("no row %s", v.Name)
					return config.Row{}
				}
				c := mustLoad(t, nil, alias+"="+good[1])
				if got, want := rowOf(c).Source, "env "+alias; got != want {
					t.Errorf("alias only: source = %q, want %q", got, want)
				}
				c = mustLoad(t, nil, alias+"="+good[1], v.Name+"="+good[0])
				if got, want := rowOf(c).Source, "env "+v.Name; got != want {
					t.Errorf("both: source = %q, want %q (first column wins)", got, want)
				}
				if !strings.Contains(strings.Join(c.Warnings(), "\n"), alias) {
					t.Errorf("no warning that %s is ignored: %q", alias, c.Warnings())
				}
			})
		}
	}
}

func TestLoad_AliasValue(t *testing.T) {
	c := mustLoad(t, nil, "AWS_S3_BUCKET_NAME=old", "AWS_S3_PATH=/legacy/", "BACKUP_CRON_EXPRESSION=@weekly", "BACKUP_PASSWORD=pw")
	if c.S3.Bucket != "old" || c.S3.Prefix != "legacy" || c.Backup.Cron != "@weekly" {
		t.Fatalf("aliases not applied: bucket %q prefix %q cron %q", c.S3.Bucket, c.S3.Prefix, c.Backup.Cron)
	}
	if c.Encryption.SnapshotMode != seal.SnapshotGPGPassphrase || c.Encryption.GPGPassphrase != "pw" {
		t.Fatalf("BACKUP_PASSWORD is not the GPG passphrase: mode %q", c.Encryption.SnapshotMode)
	}
	c = mustLoad(t, nil, "S3_BUCKET=new", "AWS_S3_BUCKET_NAME=old")
	if c.S3.Bucket != "new" {
		t.Fatalf("bucket = %q, want new", c.S3.Bucket)
	}
}

func TestLoad_FlagOverridesEnv(t *testing.T) {
	c := mustLoad(t, []string{"--s3-bucket=flagged", "--primary-sync-interval", "10m", "--backup-enabled", "--healthcheck-max-sync-age=1h"},
		"S3_BUCKET=env", "PRIMARY_SYNC_INTERVAL=60", "BACKUP_ENABLED=false", "ALLOW_UNENCRYPTED=true")
	if c.S3.Bucket != "flagged" || c.Sync.PrimaryInterval != 10*time.Minute || !c.Backup.Enabled {
		t.Fatalf("flags did not win: bucket %q interval %s enabled %v", c.S3.Bucket, c.Sync.PrimaryInterval, c.Backup.Enabled)
	}
	for _, r := range c.Rows() {
		if r.Name == "S3_BUCKET" && r.Source != "flag --s3-bucket" {
			t.Errorf("source = %q", r.Source)
		}
	}
	// An empty flag restores the default over the environment.
	c = mustLoad(t, []string{"--s3-bucket="}, "S3_BUCKET=env")
	if c.Remote() {
		t.Fatalf("--s3-bucket= kept the env bucket %q", c.S3.Bucket)
	}
	mustFail(t, "--primary-sync-interval", []string{"--primary-sync-interval=0"}, "PRIMARY_SYNC_INTERVAL=60")
	mustFail(t, "--nope", []string{"--nope"})
}

func TestLoad_File(t *testing.T) {
	p := writeFile(t, "from-file\n")
	c := mustLoad(t, nil, "S3_SECRET_ACCESS_KEY_FILE="+p, "AWS_SECRET_ACCESS_KEY=alias")
	if c.S3.SecretAccessKey != "from-file" {
		t.Fatalf("secret = %q, want trimmed file content", c.S3.SecretAccessKey)
	}
	c = mustLoad(t, nil, "AWS_SECRET_ACCESS_KEY_FILE="+p)
	if c.S3.SecretAccessKey != "from-file" {
		t.Fatalf("alias _FILE not read: %q", c.S3.SecretAccessKey)
	}
	c = mustLoad(t, []string{"--gpg-passphrase-file", p})
	if c.Encryption.GPGPassphrase != "from-file" {
		t.Fatalf("--gpg-passphrase-file not read")
	}
	mustFail(t, "S3_SECRET_ACCESS_KEY", nil, "S3_SECRET_ACCESS_KEY=x", "S3_SECRET_ACCESS_KEY_FILE="+p)
	mustFail(t, "GPG_PASSPHRASE_FILE", nil, "GPG_PASSPHRASE_FILE=/nonexistent/secret")
	mustFail(t, "AGE_PASSPHRASE_FILE", nil, "AGE_PASSPHRASE_FILE="+writeFile(t, "\n"))
	if _, err := load(t, nil, "BACKUP_COMPRESSION_FILE="+p); err != nil {
		t.Fatalf("a _FILE of a non-file variable must be ignored: %v", err)
	}
}

func TestLoad_Durations(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration // 0: must fail
	}{
		{"300", 300 * time.Second}, {"5m", 5 * time.Minute}, {"1h30m", 90 * time.Minute},
		{"0", 0}, {"-1", 0}, {"abc", 0}, {"0s", 0}, {"1.5", 0},
	} {
		env := []string{"SECONDARY_SYNC_INTERVAL=" + tc.in}
		if tc.want == 0 {
			mustFail(t, "SECONDARY_SYNC_INTERVAL", nil, env...)
			continue
		}
		if got := mustLoad(t, nil, env...).Sync.SecondaryInterval; got != tc.want {
			t.Errorf("%q = %s, want %s", tc.in, got, tc.want)
		}
	}
	if got := mustLoad(t, nil, "BACKUP_PRUNING_LEEWAY=0").Backup.PruningLeeway; got != 0 {
		t.Errorf("leeway 0 = %s", got)
	}
}

func TestLoad_Cron(t *testing.T) {
	for _, good := range []string{"@daily", "@hourly", "@every 6h", "0 0 * * *", "*/15 2-4 * * mon-fri", "CRON_TZ=UTC 0 3 * * *"} {
		if c, err := load(t, nil, "BACKUP_CRON="+good); err != nil || c.Backup.Schedule == nil {
			t.Errorf("%q refused: %v", good, err)
		}
	}
	for _, bad := range []string{"0 0 * *", "0 0 * * * *", "@sometimes", "60 0 * * *", "abc"} {
		mustFail(t, "BACKUP_CRON", nil, "BACKUP_CRON="+bad)
	}
	mustFail(t, "BACKUP_CRON_EXPRESSION", nil, "BACKUP_CRON_EXPRESSION=bad")

	from := time.Date(2025, 1, 15, 12, 0, 0, 0, time.UTC)
	c := mustLoad(t, nil, "TZ=Europe/Berlin", "BACKUP_CRON=0 0 * * *")
	if got, want := c.Backup.Schedule.Next(from).UTC(), time.Date(2025, 1, 15, 23, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("midnight in Berlin = %s UTC, want %s", got, want)
	}
	c = mustLoad(t, nil, "TZ=America/New_York", "BACKUP_CRON=@daily")
	if got, want := c.Backup.Schedule.Next(from).UTC(), time.Date(2025, 1, 16, 5, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("@daily in New York = %s UTC, want %s", got, want)
	}
}

func TestLoad_DatabaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"/srv/vw/db.sqlite3":          "/srv/vw/db.sqlite3",
		"sqlite:///srv/vw/db.sqlite3": "/srv/vw/db.sqlite3",
		"sqlite://data/db.sqlite3":    "data/db.sqlite3",
		"sqlite:///a/db.sqlite3?x=1":  "/a/db.sqlite3",
		"data/db.sqlite3":             "data/db.sqlite3",
	} {
		if got := mustLoad(t, nil, "DATABASE_URL="+in, "DATA_FOLDER="+filepath.Dir(want)).DBPath; got != want {
			t.Errorf("%q -> %q, want %q", in, got, want)
		}
	}
	c := mustLoad(t, nil, "DATABASE_URL=postgres://vw:pw@db/vw?sslmode=require")
	if c.Server == nil || c.Server.Kind != "postgresql" || c.Server.Password != "pw" || c.Server.Params.Get("sslmode") != "require" || c.DBPath != "" {
		t.Errorf("postgres URL: server %+v, path %q", c.Server, c.DBPath)
	}
	if c := mustLoad(t, nil, "DATABASE_URL=mysql://vw:pw@mariadb:3307/vw"); c.Server == nil || c.Server.Kind != "mysql" || c.Server.Port != 3307 {
		t.Errorf("mysql URL: %+v", c.Server)
	}
	if got := mustLoad(t, nil, "DATA_FOLDER=/srv/vw/").DBPath; got != "/srv/vw/db.sqlite3" {
		t.Errorf("default DB path under DATA_FOLDER = %q", got)
	}
}

func TestLoad_Endpoint(t *testing.T) {
	for in, want := range map[string]string{
		"minio:9000":                 "https://minio:9000",
		"http://127.0.0.1:9000/":     "http://127.0.0.1:9000",
		"https://s3.example.com":     "https://s3.example.com",
		"s3.eu-west-1.amazonaws.com": "https://s3.eu-west-1.amazonaws.com",
	} {
		if got := mustLoad(t, nil, "S3_ENDPOINT="+in).S3.Endpoint; got != want {
			t.Errorf("%q -> %q, want %q", in, got, want)
		}
	}
}

func TestLoad_CAFile(t *testing.T) {
	pem := "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	a, b := writeFile(t, pem), writeFile(t, pem+"\n")
	c := mustLoad(t, nil, "AWS_CA_BUNDLE="+a, "S3_CA_FILE="+b)
	if c.S3.CAFile != b || string(c.S3.CAPEM) != pem+"\n" {
		t.Fatalf("S3_CA_FILE must win over AWS_CA_BUNDLE: %q", c.S3.CAFile)
	}
	mustFail(t, "AWS_CA_BUNDLE", nil, "AWS_CA_BUNDLE="+writeFile(t, "garbage"))
}

func TestLoad_CrossChecks(t *testing.T) {
	mustFail(t, "HEALTHCHECK_MAX_SYNC_AGE", nil, "PRIMARY_SYNC_INTERVAL=900", "HEALTHCHECK_MAX_SYNC_AGE=600")
	mustLoad(t, nil, "PRIMARY_SYNC_INTERVAL=600", "HEALTHCHECK_MAX_SYNC_AGE=10m")
	mustFail(t, "LEASE_RENEW_INTERVAL", nil, "LEASE_TTL=20s", "LEASE_RENEW_INTERVAL=10s")
	mustLoad(t, nil, "LEASE_TTL=21s", "LEASE_RENEW_INTERVAL=10s")
}

func TestLoad_SnapshotModes(t *testing.T) {
	e := mustFail(t, "GPG_PASSPHRASE", nil, "GPG_PASSPHRASE=a", "AGE_PASSPHRASE=b")
	if !strings.Contains(e.Error(), "AGE_PASSPHRASE") {
		t.Errorf("error names one mode only: %v", e)
	}
	e = mustFail(t, "BACKUP_PASSWORD", nil, "BACKUP_PASSWORD=a", "AGE_PUBLIC_KEYS="+testRecipient)
	if !strings.Contains(e.Error(), "AGE_PUBLIC_KEYS") {
		t.Errorf("error names one mode only: %v", e)
	}
	c := mustLoad(t, nil, "AGE_PASSPHRASE=agepw")
	if c.Encryption.SnapshotMode != seal.SnapshotAgePassphrase || c.Encryption.Passphrase != "agepw" || c.Encryption.PassphraseSource != "AGE_PASSPHRASE" {
		t.Errorf("replica passphrase does not fall back to AGE_PASSPHRASE: %+v", c.Encryption.PassphraseSource)
	}
	c = mustLoad(t, nil, "GPG_PASSPHRASE=gpgpw", "ENCRYPTION_PASSPHRASE=own")
	if c.Encryption.Passphrase != "own" {
		t.Errorf("ENCRYPTION_PASSPHRASE must win over the fallback")
	}
	c = mustLoad(t, nil, "AGE_PUBLIC_KEYS="+testRecipient+", "+testSSHKey)
	if len(c.Encryption.AgePublicKeys) != 2 || c.Encryption.Passphrase != "" {
		t.Errorf("public keys: %q, passphrase set %v", c.Encryption.AgePublicKeys, c.Encryption.Passphrase != "")
	}
}

func TestConfig_RequireEncryption(t *testing.T) {
	for _, tc := range []struct {
		env      []string
		wantName string // "" means allowed
	}{
		{[]string{}, ""}, // local target
		{[]string{"S3_BUCKET=b"}, "ENCRYPTION_PASSPHRASE"},
		{[]string{"S3_BUCKET=b", "ALLOW_UNENCRYPTED=true"}, ""},
		{[]string{"S3_BUCKET=b", "ENCRYPTION_PASSPHRASE=x"}, ""},
		{[]string{"S3_BUCKET=b", "ENCRYPTION_KEY=# bucket key\n" + testKey + "\n"}, ""},
		{[]string{"S3_BUCKET=b", "GPG_PASSPHRASE=x", "BACKUP_ENABLED=true"}, ""},
		{[]string{"S3_BUCKET=b", "ENCRYPTION_PASSPHRASE=x", "BACKUP_ENABLED=true"}, "GPG_PASSPHRASE"},
		{[]string{"BACKUP_ENABLED=true", "BACKUP_EXTRA_REMOTES=off:vw", "RCLONE_CONFIG_OFF_TYPE=local"}, "GPG_PASSPHRASE"},
		{[]string{"BACKUP_ENABLED=true"}, ""},
	} {
		err := mustLoad(t, nil, tc.env...).RequireEncryption()
		var ce *config.Error
		switch {
		case tc.wantName == "" && err != nil:
			t.Errorf("%q: refused: %v", tc.env, err)
		case tc.wantName != "" && !errors.As(err, &ce):
			t.Errorf("%q: got %v, want *config.Error", tc.env, err)
		case tc.wantName != "" && (!strings.Contains(err.Error(), tc.wantName) || !strings.Contains(err.Error(), "ALLOW_UNENCRYPTED")):
			t.Errorf("%q: %q must name %s and ALLOW_UNENCRYPTED", tc.env, err, tc.wantName)
		}
	}
}

func TestLoad_Rclone(t *testing.T) {
	c := mustLoad(t, nil, "RCLONE_CONFIG_MY_S3_TYPE=s3", "RCLONE_CONFIG_MY_S3_SECRET_ACCESS_KEY=k", "RCLONE_CONFIG_MY_S3_PROVIDER=AWS",
		"RCLONE_CONFIG_MY_TYPE=local", "RCLONE_CONFIG_ORPHAN_X=1", "BACKUP_EXTRA_REMOTES=my_s3:vw,my:/mnt")
	if got := c.Rclone["my_s3"]["secret_access_key"]; got != "k" {
		t.Errorf("my_s3 secret_access_key = %q", got)
	}
	if got := c.Rclone["my"]["type"]; got != "local" || len(c.Rclone["my"]) != 1 {
		t.Errorf("remote my = %v", c.Rclone["my"])
	}
	if _, ok := c.Rclone["orphan"]; ok {
		t.Errorf("a remote without _TYPE was collected")
	}
	for _, w := range c.Warnings() {
		if strings.Contains(w, "BACKUP_EXTRA_REMOTES") {
			t.Errorf("defined remotes warned about: %s", w)
		}
	}
}

func TestConfig_ServerlessWarnings(t *testing.T) {
	c := mustLoad(t, nil, "DEPLOYMENT_MODE=serverless", "BACKUP_ENABLED=true", "ENABLE_WEBSOCKET=true")
	all := strings.Join(c.Warnings(), "\n")
	for _, want := range []string{"BACKUP_ENABLED", "ENABLE_WEBSOCKET"} {
		if !strings.Contains(all, want) {
			t.Errorf("no serverless warning about %s in:\n%s", want, all)
		}
	}
	if c := mustLoad(t, nil, "BACKUP_ENABLED=true", "ENABLE_WEBSOCKET=true"); strings.Contains(strings.Join(c.Warnings(), "\n"), "serverless") {
		t.Errorf("persistent mode warns about serverless: %v", c.Warnings())
	}
}

func TestWithoutSecrets(t *testing.T) {
	env := []string{"PATH=/bin", "DOMAIN=https://vw", "ROCKET_PORT=80", "S3_SECRET_ACCESS_KEY=s", "AWS_SECRET_ACCESS_KEY=s",
		"ENCRYPTION_PASSPHRASE=p", "BACKUP_PASSWORD=p", "GPG_PASSPHRASE=p", "AGE_PASSPHRASE=p", "NOTIFICATION_URL=ntfy://x",
		"RCLONE_CONFIG_OFF_PASS=p", "RCLONE_CONFIG_OFF_TYPE=sftp", "S3_SECRET_ACCESS_KEY_FILE=/run/secrets/s3"}
	got := strings.Join(config.WithoutSecrets(env), " ")
	if want := "PATH=/bin DOMAIN=https://vw ROCKET_PORT=80 RCLONE_CONFIG_OFF_TYPE=sftp S3_SECRET_ACCESS_KEY_FILE=/run/secrets/s3"; got != want {
		t.Fatalf("WithoutSecrets = %q, want %q", got, want)
	}
}

// TestLoad_ServerDatabaseURLHidesPassword: a server DATABASE_URL, given
// directly, as DATABASE_URL_FILE or as --database-url, never shows its
// password in `config` rows or in errors.
func TestLoad_ServerDatabaseURLHidesPassword(t *testing.T) {
	const pw = "Sup3r-S3cret-Pw"
	good := "postgresql://vw:" + pw + "@db:5432/vaultwarden?sslmode=verify-full"
	file := filepath.Join(t.TempDir(), "database_url")
	if err := os.WriteFile(file, []byte(good+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*config.Config{
		mustLoad(t, nil, "DATABASE_URL="+good),
		mustLoad(t, nil, "DATABASE_URL_FILE="+file),
		mustLoad(t, []string{"--database-url=" + good}),
	} {
		if c.Server == nil || c.Server.Password != pw {
			t.Fatalf("server URL not parsed: %+v", c.Server)
		}
		for _, r := range c.Rows() {
			if strings.Contains(r.Value, pw) {
				t.Errorf("config row %s shows the password: %q", r.Name, r.Value)
			}
			if r.Name == "DATABASE_URL" && !strings.Contains(r.Value, "db:5432/vaultwarden") {
				t.Errorf("DATABASE_URL row hides too much: %q", r.Value)
			}
		}
		if strings.Contains(c.Server.String(), pw) {
			t.Errorf("URL String shows the password: %s", c.Server)
		}
	}
	for _, bad := range []string{"postgresql://vw:" + pw + "@db:99999/vw", "mysql://vw:" + pw + "@db/", "postgresql://vw:" + pw + "@db/vw?sslmode=bogus"} {
		e := mustFail(t, "DATABASE_URL", nil, "DATABASE_URL="+bad)
		if strings.Contains(e.Error(), pw) {
			t.Errorf("error shows the password: %v", e)
		}
	}
	if err := os.WriteFile(file, []byte("mysql://vw:"+pw+"@/vw"), 0o600); err != nil {
		t.Fatal(err)
	}
	if e := mustFail(t, "DATABASE_URL_FILE", nil, "DATABASE_URL_FILE="+file); strings.Contains(e.Error(), pw) {
		t.Errorf("error shows the password from the file: %v", e)
	}
}

// Every default that a capability also applies on its own (its Default*
// constant) comes from that constant: the documented value, parsed, is the
// package's value.
func TestLoad_DefaultsAgreeWithPackages(t *testing.T) {
	c, err := config.Load(nil, nil, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"LEASE_TTL", c.Lease.TTL, lease.DefaultTTL},
		{"LEASE_RENEW_INTERVAL", c.Lease.RenewInterval, lease.DefaultRenewInterval},
		{"LITESTREAM_SYNC_INTERVAL", c.Replication.SyncInterval, dbrepl.DefaultSyncInterval},
		{"LITESTREAM_SHUTDOWN_TIMEOUT", c.Replication.ShutdownTimeout, dbrepl.DefaultShutdownTimeout},
		{"PRIMARY_SYNC_INTERVAL", c.Sync.PrimaryInterval, filesync.DefaultReconcileInterval},
		{"SYNC_SHUTDOWN_TIMEOUT", c.Sync.ShutdownTimeout, filesync.DefaultShutdownTimeout},
		{"BACKUP_FILENAME", c.Backup.Filename, snapshot.DefaultFilename},
		{"BACKUP_COMPRESSION", c.Backup.Compression, snapshot.CompressGzip},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: configuration default %v, package default %v", tc.name, tc.got, tc.want)
		}
	}
}
