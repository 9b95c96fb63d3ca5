package config

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vwstream/vwstream/internal/dbrepl"
	"github.com/vwstream/vwstream/internal/filesync"
	"github.com/vwstream/vwstream/internal/lease"
	"github.com/vwstream/vwstream/internal/snapshot"
)

// Var describes one configuration variable. The table of them (Vars) is the single
// source of truth for the parser, `vwstream config`, --help and docs/CONFIGURATION.md.
type Var struct {
	Name     string   // the variable's name
	Aliases  []string // names from the replaced stacks; Name wins when both are set
	Default  string   // as documented; "$DATA_FOLDER" is replaced by the effective DATA_FOLDER
	Secret   bool     // never printed; NAME_FILE accepted
	File     bool     // NAME_FILE accepted (always true for secrets)
	Section  string   // heading in the reference
	Desc     string   // one line
	Accepted string   // what values are accepted
	IsBool   bool     // a flag without a value means true
	set      func(c *Config, raw string) error
}

// Flag is the command-line flag overriding the variable, e.g. "--s3-bucket".
func (v *Var) Flag() string { return "--" + flagName(v.Name) }

func flagName(name string) string { return strings.ToLower(strings.ReplaceAll(name, "_", "-")) }

func (v *Var) alias(names ...string) *Var { v.Aliases = append(v.Aliases, names...); return v }
func (v *Var) secret() *Var               { v.Secret, v.File = true, true; return v }
func (v *Var) file() *Var                 { v.File = true; return v }

// Sections of the reference, in order.
const (
	secStorage     = "Storage target"
	secData        = "Data"
	secRoles       = "Roles and lease"
	secSync        = "Replication and file sync"
	secBackup      = "Snapshots"
	secEncryption  = "Encryption"
	secNotify      = "Notifications"
	secHealth      = "Health and status"
	secContainers  = "Container operations"
	secUpdate      = "Image updates"
	secVaultwarden = "Vaultwarden settings vwstream must agree with"
	secLog         = "Logging"
)

// Sections lists the reference's headings in order.
func Sections() []string {
	return []string{secData, secStorage, secEncryption, secRoles, secSync, secBackup, secContainers, secUpdate, secNotify, secHealth, secVaultwarden, secLog}
}

// Providers are the accepted S3_PROVIDER values (rclone's names).
var Providers = []string{"AWS", "Cloudflare", "Minio", "Backblaze", "Wasabi", "DigitalOcean", "Scaleway", "Other"}

// Vars returns the configuration table in evaluation order: a default may refer to
// DATA_FOLDER, so it comes first.
func Vars() []*Var { return vars }

