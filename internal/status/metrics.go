package status

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the node's Prometheus registry: gauges read from the board at every
// scrape, counters of object-store traffic (see Instrument), and the Go runtime
// and process collectors. It is private to the node, never the global registry.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	bytes    *prometheus.CounterVec
}

// NewMetrics makes the registry for board b.
func NewMetrics(b *Board) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vwstream_store_requests_total",
			Help: "Object store operations, by store and operation.",
		}, []string{"store", "op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vwstream_store_errors_total",
			Help: "Failed object store operations (not counting not-found and failed preconditions), by store and operation.",
		}, []string{"store", "op"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vwstream_store_bytes_total",
			Help: "Bytes sent to (up) and read from (down) the object store.",
		}, []string{"store", "direction"}),
	}
	m.reg.MustRegister(m.requests, m.errors, m.bytes, &boardCollector{b: b},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the registry, for components that add their own collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	descInfo        = desc("vwstream_info", "Always 1; labels describe the node.", "role", "mode", "version")
	descReady       = desc("vwstream_ready", "1 when the node is started and healthy (what /readyz answers).")
	descErrors      = desc("vwstream_errors", "Number of current errors in the status document.")
	descDBLag       = desc("vwstream_db_replication_lag_seconds", "How long the newest local transaction has waited for the replica; 0 when caught up.")
	descDBTXID      = desc("vwstream_db_txid", "Last database transaction id, captured locally or replicated.", "kind")
	descDBLastSync  = desc("vwstream_db_last_sync_timestamp_seconds", "When the replica was last confirmed caught up (secondary: last pull; a PostgreSQL or MySQL database: the newest good snapshot's dump).")
	descDBEvery     = desc("vwstream_db_snapshot_interval_seconds", "A PostgreSQL or MySQL database, protected by snapshots alone: the snapshot interval, its recovery point.")
	descFilesPend   = desc("vwstream_files_pending", "Changed files not yet uploaded.")
	descFilesUp     = desc("vwstream_files_uploaded_total", "Files uploaded since start.")
	descFilesBytes  = desc("vwstream_files_uploaded_bytes_total", "Bytes of files uploaded since start.")
	descFilesLast   = desc("vwstream_files_last_sync_timestamp_seconds", "When the last complete file sync ended.")
	descSnapLast    = desc("vwstream_snapshot_last_success_timestamp_seconds", "When the newest good snapshot was made.")
	descSnapAge     = desc("vwstream_snapshot_age_seconds", "Age of the newest good snapshot.")
	descSnapSize    = desc("vwstream_snapshot_last_size_bytes", "Size of the newest good snapshot.")
	descSnapOK      = desc("vwstream_snapshot_last_ok", "1 when the last snapshot attempt succeeded, 0 when it failed.")
	descSnapStop    = desc("vwstream_snapshot_last_stop_seconds", "Longest time a container was stopped for the last snapshot.")
	descSnapSpool   = desc("vwstream_snapshot_last_spool_bytes", "Bytes set aside while containers were stopped for the last snapshot.")
	descLeaseHeld   = desc("vwstream_lease_held", "1 while this node holds the primary's lease.")
	descLeaseExp    = desc("vwstream_lease_expires_timestamp_seconds", "When the lease expires unless renewed.")
	descChildUp     = desc("vwstream_child_running", "1 while the supervised Vaultwarden runs.")
	descChildRestar = desc("vwstream_child_restarts_total", "Restarts of the supervised process.")
	descLastSuccess = desc("vwstream_last_success_timestamp_seconds", "When each kind of protection last succeeded: db (replica caught up), files (complete file sync), snapshot, drill (restore drill).", "kind")
	descDrillDur    = desc("vwstream_drill_duration_seconds", "How long the last restore drill took: the measured restore time.")
	descDrillOK     = desc("vwstream_drill_last_ok", "1 when the last restore drill passed, 0 when it failed.")
	descUpdChecks   = desc("vwstream_update_checks_total", "Containers checked against their registry for a newer image.")
	descUpdDone     = desc("vwstream_updates_total", "Containers replaced by a newer image that came up healthy.")
	descUpdRollback = desc("vwstream_update_rollbacks_total", "Updates rolled back: the new container was not healthy.")
	descUpdFailures = desc("vwstream_update_failures_total", "Image checks or updates that failed.")
	descUpdLast     = desc("vwstream_update_last_check_timestamp_seconds", "When the last image-update pass ended.")
)

