package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/vwstream/vwstream/internal/seal"
)

// finish validates what depends on more than one variable and derives fields.
func (l *loader) finish() error {
	c := l.c
	if c.Location == nil {
		c.Location = time.Local
	}
	for _, step := range []func() error{l.checkCron, l.checkCA, l.checkSnapshotMode, l.checkIntervals, l.checkContainers, l.checkDatabase, l.checkRemotes, l.checkUpdate} {
		if err := step(); err != nil {
			return err
		}
	}
	if c.Encryption.Passphrase == "" {
		switch {
		case c.Encryption.GPGPassphrase != "":
			c.Encryption.Passphrase, c.Encryption.PassphraseSource = c.Encryption.GPGPassphrase, c.lookup("GPG_PASSPHRASE").from
		case c.Encryption.AgePassphrase != "":
			c.Encryption.Passphrase, c.Encryption.PassphraseSource = c.Encryption.AgePassphrase, c.lookup("AGE_PASSPHRASE").from
		}
	} else {
		c.Encryption.PassphraseSource = c.lookup("ENCRYPTION_PASSPHRASE").from
	}
	l.warn()
	return nil
}

// errFor builds an error about a resolved variable, echoing its value unless secret.
func (c *Config) errFor(name, reason, accepted string) *Error {
	r := c.lookup(name)
	e := &Error{Name: r.from, Value: r.value, HasValue: true, Secret: r.secret, Reason: reason, Accepted: accepted}
	if e.Name == "" {
		e.Name = name
	}
	return e
}

func (l *loader) checkCron() error {
	c := l.c
	sched, err := cron.ParseStandard(c.Backup.Cron)
	if err != nil {
		return c.errFor("BACKUP_CRON", "not a schedule: "+err.Error(), acceptCron)
	}
	// A spec without its own CRON_TZ= follows TZ; @every has no zone.
	if spec, ok := sched.(*cron.SpecSchedule); ok && !strings.Contains(c.Backup.Cron, "TZ=") {
		spec.Location = c.Location
	}
	if reason := cronProblem(sched, time.Now(), time.Minute); reason != "" {
		return c.errFor("BACKUP_CRON", reason, acceptCron+"; firing at most once a minute and at least once in "+cronHorizon)
	}
	c.Backup.Schedule = sched
	return nil
}

// parseSchedule reads an optional schedule: "" is none; a spec without its own
// CRON_TZ= follows loc.
func parseSchedule(s string, loc *time.Location) (cron.Schedule, error) {
	if s == "" {
		return nil, nil
	}
	sched, err := cron.ParseStandard(s)
	if err != nil {
		return nil, bad("not a schedule: "+err.Error(), acceptCron+"; empty for none")
	}
	if spec, ok := sched.(*cron.SpecSchedule); ok && !strings.Contains(s, "TZ=") && loc != nil {
		spec.Location = loc
	}
	if reason := cronProblem(sched, time.Now(), 0); reason != "" {
		return nil, bad(reason, acceptCron+"; firing at least once in "+cronHorizon+"; empty for none")
	}
	return sched, nil
}

// cronHorizon is how far ahead robfig/cron looks for a fire time before it
// gives up and returns the zero time.
const cronHorizon = "5 years"

// cronProblem says why sched is no usable schedule: it never fires
// (0 0 31 2 *), or fires more often than minGap (snapshots: a minute; @every 0s
// fires every second, which would start a snapshot before the last one ended).
func cronProblem(sched cron.Schedule, now time.Time, minGap time.Duration) string {
	first := sched.Next(now)
	if first.IsZero() {
		return "never fires (no date matches within " + cronHorizon + ")"
	}
	second := sched.Next(first)
	if second.IsZero() {
		return "fires at most once and then never again"
	}
	if gap := second.Sub(first); gap < minGap {
		return fmt.Sprintf("fires every %s: snapshots need at least %s between them", gap, minGap)
	}
	return ""
}

func (l *loader) checkCA() error {
	c := l.c
	if c.S3.CAFile == "" {
		return nil
	}
	const accepted = "a readable PEM file of CA certificates"
	if l.readFile == nil {
		return c.errFor("S3_CA_FILE", "files cannot be read here", accepted)
	}
	data, err := l.readFile(c.S3.CAFile)
	if err != nil {
		return c.errFor("S3_CA_FILE", "cannot read: "+err.Error(), accepted)
	}
	if err := parseCAPEM(data); err != nil {
		var inv *invalid
		errors.As(err, &inv)
		return c.errFor("S3_CA_FILE", inv.reason, inv.accepted)
	}
	c.S3.CAPEM = data
	return nil
}