var vars = []*Var{
	// Data
	path("DATA_FOLDER", "/data", secData, "Vaultwarden's data folder: database, attachments, sends, config.json, rsa_key*",
		func(c *Config) *string { return &c.DataFolder }),
	custom("DATABASE_URL", "$DATA_FOLDER/db.sqlite3", secData, "Vaultwarden's database (its DATABASE_URL): a SQLite file is replicated; a PostgreSQL or MySQL/MariaDB server is dumped at each snapshot (the password is never printed)",
		acceptDatabaseURL, func(c *Config, s string) (err error) { c.DBPath, c.Server, err = parseDatabaseURL(s); return err }).alias("LITESTREAM_DB_PATH").file(),
	custom("TZ", "", secData, "time zone for BACKUP_CRON and snapshot names (empty: the system zone)",
		"an IANA time zone name (UTC, Europe/Berlin, America/New_York)",
		func(c *Config, s string) (err error) { c.TZ = s; c.Location, err = parseLocation(s); return err }),

	// Storage target
	str("S3_BUCKET", "", secStorage, "S3 bucket; empty uses LOCAL_TARGET (same disk: not a backup)",
		func(c *Config) *string { return &c.S3.Bucket }).alias("AWS_S3_BUCKET_NAME"),
	custom("S3_ENDPOINT", "", secStorage, "S3 endpoint URL; empty is AWS; no scheme means https://",
		"a URL such as https://s3.example.com or host:port (https:// is assumed)",
		func(c *Config, s string) (err error) { c.S3.Endpoint, err = parseEndpoint(s); return err }).alias("AWS_ENDPOINT"),
	str("S3_ACCESS_KEY_ID", "", secStorage, "S3 access key id",
		func(c *Config) *string { return &c.S3.AccessKeyID }).alias("AWS_ACCESS_KEY_ID").file(),
	str("S3_SECRET_ACCESS_KEY", "", secStorage, "S3 secret access key",
		func(c *Config) *string { return &c.S3.SecretAccessKey }).alias("AWS_SECRET_ACCESS_KEY").secret(),
	custom("S3_PREFIX", "vaultwarden", secStorage, "key prefix inside the bucket (or sub-folder of LOCAL_TARGET); / for none",
		"a key prefix such as vaultwarden or prod/vw",
		func(c *Config, s string) (err error) { c.S3.Prefix, err = parsePrefix(s); return err }).alias("AWS_S3_PATH"),
	str("S3_REGION", "auto", secStorage, "S3 region; auto asks the endpoint or uses us-east-1",
		func(c *Config) *string { return &c.S3.Region }),
	enum("S3_PROVIDER", "Other", secStorage, "S3 provider, for its quirks (rclone's names)", Providers,
		func(c *Config) *string { return &c.S3.Provider }),
	boolean("S3_FORCE_PATH_STYLE", "false", secStorage, "address the bucket as endpoint/bucket (MinIO, versitygw) instead of bucket.endpoint",
		func(c *Config) *bool { return &c.S3.ForcePathStyle }).alias("LITESTREAM_FORCE_PATH_STYLE"),
	path("S3_CA_FILE", "", secStorage, "PEM file of CA certificates trusted for the S3 endpoint (self-signed or private CA)",
		func(c *Config) *string { return &c.S3.CAFile }).alias("AWS_CA_BUNDLE"),
	path("LOCAL_TARGET", "./vwstream-backup", secStorage, "folder used as the target when S3_BUCKET is empty",
		func(c *Config) *string { return &c.LocalTarget }),

	// Encryption
	str("ENCRYPTION_PASSPHRASE", "", secEncryption, "seals the replica (db/) and files (files/); empty falls back to GPG_PASSPHRASE or AGE_PASSPHRASE",
		func(c *Config) *string { return &c.Encryption.Passphrase }).secret(),
	str("NEW_ENCRYPTION_PASSPHRASE", "", secEncryption, "vwstream rekey only: the passphrase the bucket key is re-wrapped with (the data is not touched)",
		func(c *Config) *string { return &c.Encryption.NewPassphrase }).secret(),
	custom("ENCRYPTION_KEY", "", secEncryption, "the bucket key itself, used instead of the passphrase for db/ and files/: no scrypt unwrap (about a second and 256 MiB) at each start, for serverless instances; checked against keys/age-recipient.txt",
		acceptBucketKey, func(c *Config, s string) (err error) {
			c.Encryption.Key, err = parseBucketKey(s)
			return err
		}).secret(),
	str("GPG_PASSPHRASE", "", secEncryption, "snapshot encryption: OpenPGP AES-256 with a passphrase (gpg -d)",
		func(c *Config) *string { return &c.Encryption.GPGPassphrase }).alias("BACKUP_PASSWORD").secret(),
	custom("GPG_PUBLIC_KEY_RING", "", secEncryption, "snapshot encryption: OpenPGP to these armored public keys",
		"an ASCII-armored OpenPGP public key block (gpg --armor --export), or GPG_PUBLIC_KEY_RING_FILE=path",
		func(c *Config, s string) (err error) {
			c.Encryption.GPGPublicKeyRing, err = parseArmoredKey(s)
			return err
		}).file(),
	str("AGE_PASSPHRASE", "", secEncryption, "snapshot encryption: age with a passphrase (age -d)",
		func(c *Config) *string { return &c.Encryption.AgePassphrase }).secret(),
	custom("AGE_PUBLIC_KEYS", "", secEncryption, "snapshot encryption: age to these recipients",
		"comma-separated age recipients (age1...) or SSH public keys (ssh-ed25519 ..., ssh-rsa ...)",
		func(c *Config, s string) (err error) {
			c.Encryption.AgePublicKeys, err = parseAgeRecipients(s)
			return err
		}).file(),
	boolean("ALLOW_UNENCRYPTED", "false", secEncryption, "allow a remote replica or snapshot without encryption",
		func(c *Config) *bool { return &c.Encryption.AllowUnencrypted }),

	// Roles and lease
	enum("NODE_ROLE", RolePrimary, secRoles, "primary writes to the target; secondary is a warm standby that never writes",
		[]Role{RolePrimary, RoleSecondary}, func(c *Config) *Role { return &c.Role }),
	enum("DEPLOYMENT_MODE", ModePersistent, secRoles, "persistent keeps /data; serverless restores an empty /data on every start",
		[]Mode{ModePersistent, ModeServerless}, func(c *Config) *Mode { return &c.Mode }),
	duration("LEASE_TTL", dur(lease.DefaultTTL), secRoles, "how long the primary's lease in the bucket lasts without renewal",
		false, func(c *Config) *time.Duration { return &c.Lease.TTL }),
	duration("LEASE_RENEW_INTERVAL", dur(lease.DefaultRenewInterval), secRoles, "how often the primary renews its lease; must be under LEASE_TTL/2",
		false, func(c *Config) *time.Duration { return &c.Lease.RenewInterval }),
	enum("LEASE_LOST_ACTION", LostServe, secRoles, "serve: an S3 outage longer than the lease keeps Vaultwarden serving while uploads wait; stop: stop Vaultwarden and exit then (for an automatic failover)",
		[]LostAction{LostServe, LostStop}, func(c *Config) *LostAction { return &c.Lease.LostAction }),

	// Replication and file sync
	duration("LITESTREAM_SYNC_INTERVAL", dur(dbrepl.DefaultSyncInterval), secSync, "commits reach the target about 50 ms after the WAL is written, but at most once per this interval during a burst; also the fallback tick",
		false, func(c *Config) *time.Duration { return &c.Replication.SyncInterval }),
	duration("LITESTREAM_SHUTDOWN_TIMEOUT", secs(dbrepl.DefaultShutdownTimeout), secSync, "how long a stop waits for the last database changes to reach the target",
		false, func(c *Config) *time.Duration { return &c.Replication.ShutdownTimeout }),
	duration("PRIMARY_SYNC_INTERVAL", secs(filesync.DefaultReconcileInterval), secSync, "full file reconcile interval on a primary (changes are also sent as they happen)",
		false, func(c *Config) *time.Duration { return &c.Sync.PrimaryInterval }),
	duration("SECONDARY_SYNC_INTERVAL", "3600", secSync, "how often a secondary pulls the database and files",
		false, func(c *Config) *time.Duration { return &c.Sync.SecondaryInterval }),
	duration("SYNC_SHUTDOWN_TIMEOUT", dur(filesync.DefaultShutdownTimeout), secSync, "how long a stop waits for pending file uploads",
		false, func(c *Config) *time.Duration { return &c.Sync.ShutdownTimeout }),
	boolean("SYNC_INCLUDE_ATTACHMENTS", "true", secSync, "sync ATTACHMENTS_FOLDER",
		func(c *Config) *bool { return &c.Sync.IncludeAttachments }),
	boolean("SYNC_INCLUDE_SENDS", "true", secSync, "sync SENDS_FOLDER",
		func(c *Config) *bool { return &c.Sync.IncludeSends }),
	boolean("SYNC_INCLUDE_CONFIG", "true", secSync, "sync config.json and rsa_key*",
		func(c *Config) *bool { return &c.Sync.IncludeConfig }),
	boolean("SYNC_INCLUDE_ICON_CACHE", "false", secSync, "sync ICON_CACHE_FOLDER",
		func(c *Config) *bool { return &c.Sync.IncludeIconCache }),

	// Snapshots
	boolean("BACKUP_ENABLED", "false", secBackup, "take scheduled snapshots (BACKUP_CRON)",
		func(c *Config) *bool { return &c.Backup.Enabled }),
	str("BACKUP_CRON", "0 0 * * *", secBackup, "snapshot schedule, 5-field cron or @daily/@hourly/@every 6h, in TZ",
		func(c *Config) *string { return &c.Backup.Cron }).alias("BACKUP_CRON_EXPRESSION").accept(acceptCron),
	boolean("BACKUP_ON_STARTUP", "false", secBackup, "take a snapshot when run starts",
		func(c *Config) *bool { return &c.Backup.OnStartup }),
	custom("BACKUP_FILENAME", snapshot.DefaultFilename, secBackup, "snapshot name pattern (strftime); the extension is added",
		"a file name without / using %Y %y %m %d %H %M %S %j %s %z %Z %%",
		func(c *Config, s string) (err error) { c.Backup.Filename, err = parseFilename(s); return err }),
	enum("BACKUP_COMPRESSION", snapshot.CompressGzip, secBackup, "snapshot compression",
		[]snapshot.Compression{snapshot.CompressGzip, snapshot.CompressZstd, snapshot.CompressNone}, func(c *Config) *snapshot.Compression { return &c.Backup.Compression }).alias("BACKUP_FORMAT"),
	integer("BACKUP_RETENTION_DAYS", "30", secBackup, "delete snapshots older than this many days (0 keeps all)",
		0, 36500, func(c *Config) *int { return &c.Backup.RetentionDays }),
	integer("BACKUP_MIN_KEEP", "3", secBackup, "never prune below this many snapshots",
		0, 100000, func(c *Config) *int { return &c.Backup.MinKeep }),
	duration("BACKUP_PRUNING_LEEWAY", "1m", secBackup, "age slack when pruning, so a snapshot just taken is never pruned",
		true, func(c *Config) *time.Duration { return &c.Backup.PruningLeeway }),
	custom("BACKUP_EXTRA_REMOTES", "", secBackup, "extra snapshot destinations (rclone NAME:path, comma separated; NAME from RCLONE_CONFIG_NAME_*)",
		"comma-separated rclone destinations NAME:path (remote NAME from RCLONE_CONFIG_NAME_TYPE)",
		func(c *Config, s string) (err error) { c.Backup.ExtraRemotes, err = parseRemotes(s); return err }).alias("BACKUP_REMOTES"),
	custom("BACKUP_SOURCES", "", secBackup, "extra folders in every snapshot (other containers' volumes, dumps), each under sources/<its folder name>; comma separated",
		"comma-separated absolute folder paths with distinct last names (/backup/app-data,/backup/dumps)",
		func(c *Config, s string) (err error) { c.Backup.Sources, err = parseSources(s); return err }),
	boolean("BACKUP_VERIFY", "true", secBackup, "read every uploaded snapshot back and check it",
		func(c *Config) *bool { return &c.Backup.Verify }),
	boolean("BACKUP_REQUIRE_ALL", "true", secBackup, "a snapshot fails unless every destination got it",
		func(c *Config) *bool { return &c.Backup.RequireAll }),
	boolean("BACKUP_INCLUDE_ATTACHMENTS", "true", secBackup, "put ATTACHMENTS_FOLDER in snapshots",
		func(c *Config) *bool { return &c.Backup.IncludeAttachments }),
	boolean("BACKUP_INCLUDE_SENDS", "true", secBackup, "put SENDS_FOLDER in snapshots",
		func(c *Config) *bool { return &c.Backup.IncludeSends }),
	boolean("BACKUP_INCLUDE_CONFIG", "true", secBackup, "put config.json and rsa_key* in snapshots",
		func(c *Config) *bool { return &c.Backup.IncludeConfig }),
	boolean("BACKUP_INCLUDE_ICON_CACHE", "false", secBackup, "put ICON_CACHE_FOLDER in snapshots",
		func(c *Config) *bool { return &c.Backup.IncludeIconCache }),
	duration("BACKUP_MAX_AGE", "48h", secBackup, "healthcheck fails when BACKUP_ENABLED and the newest snapshot is older",
		false, func(c *Config) *time.Duration { return &c.Backup.MaxAge }),
	custom("BACKUP_FALLBACK_DIR", "", secBackup, "keep a snapshot's encrypted archive here when its upload fails; the next run uploads it; empty: off",
		acceptPath+"; empty for none", func(c *Config, s string) error {
			if strings.TrimSpace(s) != "" {
				c.Backup.FallbackDir = cleanPath(s)
			}
			return nil
		}),
	custom("BACKUP_FALLBACK_MAX_BYTES", "10GB", secBackup, "bound of BACKUP_FALLBACK_DIR: the oldest archives go first, the newest always stays; 0: no bound",
		acceptBytes, func(c *Config, s string) (err error) { c.Backup.FallbackMaxBytes, err = parseBytes(s); return err }),
	custom("DRILL_CRON", "", secBackup, "restore drill schedule in run on a primary (like BACKUP_CRON); empty: no scheduled drills",
		acceptCron+"; empty for none", func(c *Config, s string) (err error) {
			c.Backup.DrillCron = strings.TrimSpace(s)
			c.Backup.DrillSchedule, err = parseSchedule(c.Backup.DrillCron, c.Location)
			return err
		}),

	// Container operations
	custom("DOCKER_HOST", "unix:///var/run/docker.sock", secContainers, "the Docker Engine of the container operations (only used when a label variable below is set)",
		acceptDockerHost, func(c *Config, s string) (err error) { c.Containers.DockerHost, err = parseDockerHost(s); return err }),
	custom("BACKUP_STOP_DURING_BACKUP_LABEL", "true", secContainers, "stop running containers labelled docker-volume-backup.stop-during-backup=VALUE or vwstream.stop-during-backup=VALUE while a snapshot captures; key=value names the label itself; setting it turns container operations on",
		acceptLabel, func(c *Config, s string) (err error) { c.Containers.StopLabel, err = parseLabel(s); return err }).alias("BACKUP_STOP_CONTAINER_LABEL"),
	custom("EXEC_LABEL", "", secContainers, "run the command labels (archive-pre/-post, backup-pre/-post) only of containers labelled docker-volume-backup.exec-label=VALUE or vwstream.exec-label=VALUE; setting it turns container operations on",
		acceptLabel, func(c *Config, s string) (err error) { c.Containers.ExecLabel, err = parseLabel(s); return err }),

	// Image updates
	boolean("UPDATE_ENABLED", "false", secUpdate, "in `vwstream run`, check labelled containers' images on UPDATE_SCHEDULE and update them (`vwstream update` runs one pass by hand)",
		func(c *Config) *bool { return &c.Update.Enabled }),
	custom("UPDATE_SCHEDULE", "0 4 * * *", secUpdate, "when to check for new images, in TZ",
		acceptUpdateCron, func(c *Config, s string) error { c.Update.Cron = s; return nil }).alias("WATCHTOWER_SCHEDULE", "WATCHTOWER_POLL_INTERVAL"),
	boolean("WATCHTOWER_LABEL_ENABLE", "true", secUpdate, "true: update only containers labelled vwstream.update=true or com.centurylinklabs.watchtower.enable=true; false: every container except those labelled =false",
		func(c *Config) *bool { return &c.Update.LabelEnable }),
	str("UPDATE_SCOPE", "", secUpdate, "watch only containers labelled vwstream.update.scope (or com.centurylinklabs.watchtower.scope) with this value: one updater per stack on a shared Engine; empty: no scope",
		func(c *Config) *string { return &c.Update.Scope }).alias("WATCHTOWER_SCOPE"),
	boolean("UPDATE_MONITOR_ONLY", "false", secUpdate, "notify about new images, change nothing",
		func(c *Config) *bool { return &c.Update.MonitorOnly }).alias("WATCHTOWER_MONITOR_ONLY"),
	duration("UPDATE_HEALTH_TIMEOUT", "5m", secUpdate, "how long an updated container with a HEALTHCHECK has to report healthy before it is rolled back",
		false, func(c *Config) *time.Duration { return &c.Update.HealthTimeout }),
	duration("UPDATE_STABLE_FOR", "30s", secUpdate, "how long an updated container without a HEALTHCHECK must keep running to count as healthy",
		false, func(c *Config) *time.Duration { return &c.Update.StableFor }),
	boolean("UPDATE_CLEANUP", "false", secUpdate, "remove the old image after a successful update",
		func(c *Config) *bool { return &c.Update.Cleanup }).alias("WATCHTOWER_CLEANUP"),
	duration("UPDATE_COOLDOWN", "0s", secUpdate, "how old a new image must be (by its build time) before it is used; 0 uses it at once",
		true, func(c *Config) *time.Duration { return &c.Update.Cooldown }),
	path("DOCKER_CONFIG", "", secUpdate, "folder of the Docker config file (config.json) whose auths and credential helpers give registry credentials (empty: $HOME/.docker)",
		func(c *Config) *string { return &c.Update.DockerConfig }),

	// Notifications
	custom("NOTIFICATION_URLS", "", secNotify, "shoutrrr URLs notified of events, separated by spaces or commas",
		"shoutrrr URLs (smtp://..., telegram://..., ntfy://...), separated by spaces or commas",
		func(c *Config, s string) (err error) { c.Notify.URLs, err = parseNotificationURLs(s); return err }).alias("NOTIFICATION_URL").secret(),
	enum("NOTIFICATION_LEVEL", NotifyWarning, secNotify, "error notifies failures and critical alerts; warning also warning alerts; info also successes",
		[]string{NotifyError, NotifyWarning, NotifyInfo}, func(c *Config) *string { return &c.Notify.Level }).alias("NOTIFICATION_EVENTS"),
	custom("NOTIFICATION_TITLE", "", secNotify, "title template (Go text/template); empty uses the built-in one",
		"a Go text/template", func(c *Config, s string) (err error) { c.Notify.Title, err = parseTemplate(s); return err }),
	custom("NOTIFICATION_BODY", "", secNotify, "body template (Go text/template); empty uses the built-in one",
		"a Go text/template", func(c *Config, s string) (err error) { c.Notify.Body, err = parseTemplate(s); return err }),

	duration("REPLICATION_ALERT_AFTER", "30m", secNotify, "alert (critical) when changes wait this long without a successful database or file sync",
		false, func(c *Config) *time.Duration { return &c.Alert.ReplicationAfter }),
	custom("DISK_FREE_MIN", "2GB", secNotify, "alert (warning) when the data or temp folder's file system has less free space; critical under a quarter of it; 0 disables",
		acceptBytes, func(c *Config, s string) (err error) { c.Alert.DiskFreeMin, err = parseBytes(s); return err }),
	duration("UNHEALTHY_AFTER", "5m", secNotify, "alert (critical) when Vaultwarden's /alive has failed this long",
		false, func(c *Config) *time.Duration { return &c.Alert.UnhealthyAfter }),
	custom("VAULTWARDEN_ALIVE_URL", "", secNotify, "Vaultwarden's /alive for child_unhealthy when vwstream does not start Vaultwarden (sidecar): http://vaultwarden/alive in Compose; with a command after --, its loopback /alive is probed and this is ignored",
		"an http:// or https:// URL without credentials", func(c *Config, s string) (err error) {
			if strings.TrimSpace(s) == "" {
				return nil
			}
			if c.Alert.AliveURL, err = parseHTTPURL(s); err != nil {
				return err
			}
			if u, _ := url.Parse(c.Alert.AliveURL); u.User != nil {
				return bad("credentials in the URL (it appears in alerts)", "an http:// or https:// URL without credentials")
			}
			return nil
		}),
	duration("ALERT_REPEAT", "24h", secNotify, "remind of an alert still active at most this often",
		false, func(c *Config) *time.Duration { return &c.Alert.Repeat }),

	// Health and status
	custom("HEALTHCHECK_PING_URL", "", secHealth, "dead man's switch pinged after each snapshot and drill (healthchecks.io style: /start, success, /fail)",
		"an http:// or https:// URL", func(c *Config, s string) (err error) {
			if strings.TrimSpace(s) != "" {
				c.Alert.PingURL, err = parseHTTPURL(s)
			}
			return err
		}).secret(),
	duration("HEALTHCHECK_MAX_SYNC_AGE", "600", secHealth, "healthcheck fails when the last successful sync is older; at least PRIMARY_SYNC_INTERVAL",
		false, func(c *Config) *time.Duration { return &c.Health.MaxSyncAge }),
	path("STATUS_FILE", "/tmp/sync-status.json", secHealth, "status file written by run, read by status and healthcheck",
		func(c *Config) *string { return &c.Health.StatusFile }),
	custom("STATUS_ADDR", "127.0.0.1:8081", secHealth, "listen address of /healthz, /metrics and /status; off disables",
		"host:port (127.0.0.1:8081, :8081) or off",
		func(c *Config, s string) (err error) { c.Health.StatusAddr, err = parseAddr(s); return err }),
	custom("PROMOTE_TOKEN", "", secHealth, "secret POST /promote requires; empty: a token file made in the data folder (0600) that promote reads, and promote answers loopback callers only",
		"empty, or at least 16 characters without spaces", func(c *Config, s string) error {
			if s != "" && (len(s) < 16 || strings.ContainsAny(s, " \t\r\n")) {
				return bad("too short or has spaces", "empty, or at least 16 characters without spaces")
			}
			c.Health.PromoteToken = s
			return nil
		}).secret(),

	// Vaultwarden
	path("ATTACHMENTS_FOLDER", "$DATA_FOLDER/attachments", secVaultwarden, "Vaultwarden's attachments folder",
		func(c *Config) *string { return &c.Vaultwarden.AttachmentsFolder }),
	path("SENDS_FOLDER", "$DATA_FOLDER/sends", secVaultwarden, "Vaultwarden's Send files folder",
		func(c *Config) *string { return &c.Vaultwarden.SendsFolder }),
	path("ICON_CACHE_FOLDER", "$DATA_FOLDER/icon_cache", secVaultwarden, "Vaultwarden's icon cache folder",
		func(c *Config) *string { return &c.Vaultwarden.IconCacheFolder }),
	path("TMP_FOLDER", "$DATA_FOLDER/tmp", secVaultwarden, "Vaultwarden's upload temp folder (never synced)",
		func(c *Config) *string { return &c.Vaultwarden.TmpFolder }),
	path("RSA_KEY_FILENAME", "$DATA_FOLDER/rsa_key", secVaultwarden, "Vaultwarden's JWT key, without the .pem extension",
		func(c *Config) *string { return &c.Vaultwarden.RSAKeyFilename }),
	custom("RUN_AS", "", secVaultwarden, "uid:gid the child (Vaultwarden) runs as when vwstream runs as root; empty keeps vwstream's user",
		"empty, or numeric uid:gid (1000:1000)", func(c *Config, s string) error {
			if s == "" {
				return nil
			}
			u, g, ok := strings.Cut(s, ":")
			uid, uerr := strconv.ParseUint(u, 10, 32)
			gid, gerr := strconv.ParseUint(g, 10, 32)
			if !ok || uerr != nil || gerr != nil {
				return bad("not numeric uid:gid", "empty, or numeric uid:gid (1000:1000)")
			}
			c.Vaultwarden.RunAs = &UserGroup{UID: uint32(uid), GID: uint32(gid)}
			return nil
		}),
	integer("ROCKET_PORT", "80", secVaultwarden, "Vaultwarden's HTTP port, probed at /alive",
		1, 65535, func(c *Config) *int { return &c.Vaultwarden.RocketPort }),
	str("ROCKET_TLS", "", secVaultwarden, "Vaultwarden's TLS setting; set means /alive is probed over https",
		func(c *Config) *string { return &c.Vaultwarden.RocketTLS }),
	custom("DOMAIN", "", secVaultwarden, "Vaultwarden's public URL; its path prefixes /alive",
		"an http:// or https:// URL",
		func(c *Config, s string) (err error) { c.Vaultwarden.Domain, err = parseHTTPURL(s); return err }),
	boolean("ENABLE_WEBSOCKET", "true", secVaultwarden, "Vaultwarden's websocket notifications (keep serverless instances awake)",
		func(c *Config) *bool { return &c.Vaultwarden.EnableWebsocket }),

	// Logging
	custom("LOG_LEVEL", "info", secLog, "log level", "debug, info, warn, error",
		func(c *Config, s string) (err error) { c.Log.Level, err = parseLogLevel(s); return err }),
	enum("LOG_FORMAT", LogText, secLog, "log format", []string{LogText, LogJSON},
		func(c *Config) *string { return &c.Log.Format }),
}

