package vaultsim

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// Workload defaults.
const (
	DefaultRate            = 20.0
	DefaultBurst           = 1
	DefaultWriters         = 2
	DefaultAttachmentRatio = 0.05
	DefaultSendRatio       = 0.02
	DefaultChunkSize       = 16 << 10
	DefaultChunkDelay      = 2 * time.Millisecond
)

// WorkloadOptions shape a write workload. Zero fields take the defaults above.
type WorkloadOptions struct {
	// Rate is the average transactions per second; negative means as fast as possible.
	Rate float64
	// Burst is how many transactions are issued back to back before the pacer
	// idles long enough to keep the average at Rate; 1 paces evenly.
	Burst int
	// Writers is the number of concurrent writing connections, 1..MaxWriters.
	Writers int
	// AttachmentRatio and SendRatio are the shares of transactions that upload an
	// attachment or create a send; negative means none.
	AttachmentRatio float64
	SendRatio       float64
	// Count stops the run after that many transactions; Duration after that time.
	// With neither, the run lasts until its context is cancelled.
	Count    int64
	Duration time.Duration
	// Seed drives which operations run and what they write.
	Seed int64
	// Ledger is the path of the ledger file (outside the data folder); empty for none.
	Ledger string
	// ChunkSize and ChunkDelay shape how upload files are written, so a partial
	// file exists for a while after its row committed, as in Vaultwarden.
	ChunkSize  int
	ChunkDelay time.Duration
	// AttachmentMinSize and AttachmentMaxSize bound upload sizes (default 1-50 KB).
	AttachmentMinSize int
	AttachmentMaxSize int
}

func (o WorkloadOptions) withDefaults() WorkloadOptions {
	if o.Rate == 0 {
		o.Rate = DefaultRate
	}
	if o.Burst < 1 {
		o.Burst = DefaultBurst
	}
	if o.Writers < 1 {
		o.Writers = DefaultWriters
	}
	o.Writers = min(o.Writers, MaxWriters)
	if o.AttachmentRatio == 0 {
		o.AttachmentRatio = DefaultAttachmentRatio
	}
	if o.SendRatio == 0 {
		o.SendRatio = DefaultSendRatio
	}
	if o.ChunkSize < 1 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.ChunkDelay == 0 {
		o.ChunkDelay = DefaultChunkDelay
	}
	if o.AttachmentMinSize < 1 {
		o.AttachmentMinSize = 1 << 10
	}
	if o.AttachmentMaxSize < o.AttachmentMinSize {
		o.AttachmentMaxSize = max(50<<10, o.AttachmentMinSize)
	}
	return o
}

// Stats count what a workload has done so far.
type Stats struct {
	Tx          int64         `json:"tx"`
	Attachments int64         `json:"attachments"`
	Sends       int64         `json:"sends"`
	FileBytes   int64         `json:"file_bytes"`
	FirstSeq    int64         `json:"first_seq"`
	LastSeq     int64         `json:"last_seq"`
	Elapsed     time.Duration `json:"elapsed_ns"`
	TxPerSec    float64       `json:"tx_per_sec"`
}

// Workload writes to a vault the way Vaultwarden does: small transactions from a
// few pooled connections, in bursts, with uploads whose row commits before the file.
type Workload struct {
	v    *Vault
	opts WorkloadOptions

	tx, attachments, sends, fileBytes atomic.Int64
	firstSeq, lastSeq                 atomic.Int64
	started                           atomic.Int64 // unix nanos

	mu    sync.Mutex
	state *pool
}

// NewWorkload returns a workload for v; Run starts it.
func NewWorkload(v *Vault, opts WorkloadOptions) *Workload {
	return &Workload{v: v, opts: opts.withDefaults()}
}

// Stats returns the counts so far; safe to call while Run is going.
func (w *Workload) Stats() Stats {
	s := Stats{
		Tx: w.tx.Load(), Attachments: w.attachments.Load(), Sends: w.sends.Load(),
		FileBytes: w.fileBytes.Load(), FirstSeq: w.firstSeq.Load(), LastSeq: w.lastSeq.Load(),
	}
	if st := w.started.Load(); st != 0 {
		s.Elapsed = time.Since(time.Unix(0, st))
		if secs := s.Elapsed.Seconds(); secs > 0 {
			s.TxPerSec = float64(s.Tx) / secs
		}
	}
	return s
}