// boardCollector turns the board's document into metrics at scrape time, so the
// document and the metrics can never disagree.
type boardCollector struct{ b *Board }

func (c *boardCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInfo, descReady, descErrors, descDBLag, descDBTXID, descDBLastSync, descDBEvery,
		descFilesPend, descFilesUp, descFilesBytes, descFilesLast, descSnapLast, descSnapAge, descSnapSize,
		descSnapOK, descSnapStop, descSnapSpool, descLeaseHeld, descLeaseExp, descChildUp, descChildRestar,
		descLastSuccess, descDrillDur, descDrillOK,
		descUpdChecks, descUpdDone, descUpdRollback, descUpdFailures, descUpdLast} {
		ch <- d
	}
}

func (c *boardCollector) Collect(ch chan<- prometheus.Metric) {
	doc := c.b.Snapshot()
	now := c.b.opts.Clock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	stamp := func(d *prometheus.Desc, t time.Time) {
		if !t.IsZero() {
			gauge(d, float64(t.UnixNano())/1e9)
		}
	}
	gauge(descInfo, 1, string(doc.Role), string(doc.Mode), doc.Version)
	gauge(descReady, boolf(len(doc.Problems(c.b.Limits(), now)) == 0))
	gauge(descErrors, float64(len(doc.Errors)))
	if d := doc.DB; d != nil && d.Server != "" {
		gauge(descDBEvery, d.SnapshotEvery) // no replication: no lag, no transaction ids
		stamp(descDBLastSync, d.LastSync)
	} else if d != nil {
		gauge(descDBLag, d.LagSeconds)
		gauge(descDBTXID, float64(d.TXIDLocal), "local")
		gauge(descDBTXID, float64(d.TXIDReplicated), "replicated")
		stamp(descDBLastSync, d.LastSync)
	}
	if f := doc.Files; f != nil {
		gauge(descFilesPend, float64(f.Pending))
		counter(descFilesUp, float64(f.Uploaded))
		counter(descFilesBytes, float64(f.UploadedBytes))
		stamp(descFilesLast, f.LastSync)
	}
	if s := doc.Snapshot; s != nil {
		if !s.LastSuccess.IsZero() {
			stamp(descSnapLast, s.LastSuccess)
			gauge(descSnapAge, now.Sub(s.LastSuccess).Seconds())
			gauge(descSnapSize, float64(s.LastSize))
		}
		if s.LastResult != "" {
			gauge(descSnapOK, boolf(s.LastResult == ResultOK))
			gauge(descSnapStop, s.LastStopSeconds)
			gauge(descSnapSpool, float64(s.LastSpoolBytes))
		}
	}
	if l := doc.Lease; l != nil {
		gauge(descLeaseHeld, boolf(l.Ours))
		stamp(descLeaseExp, l.ExpiresAt)
	}
	lastSuccess := func(kind string, t time.Time) {
		if !t.IsZero() {
			gauge(descLastSuccess, float64(t.UnixNano())/1e9, kind)
		}
	}
	if doc.DB != nil {
		lastSuccess("db", doc.DB.LastSync)
	}
	if doc.Files != nil {
		lastSuccess("files", doc.Files.LastSync)
	}
	if doc.Snapshot != nil {
		lastSuccess("snapshot", doc.Snapshot.LastSuccess)
	}
	if d := doc.Drill; d != nil {
		lastSuccess("drill", d.LastSuccess)
		if d.LastResult != "" {
			gauge(descDrillDur, d.LastDuration)
			gauge(descDrillOK, boolf(d.LastResult == ResultOK))
		}
	}
	if k := doc.Child; k != nil {
		gauge(descChildUp, boolf(k.Running))
		counter(descChildRestar, float64(k.Restarts))
	}
	if u := doc.Updates; u != nil {
		counter(descUpdChecks, float64(u.Checks))
		counter(descUpdDone, float64(u.Updated))
		counter(descUpdRollback, float64(u.RolledBack))
		counter(descUpdFailures, float64(u.Failures))
		stamp(descUpdLast, u.LastCheck)
	}
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