const acceptCron = "5-field cron (minute hour day month weekday, e.g. 0 0 * * *) or @yearly, @monthly, @weekly, @daily, @hourly, @every 6h"

func (v *Var) accept(s string) *Var { v.Accepted = s; return v }

func custom(name, def, section, desc, accepted string, set func(*Config, string) error) *Var {
	return &Var{Name: name, Default: def, Section: section, Desc: desc, Accepted: accepted, set: set}
}

func str(name, def, section, desc string, p func(*Config) *string) *Var {
	return custom(name, def, section, desc, "any text", func(c *Config, s string) error { *p(c) = s; return nil })
}

func path(name, def, section, desc string, p func(*Config) *string) *Var {
	return custom(name, def, section, desc, acceptPath, func(c *Config, s string) error {
		if strings.TrimSpace(s) == "" {
			return bad("empty path", acceptPath)
		}
		*p(c) = cleanPath(s)
		return nil
	})
}

func boolean(name, def, section, desc string, p func(*Config) *bool) *Var {
	v := custom(name, def, section, desc, acceptBool, func(c *Config, s string) (err error) { *p(c), err = parseBool(s); return err })
	v.IsBool = true
	return v
}

func duration(name, def, section, desc string, allowZero bool, p func(*Config) *time.Duration) *Var {
	accepted := acceptDuration
	if allowZero {
		accepted = acceptLeeway
	}
	return custom(name, def, section, desc, accepted, func(c *Config, s string) (err error) {
		*p(c), err = parseDuration(s, allowZero)
		return err
	})
}

func integer(name, def, section, desc string, min, max int, p func(*Config) *int) *Var {
	v := custom(name, def, section, desc, "", func(c *Config, s string) (err error) { *p(c), err = parseInt(s, min, max); return err })
	_, err := parseInt("x", min, max)
	v.Accepted = err.(*invalid).accepted
	return v
}

func enum[T ~string](name string, def T, section, desc string, values []T, p func(*Config) *T) *Var {
	names := make([]string, len(values))
	for i, v := range values {
		names[i] = string(v)
	}
	return custom(name, string(def), section, desc, strings.Join(names, ", "), func(c *Config, s string) error {
		v, err := parseEnum(s, names)
		*p(c) = T(v)
		return err
	})
}

// dur documents a package's Default* duration the way the table writes
// durations: 30s, 5m, 48h.
func dur(d time.Duration) string {
	s := d.String()
	for _, zero := range []string{"m0s", "h0m"} {
		s = strings.Replace(s, zero, zero[:1], 1)
	}
	return s
}

// secs documents a package's Default* duration in plain seconds, the unit the
// replaced stacks' variables of that name take.
func secs(d time.Duration) string { return strconv.Itoa(int(d / time.Second)) }
