// Package status is what a running node tells the outside: the status document
// (STATUS_FILE and GET /status), /healthz, /readyz and Prometheus /metrics on
// STATUS_ADDR, and the health rules `vwstream healthcheck` applies to them.
// Nothing here ever holds a secret: components report progress and error messages,
// never configuration.
package status

import (
	"time"

	"github.com/vwstream/vwstream/internal/config"
)

// States of the node, the "status" field. The first three are those of the
// sync-status.json written by the image vwstream replaces.
const (
	StateStarting = "starting"
	StateOK       = "ok"
	StateError    = "error"
	StateStopping = "stopping"
)

// Snapshot results.
const (
	ResultOK    = "ok"
	ResultError = "error"
)

// Status is the status document. Its first four fields keep the shape of the
// replaced image's /tmp/sync-status.json so existing probes keep working.
type Status struct {
	Status    string      `json:"status"`    // StateStarting, StateOK, StateError or StateStopping
	Role      config.Role `json:"role"`      // primary or secondary
	Timestamp int64       `json:"timestamp"` // unix seconds when the document was made
	Datetime  string      `json:"datetime"`  // the same instant, RFC 3339 UTC

	Mode      config.Mode `json:"mode,omitempty"`    // persistent or serverless
	Version   string      `json:"version,omitempty"` // vwstream's version
	StartedAt time.Time   `json:"started_at,omitzero"`

	DB       *DB       `json:"db,omitempty"`
	Files    *Files    `json:"files,omitempty"`
	Snapshot *Snapshot `json:"snapshot,omitempty"`
	Lease    *Lease    `json:"lease,omitempty"`
	Child    *Child    `json:"child,omitempty"`
	Drill    *Drill    `json:"drill,omitempty"`
	Updates  *Updates  `json:"updates,omitempty"`
	// Alerts lists the alerts active now (see internal/alert); critical ones
	// are health problems.
	Alerts []Alert `json:"alerts,omitempty"`

	// Errors lists what is wrong now, one line each; empty when status is ok.
	Errors []string `json:"errors"`
}

// DB is database replication (primary) or the last database pull (secondary).
type DB struct {
	TXIDLocal      uint64    `json:"txid_local"`
	TXIDReplicated uint64    `json:"txid_replicated"`
	LagSeconds     float64   `json:"lag_seconds"` // 0 when the replica holds every local transaction
	LastSync       time.Time `json:"last_sync,omitzero"`
	LastError      string    `json:"last_error,omitempty"`
	// Server describes a PostgreSQL or MySQL database, protected by
	// snapshots alone (no replication): LastSync is then the newest good
	// snapshot's dump and SnapshotEvery the schedule's interval.
	Server        string  `json:"server,omitempty"`
	SnapshotEvery float64 `json:"snapshot_every_seconds,omitempty"`
}

// Files is file sync: attachments, sends, config.json, rsa_key*.
type Files struct {
	Pending       int       `json:"pending"`            // changed files not yet uploaded
	LastSync      time.Time `json:"last_sync,omitzero"` // last complete pass (reconcile or pull)
	Uploaded      int64     `json:"uploaded"`           // files uploaded since start
	UploadedBytes int64     `json:"uploaded_bytes"`     // their bytes
	LastError     string    `json:"last_error,omitempty"`
	Alarm         string    `json:"alarm,omitempty"` // a condition a human must look at (e.g. watch limit)
}

// Snapshot is the newest scheduled or on-demand snapshot.
type Snapshot struct {
	LastTime    time.Time `json:"last_time,omitzero"`    // when the last attempt ended
	LastResult  string    `json:"last_result,omitempty"` // ResultOK or ResultError
	LastName    string    `json:"last_name,omitempty"`   // object name of the last good snapshot
	LastSize    int64     `json:"last_size"`             // bytes of the last good snapshot
	LastSuccess time.Time `json:"last_success,omitzero"` // when the last good snapshot was made
	LastError   string    `json:"last_error,omitempty"`
	// Container operations of the last attempt: the longest time a container
	// was stopped, and the bytes spooled meanwhile (0 when none was stopped).
	LastStopSeconds float64 `json:"last_stop_seconds"`
	LastSpoolBytes  int64   `json:"last_spool_bytes"`
}

// Lease is the primary's lease as this node knows it.
type Lease struct {
	Holder    string    `json:"holder,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	Ours      bool      `json:"ours"`
	Error     string    `json:"error,omitempty"` // why it is not ours any more
}

// Updates counts the image-update passes of UPDATE_ENABLED since start.
type Updates struct {
	Checks     int64     `json:"checks"`      // containers checked against their registry
	Updated    int64     `json:"updated"`     // replaced, the new container healthy
	RolledBack int64     `json:"rolled_back"` // the new container was not healthy; the old one runs again
	Failures   int64     `json:"failures"`    // checks or updates that failed
	LastCheck  time.Time `json:"last_check,omitzero"`
	// LastProblem says what went wrong in the last pass (a failed check or
	// update, a rollback, an image held back because it was rolled back
	// before), one line per container; empty when it went well.
	LastProblem string `json:"last_problem,omitempty"`
}

// Child is the supervised process (Vaultwarden); absent in sidecar mode.
type Child struct {
	PID      int  `json:"pid,omitempty"`
	Running  bool `json:"running"`
	Restarts int  `json:"restarts,omitempty"`
	ExitCode *int `json:"exit_code,omitempty"` // after it exited
}

// Drill is the newest restore drill.
type Drill struct {
	LastTime     time.Time `json:"last_time,omitzero"`    // when the last drill ended
	LastResult   string    `json:"last_result,omitempty"` // ResultOK or ResultError
	LastSuccess  time.Time `json:"last_success,omitzero"` // when the last good drill ended
	LastDuration float64   `json:"last_duration_seconds"` // how long the last drill took: the measured restore time
	LastError    string    `json:"last_error,omitempty"`
}

// Alert is an alert active now.
type Alert struct {
	Name     string    `json:"name"`     // e.g. replication_stalled
	Severity string    `json:"severity"` // warning or critical
	Since    time.Time `json:"since"`
	Message  string    `json:"message"`
}

// Severities of alerts.
const (
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)
