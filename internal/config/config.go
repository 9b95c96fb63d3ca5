// Package config turns environment variables, NAME_FILE secrets and command-line
// flags into one validated, typed Config. It is the only place that knows variable
// names; it never reads the process environment itself (cmd passes it in).
package config

import (
	"log/slog"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/serverdb"
	"github.com/vwstream/vwstream/internal/snapshot"
)

// Role is a node's role (NODE_ROLE).
type Role string

// Node roles.
const (
	RolePrimary   Role = "primary"
	RoleSecondary Role = "secondary"
)

// Mode is how a node keeps its data folder (DEPLOYMENT_MODE).
type Mode string

// Deployment modes.
const (
	ModePersistent Mode = "persistent"
	ModeServerless Mode = "serverless"
)

// Notification levels (NOTIFICATION_LEVEL).
const (
	NotifyError   = "error"
	NotifyWarning = "warning"
	NotifyInfo    = "info"
)

// Log formats (LOG_FORMAT).
const (
	LogText = "text"
	LogJSON = "json"
)

// Config is the validated configuration of one vwstream process.
type Config struct {
	DataFolder  string         // DATA_FOLDER
	DBPath      string         // DATABASE_URL reduced to a file path; "" with Server
	Server      *serverdb.URL  // DATABASE_URL naming a PostgreSQL or MySQL server; nil for SQLite
	TZ          string         // TZ as given ("" = the system zone)
	Location    *time.Location // TZ loaded
	LocalTarget string         // LOCAL_TARGET: the folder used when S3.Bucket is empty

	S3          S3Config
	Role        Role
	Mode        Mode
	Lease       LeaseConfig
	Replication ReplicationConfig
	Sync        SyncConfig
	Backup      BackupConfig
	Encryption  EncryptionConfig
	Notify      NotifyConfig
	Alert       AlertConfig
	Health      HealthConfig
	Containers  ContainersConfig
	Update      UpdateConfig
	Log         LogConfig
	Vaultwarden VaultwardenConfig

	// Rclone holds RCLONE_CONFIG_<NAME>_<KEY> variables: remote name (lower case)
	// -> option name (lower case) -> value. A remote exists when its _TYPE is set.
	Rclone map[string]map[string]string

	resolved []resolved // every table variable with its value and source, in table order
	rclone   []resolved // the RCLONE_CONFIG_* variables, sorted
	warnings []string
}

// S3Config is the remote object store; an empty Bucket selects LocalTarget.
type S3Config struct {
	Bucket          string
	Endpoint        string // full URL with scheme; "" means AWS
	AccessKeyID     string
	SecretAccessKey string
	Prefix          string // without leading or trailing slash
	Region          string // "auto" lets the store pick
	Provider        string // one of Providers
	ForcePathStyle  bool
	CAFile          string // S3_CA_FILE or AWS_CA_BUNDLE
	CAPEM           []byte // the content of CAFile, read once here
}

// LeaseConfig is the primary's lease in the bucket.
type LeaseConfig struct {
	TTL           time.Duration
	RenewInterval time.Duration
	LostAction    LostAction // LEASE_LOST_ACTION
}

// LostAction is what a primary does when it cannot renew its lease in time
// (LEASE_LOST_ACTION).
type LostAction string

// Lost-lease actions.
const (
	// LostServe keeps Vaultwarden serving and committing locally while writes
	// to the bucket wait; only a lease found taken by another node stops it.
	LostServe LostAction = "serve"
	// LostStop stops Vaultwarden and exits once the lease could not be renewed
	// for LEASE_TTL - LEASE_RENEW_INTERVAL, so an automatic failover may take over.
	LostStop LostAction = "stop"
)

// ReplicationConfig drives the embedded Litestream engine.
type ReplicationConfig struct {
	SyncInterval    time.Duration
	ShutdownTimeout time.Duration
}