// checkSnapshotMode allows at most one snapshot encryption mode.
func (l *loader) checkSnapshotMode() error {
	c := l.c
	modes := []struct {
		name string
		mode seal.SnapshotMode
	}{
		{"GPG_PASSPHRASE", seal.SnapshotGPGPassphrase},
		{"GPG_PUBLIC_KEY_RING", seal.SnapshotGPGPublicKey},
		{"AGE_PASSPHRASE", seal.SnapshotAgePassphrase},
		{"AGE_PUBLIC_KEYS", seal.SnapshotAgePublicKey},
	}
	var set []string
	for _, m := range modes {
		if r := c.lookup(m.name); r.value != "" {
			set = append(set, r.from)
			c.Encryption.SnapshotMode = m.mode
		}
	}
	if len(set) > 1 {
		c.Encryption.SnapshotMode = seal.SnapshotPlain
		return &Error{
			Name:     strings.Join(set, " and "),
			Reason:   "more than one snapshot encryption mode is set",
			Accepted: "exactly one of GPG_PASSPHRASE (BACKUP_PASSWORD), GPG_PUBLIC_KEY_RING, AGE_PASSPHRASE, AGE_PUBLIC_KEYS",
		}
	}
	return nil
}

func (l *loader) checkIntervals() error {
	c := l.c
	if c.Health.MaxSyncAge < c.Sync.PrimaryInterval {
		return c.errFor("HEALTHCHECK_MAX_SYNC_AGE",
			fmt.Sprintf("shorter than PRIMARY_SYNC_INTERVAL (%s): a healthy node would be reported unhealthy", c.Sync.PrimaryInterval),
			"a duration of at least PRIMARY_SYNC_INTERVAL")
	}
	if 2*c.Lease.RenewInterval >= c.Lease.TTL {
		return c.errFor("LEASE_RENEW_INTERVAL",
			fmt.Sprintf("must be under half of LEASE_TTL (%s), so one missed renewal does not lose the lease", c.Lease.TTL),
			"a duration under LEASE_TTL/2")
	}
	return nil
}

// checkDatabase refuses a database outside the data folder: restores stage the
// database and the files together in DATA_FOLDER and swap them in as one.
func (l *loader) checkDatabase() error {
	c := l.c
	if c.Server != nil || sameDir(filepath.Dir(c.DBPath), c.DataFolder) { // a server database has no file
		return nil
	}
	return c.errFor("DATABASE_URL", fmt.Sprintf("not a file directly in DATA_FOLDER (%s): restores put the database and the files in place together", c.DataFolder),
		"a SQLite file path in DATA_FOLDER, such as $DATA_FOLDER/db.sqlite3 (the default)")
}

// sameDir compares two folders, relative ones as seen from the working folder.
func sameDir(a, b string) bool {
	if a, b = filepath.Clean(a), filepath.Clean(b); a == b {
		return true
	}
	aa, err1 := filepath.Abs(a)
	ab, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == ab
}

// checkRemotes refuses an extra snapshot destination whose rclone remote is
// not defined: every snapshot would fail there (and, with
// BACKUP_REQUIRE_ALL, fail as a whole).
func (l *loader) checkRemotes() error {
	c := l.c
	for _, remote := range c.Backup.ExtraRemotes {
		name, _, _ := strings.Cut(remote, ":")
		if name != "" && c.Rclone[strings.ToLower(name)] == nil {
			return c.errFor("BACKUP_EXTRA_REMOTES", fmt.Sprintf("remote %q is not defined: RCLONE_CONFIG_%s_TYPE is not set", name, strings.ToUpper(name)),
				"rclone destinations NAME:path whose RCLONE_CONFIG_NAME_TYPE is set, or :backend,option=value:path")
		}
	}
	return nil
}

func (l *loader) warn() {
	c := l.c
	if !c.Remote() {
		c.warnings = append(c.warnings, fmt.Sprintf("S3_BUCKET is empty: replicating to the local folder %s; a backup on the same disk is not a backup", c.LocalTarget))
	}
	if c.Remote() && c.Encryption.AllowUnencrypted && !c.Sealed() {
		c.warnings = append(c.warnings, "ALLOW_UNENCRYPTED=true: the replica and files are stored unencrypted in S3")
	}
	for _, r := range c.resolved {
		if r.secret && strings.HasPrefix(r.source, "flag ") {
			c.warnings = append(c.warnings, fmt.Sprintf("%s is given on the command line, where other users of this host can see it; prefer %s_FILE", r.from, r.name))
		}
	}
	if c.Mode == ModeServerless {
		if c.Backup.Enabled {
			c.warnings = append(c.warnings, "DEPLOYMENT_MODE=serverless with BACKUP_ENABLED=true: a scheduled snapshot only runs while an instance is up, and keeps it up while it runs")
		}
		if c.Vaultwarden.EnableWebsocket {
			c.warnings = append(c.warnings, "DEPLOYMENT_MODE=serverless with ENABLE_WEBSOCKET=true: open /notifications/hub connections keep the platform from scaling to zero")
		}
		if c.Role == RoleSecondary {
			c.warnings = append(c.warnings, "DEPLOYMENT_MODE=serverless with NODE_ROLE=secondary: the data is pulled once at start and never refreshed")
		}
	}
}

// checkContainers turns container operations on when a label variable is set.
func (l *loader) checkContainers() error {
	c := l.c
	c.Containers.Enabled = c.lookup("BACKUP_STOP_DURING_BACKUP_LABEL").from != "" || c.lookup("EXEC_LABEL").from != ""
	return nil
}