// Run writes until Count, Duration or ctx ends it. A transaction in flight when
// ctx ends is finished and logged, so a graceful stop leaves ledger and database
// in agreement. It returns the final stats and the first error.
func (w *Workload) Run(ctx context.Context) (Stats, error) {
	state, err := loadPool(ctx, w.v.DB)
	if err != nil {
		return Stats{}, fmt.Errorf("run workload: %w", err)
	}
	w.state = state
	var led *ledger
	if w.opts.Ledger != "" {
		if led, err = openLedger(w.opts.Ledger); err != nil {
			return Stats{}, fmt.Errorf("run workload: %w", err)
		}
		defer led.close()
		if err := reconcileLedger(ctx, w.v.DB, led, w.opts.Ledger); err != nil {
			return Stats{}, fmt.Errorf("run workload: %w", err)
		}
	}
	if w.opts.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.opts.Duration)
		defer cancel()
	}
	// Writers' random streams depend on the seed and on where this run starts,
	// so a second run on the same vault never regenerates the first run's ids.
	startSeq, err := maxSeq(ctx, w.v.DB)
	if err != nil {
		return Stats{}, fmt.Errorf("run workload: %w", err)
	}
	w.started.Store(time.Now().UnixNano())
	tokens := make(chan struct{})
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { w.pace(gctx, tokens); return nil })
	for i := range w.opts.Writers {
		wr := &writer{w: w, g: newGen(w.opts.Seed, fmt.Sprintf("workload %d writer %d", startSeq, i)), led: led}
		g.Go(func() error {
			for range tokens {
				if err := wr.step(); err != nil {
					return err
				}
			}
			return nil
		})
	}
	err = g.Wait()
	st := w.Stats()
	if err != nil {
		return st, fmt.Errorf("run workload: %w", err)
	}
	return st, nil
}

// pace hands out one token per transaction: Burst tokens back to back, then a
// pause so that the long-run average is Rate per second.
func (w *Workload) pace(ctx context.Context, tokens chan<- struct{}) {
	defer close(tokens)
	start := time.Now()
	var issued int64
	for {
		for range w.opts.Burst {
			if w.opts.Count > 0 && issued >= w.opts.Count {
				return
			}
			select {
			case tokens <- struct{}{}:
				issued++
			case <-ctx.Done():
				return
			}
		}
		if w.opts.Rate < 0 {
			continue
		}
		next := start.Add(time.Duration(float64(issued) / w.opts.Rate * float64(time.Second)))
		if d := time.Until(next); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
	}
}

// ledgerEvent is the event row that carries a transaction's seq.
type ledgerEvent struct {
	eventType        int
	userUUID, cipher any
}

// commit runs fn in one immediate transaction together with the ledger event,
// then logs the seq. It uses a background context on purpose: once a token is
// taken the transaction completes, so cancellation never tears one in half.
func (w *Workload) commit(led *ledger, fn func(tx *sql.Tx, now string) (ledgerEvent, error)) (int64, error) {
	ctx := context.Background()
	tx, err := w.v.DB.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	seq, err := maxSeq(ctx, tx)
	if err != nil {
		return 0, err
	}
	seq++
	now := ts(time.Now())
	ev, err := fn(tx, now)
	if err != nil {
		return 0, err
	}
	if _, err := tx.Exec(`INSERT INTO event (uuid, event_type, user_uuid, cipher_uuid, act_user_uuid, device_type, ip_address, event_date)
		VALUES (?, ?, ?, ?, ?, 9, '192.0.2.1', ?)`, seqUUID(seq), ev.eventType, ev.userUUID, ev.cipher, ev.userUUID, now); err != nil {
		return 0, fmt.Errorf("insert event: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit seq %d: %w", seq, err)
	}
	if err := led.append(seq, time.Now()); err != nil {
		return seq, err
	}
	w.tx.Add(1)
	w.firstSeq.CompareAndSwap(0, seq)
	for {
		last := w.lastSeq.Load()
		if seq <= last || w.lastSeq.CompareAndSwap(last, seq) {
			break
		}
	}
	return seq, nil
}

// writeChunked writes size random bytes to path in chunks with pauses, without
// fsync or rename, like Vaultwarden storing an upload.
func (w *Workload) writeChunked(g *gen, path string, size int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write upload: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write upload: %w", err)
	}
	for left := size; left > 0; {
		n := min(left, w.opts.ChunkSize)
		if _, err := f.Write(g.bytes(n)); err != nil {
			f.Close()
			return fmt.Errorf("write upload: %w", err)
		}
		left -= n
		if left > 0 {
			time.Sleep(w.opts.ChunkDelay)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write upload: %w", err)
	}
	w.fileBytes.Add(int64(size))
	return nil
}

var errEmptyVault = errors.New("vault has no users: create it with Create first")