// SyncConfig drives file sync (attachments, sends, config.json, rsa_key*).
type SyncConfig struct {
	PrimaryInterval    time.Duration // full reconcile on a primary
	SecondaryInterval  time.Duration // pull interval on a secondary
	ShutdownTimeout    time.Duration
	IncludeAttachments bool
	IncludeSends       bool
	IncludeConfig      bool
	IncludeIconCache   bool
}

// BackupConfig drives scheduled snapshots.
type BackupConfig struct {
	Enabled            bool
	Cron               string        // as given
	Schedule           cron.Schedule // Cron parsed in Config.Location
	OnStartup          bool
	Filename           string // strftime pattern without extension
	Compression        snapshot.Compression
	RetentionDays      int // 0 keeps every snapshot
	MinKeep            int
	PruningLeeway      time.Duration
	ExtraRemotes       []string // rclone "name:path"
	Sources            []string // BACKUP_SOURCES: extra folders, absolute and clean
	Verify             bool
	RequireAll         bool
	IncludeAttachments bool
	IncludeSends       bool
	IncludeConfig      bool
	IncludeIconCache   bool
	MaxAge             time.Duration // healthcheck: newest snapshot older than this is unhealthy
	DrillCron          string        // DRILL_CRON as given, "" when off
	DrillSchedule      cron.Schedule // DrillCron parsed in Config.Location; nil when off
	FallbackDir        string        // BACKUP_FALLBACK_DIR, "" when off
	FallbackMaxBytes   int64         // BACKUP_FALLBACK_MAX_BYTES, 0 for no bound
}

// EncryptionConfig holds snapshot encryption (one mode) and the replica passphrase.
type EncryptionConfig struct {
	SnapshotMode     seal.SnapshotMode // at most one mode: which of GPG_PASSPHRASE, GPG_PUBLIC_KEY_RING, AGE_PASSPHRASE, AGE_PUBLIC_KEYS is set
	GPGPassphrase    string
	GPGPublicKeyRing string // ASCII-armored public key block(s)
	AgePassphrase    string
	AgePublicKeys    []string
	// Passphrase seals the replica (db/) and file objects (files/): ENCRYPTION_PASSPHRASE,
	// or else the snapshot passphrase (GPG or age).
	Passphrase       string
	PassphraseSource string // the variable Passphrase came from, "" when none
	// NewPassphrase is what `vwstream rekey` re-wraps the bucket key with.
	NewPassphrase string
	// Key is the bucket key itself (ENCRYPTION_KEY, an age identity): it opens
	// db/ and files/ without the passphrase and without scrypt.
	Key              string
	AllowUnencrypted bool
}

// NotifyConfig is where and when notifications are sent.
type NotifyConfig struct {
	URLs  []string // shoutrrr URLs
	Level string   // NotifyError, NotifyWarning or NotifyInfo
	Title string   // text/template, "" for the built-in one
	Body  string   // text/template, "" for the built-in one
}

// AlertConfig drives the alerts a running node raises and its dead man's switch.
type AlertConfig struct {
	ReplicationAfter time.Duration // REPLICATION_ALERT_AFTER
	DiskFreeMin      int64         // DISK_FREE_MIN in bytes; 0 turns the disk alert off
	UnhealthyAfter   time.Duration // UNHEALTHY_AFTER
	AliveURL         string        // VAULTWARDEN_ALIVE_URL: /alive of a Vaultwarden vwstream does not start; "" for none
	Repeat           time.Duration // ALERT_REPEAT
	PingURL          string        // HEALTHCHECK_PING_URL, a capability URL (secret)
}

// HealthConfig is what healthcheck and status use.
type HealthConfig struct {
	MaxSyncAge time.Duration
	StatusFile string
	StatusAddr string // host:port, "" when the HTTP endpoint is off
	// PromoteToken is the secret POST /promote requires; "" uses the token file
	// in the data folder and serves /promote on a loopback STATUS_ADDR only.
	PromoteToken string
}

// LogConfig is the process logger.
type LogConfig struct {
	Level  slog.Level
	Format string // LogText or LogJSON
}

// VaultwardenConfig mirrors the Vaultwarden settings vwstream must agree with.
type VaultwardenConfig struct {
	AttachmentsFolder string
	SendsFolder       string
	IconCacheFolder   string
	TmpFolder         string
	RSAKeyFilename    string // without .pem, as Vaultwarden takes it
	RocketPort        int
	RocketTLS         string
	Domain            string
	EnableWebsocket   bool
	// RunAs is the user the child runs as (RUN_AS), nil to keep vwstream's own.
	RunAs *UserGroup
}

// UserGroup is a numeric user and group id.
type UserGroup struct{ UID, GID uint32 }

// Sealed reports whether db/ and files/ are encrypted: a passphrase or the
// bucket key itself is set.
func (c *Config) Sealed() bool { return c.Encryption.Passphrase != "" || c.Encryption.Key != "" }

// ContainersConfig is the container operations around a snapshot: stopping
// labelled containers and running their command labels.
type ContainersConfig struct {
	// Enabled is true when BACKUP_STOP_DURING_BACKUP_LABEL (or its alias) or
	// EXEC_LABEL is set: snapshots then need the Docker Engine and refuse to
	// run without it.
	Enabled    bool
	DockerHost string // DOCKER_HOST
	StopLabel  string // a label value (matched under the stop label keys), or key=value
	ExecLabel  string // "" runs every container's command labels
}

// Remote reports whether the target is an S3 bucket rather than the local folder.
func (c *Config) Remote() bool { return c.S3.Bucket != "" }

// Warnings lists facts about the configuration a user should hear about at start-up.
func (c *Config) Warnings() []string { return append([]string(nil), c.warnings...) }

// RequireEncryption refuses a configuration that would send data off the host in
// the clear: a remote replica without a passphrase, or enabled snapshots without a
// snapshot encryption mode going to S3 or an extra remote. ALLOW_UNENCRYPTED=true
// lifts both checks. run, backup and check call it before doing anything.
func (c *Config) RequireEncryption() error {
	if err := c.requireReplicaEncryption(); err != nil {
		return err
	}
	if c.Backup.Enabled {
		return c.RequireSnapshotEncryption()
	}
	return nil
}

// RequireSnapshotEncryption refuses a snapshot that would leave the host unencrypted,
// whether or not BACKUP_ENABLED is set (the backup command makes one on demand).
func (c *Config) RequireSnapshotEncryption() error {
	if c.Encryption.AllowUnencrypted || c.Encryption.SnapshotMode != seal.SnapshotPlain {
		return nil
	}
	if !c.Remote() && len(c.Backup.ExtraRemotes) == 0 {
		return nil
	}
	return &Error{
		Name:     "GPG_PASSPHRASE",
		Reason:   "snapshots would leave the host unencrypted: no snapshot encryption is set",
		Accepted: "set one of GPG_PASSPHRASE, GPG_PUBLIC_KEY_RING, AGE_PASSPHRASE, AGE_PUBLIC_KEYS (or _FILE), or ALLOW_UNENCRYPTED=true",
	}
}

func (c *Config) requireReplicaEncryption() error {
	if !c.Remote() || c.Encryption.AllowUnencrypted || c.Sealed() {
		return nil
	}
	return &Error{
		Name:     "ENCRYPTION_PASSPHRASE",
		Reason:   "the replica in S3 would be unencrypted: no passphrase is set",
		Accepted: "set ENCRYPTION_PASSPHRASE (or ENCRYPTION_PASSPHRASE_FILE, GPG_PASSPHRASE, AGE_PASSPHRASE, ENCRYPTION_KEY), or ALLOW_UNENCRYPTED=true",
	}
}

// SecretValues lists the values of the secret variables that are set
// (passphrases, keys, tokens), for scrubbing text vwstream did not write
// itself, such as the output of commands run inside containers.
func (c *Config) SecretValues() []string {
	var out []string
	for _, r := range append(append([]resolved(nil), c.resolved...), c.rclone...) {
		if r.secret && r.value != "" {
			out = append(out, r.value)
		}
	}
	return out
}
