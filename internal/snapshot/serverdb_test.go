package snapshot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/notify"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/serverdb"
	"github.com/vwstream/vwstream/internal/snapshot"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// newServerVault is a Vaultwarden with a server database (schema, seed
// ciphers, two attachment rows) and a data folder with the attachment files,
// rsa_key.pem and config.json.
func newServerVault(t *testing.T, kind string) (*serverdb.URL, string) {
	t.Helper()
	u := testenv.NewServerVault(t, kind, 100)
	ctx := t.Context()
	db, err := serverdb.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dir := filepath.Join(t.TempDir(), "data")
	for i, id := range []string{"att-one", "att-two"} {
		body := bytes.Repeat([]byte{byte('a' + i)}, 1000*(i+1))
		p := filepath.Join(dir, "attachments", vaultsim.ServerCipherID("seed", i), id)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, body, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := vaultsim.AddServerAttachment(ctx, db, i, id, int64(len(body))); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{"rsa_key.pem": "-----BEGIN PRIVATE KEY-----\nx\n", "config.json": "{}"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return u, dir
}

func serverSource(dir string, u *serverdb.URL) snapshot.Source {
	src := snapshot.SourceFromFolder(dir)
	src.DBPath, src.Server = "", u
	return src
}

// TestServerDB_SnapshotRestore takes a snapshot of a server database while a
// workload writes, and restores it into an empty database: the restored rows
// are exactly the ledger's transactions in the dump's snapshot, the counts
// match the manifest, the files are restored; a non-empty database is
// refused; without a URL the dump lands in the folder and the stock tool
// reads it. The password appears in no log line, result or error.
func TestServerDB_SnapshotRestore(t *testing.T) {
	for _, kind := range []string{serverdb.PostgreSQL, serverdb.MySQL} {
		t.Run(kind, func(t *testing.T) {
			ctx := t.Context()
			u, dir := newServerVault(t, kind)
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			store := newLocal(t)
			keys := seal.SnapshotKeys{GPGPassphrase: testPassphrase}

			db, err := serverdb.Open(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			l, stop := vaultsim.StartServerWorkload(ctx, db, kind)
			testenv.WaitFor(t, "20 transactions", func() bool { _, a := l.Counts(); return a >= 20 })
			_, ackedBefore := l.Counts()
			res, err := snapshot.Run(ctx, snapshot.Options{
				Source:    serverSource(dir, u),
				Encrypter: encrypter(t, seal.SnapshotOptions{Mode: seal.SnapshotGPGPassphrase, GPGPassphrase: testPassphrase}),
				Logger:    logger,
			}, []snapshot.Destination{{Name: "target", Store: store, Verify: true}})
			startedAfter, _ := l.Counts()
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			testenv.WaitFor(t, "10 transactions after the snapshot", func() bool { s, _ := l.Counts(); return s >= startedAfter+10 })
			if err := stop(); err != nil {
				t.Fatalf("workload: %v", err)
			}
			if res.Degraded || res.DBCopyBytes != 0 {
				t.Errorf("result %+v: want no missing attachment and no temporary copy", res)
			}

			// Restore into an empty database.
			dst, err := serverdb.Parse(testenv.NewPostgres(t))
			if kind == serverdb.MySQL {
				dst, err = serverdb.Parse(testenv.NewMySQL(t))
			}
			if err != nil {
				t.Fatal(err)
			}
			to := filepath.Join(t.TempDir(), "restored")
			got, err := snapshot.Restore(ctx, snapshot.RestoreOptions{Store: store, Name: "latest", To: to, Keys: keys, DatabaseURL: dst, Logger: logger})
			if err != nil {
				t.Fatalf("Restore: %v", err)
			}
			if got.Database == nil || got.Database.Migration != vaultsim.ServerMigrations[len(vaultsim.ServerMigrations)-1] || got.Database.ServerVersion == "" {
				t.Fatalf("restore result database %+v", got.Database)
			}
			if d := serverdb.CompareCounts(got.Tables, got.Database.Tables); len(d) > 0 || got.Tables["attachments"] != 2 {
				t.Fatalf("restored counts %v vs manifest %v", got.Tables, got.Database.Tables)
			}
			rdb, err := serverdb.Open(ctx, dst)
			if err != nil {
				t.Fatal(err)
			}
			defer rdb.Close()
			n, err := vaultsim.VerifyServerRestore(ctx, db, rdb, kind, l, got.Database.Snapshot, ackedBefore, startedAfter)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d workload transactions in the snapshot, archive %d bytes", kind, n, res.Size)
			want := dataFiles(t, dir)
			sameFiles(t, dataFiles(t, to), want)

			// The source database is not empty: refused before any download.
			_, err = snapshot.Restore(ctx, snapshot.RestoreOptions{Store: store, Name: "latest", To: filepath.Join(t.TempDir(), "x"), Keys: keys, DatabaseURL: u})
			if !errors.Is(err, serverdb.ErrNotEmpty) {
				t.Fatalf("restore into the source database: %v, want ErrNotEmpty", err)
			}
			errText := err.Error()

			// Without a URL: the dump file in the folder, readable by the stock tool.
			to2 := filepath.Join(t.TempDir(), "dumped")
			got2, err := snapshot.Restore(ctx, snapshot.RestoreOptions{Store: store, Name: "latest", To: to2, Keys: keys, Logger: logger})
			if err != nil {
				t.Fatalf("Restore without a database: %v", err)
			}
			dumpFile := filepath.Join(to2, got2.DumpFile)
			if kind == serverdb.PostgreSQL {
				out, err := exec.Command("pg_restore", "--list", dumpFile).CombinedOutput()
				if err != nil || !strings.Contains(string(out), "TABLE DATA public ciphers") {
					t.Fatalf("pg_restore --list %s: %v\n%s", got2.DumpFile, err, out)
				}
			} else if b, err := os.ReadFile(dumpFile); err != nil || !bytes.Contains(b, []byte("INSERT INTO `ciphers`")) {
				t.Fatalf("dump file %s: %v", got2.DumpFile, err)
			}
			if _, err := os.Stat(filepath.Join(to2, snapshot.DumpFolder)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("dump parts left in the restored folder: %v", err)
			}

			// An attachment row without its file makes a snapshot degraded
			// (PostgreSQL: rows read in the snapshot; MySQL: from the dump).
			if err := vaultsim.AddServerAttachment(ctx, db, 2, "att-missing", 5); err != nil {
				t.Fatal(err)
			}
			res3, err := snapshot.Run(ctx, snapshot.Options{Source: serverSource(dir, u), Logger: logger},
				[]snapshot.Destination{{Name: "target", Store: newLocal(t)}})
			if err != nil || !res3.Degraded || res3.MissingAttachments != 1 {
				t.Fatalf("snapshot with a row without its file: degraded %v, missing %d, %v; want degraded, 1", res3.Degraded, res3.MissingAttachments, err)
			}

			js, _ := json.Marshal([]any{res, got, got2})
			for what, text := range map[string]string{"logs": logs.String(), "results": string(js), "error": errText} {
				if strings.Contains(text, u.Password) || strings.Contains(text, dst.Password) {
					t.Errorf("the database password appears in the %s", what)
				}
			}
		})
	}
}

// TestServerDB_DamagedArchiveLoadsNothing: a truncated archive and one with a
// changed byte in the dump are refused, and the empty database stays empty:
// the archive is checked whole before the dump is loaded.
func TestServerDB_DamagedArchiveLoadsNothing(t *testing.T) {
	ctx := t.Context()
	u, dir := newServerVault(t, serverdb.PostgreSQL)
	store := newLocal(t)
	res, err := snapshot.Run(ctx, snapshot.Options{Source: serverSource(dir, u), Compression: snapshot.CompressNone},
		[]snapshot.Destination{{Name: "target", Store: store, Verify: true}})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := store.Get(ctx, layout.Snapshots+res.Name, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	archive, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	// The dump is the first entry: its data starts after the 512-byte header
	// and the PAX records; change a byte well inside it.
	i := bytes.Index(archive, []byte("PGDMP"))
	if i < 0 {
		t.Fatal("no pg_dump custom-format magic in the archive")
	}
	tampered := bytes.Clone(archive)
	tampered[i+2000] ^= 0x20
	for name, body := range map[string][]byte{
		"truncated": archive[:len(archive)/2],
		"tampered":  tampered,
	} {
		t.Run(name, func(t *testing.T) {
			key := layout.Snapshots + name + "-" + res.Name
			if _, err := store.Put(ctx, key, bytes.NewReader(body), objstore.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			dst, err := serverdb.Parse(testenv.NewPostgres(t))
			if err != nil {
				t.Fatal(err)
			}
			_, err = snapshot.Restore(ctx, snapshot.RestoreOptions{Store: store, Name: name + "-" + res.Name, To: filepath.Join(t.TempDir(), "r"), DatabaseURL: dst})
			if !errors.Is(err, snapshot.ErrDamaged) || strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("restore of a %s archive: %v, want one line matching ErrDamaged", name, err)
			}
			tables, err := serverdb.Empty(context.Background(), dst)
			if err != nil || len(tables) > 0 {
				t.Fatalf("after the refused restore the database holds %v (%v), want nothing", tables, err)
			}
		})
	}
}

type notifications struct{ events []notify.Event }

func (n *notifications) Notify(_ context.Context, ev notify.Event) error {
	n.events = append(n.events, ev)
	return nil
}

// TestServerDB_FailedSnapshotNotifiesWithoutPassword: a snapshot whose
// database refuses the password fails with one readable line, and neither
// the error, the log nor the notification holds the password.
func TestServerDB_FailedSnapshotNotifiesWithoutPassword(t *testing.T) {
	good, err := serverdb.Parse(testenv.NewPostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	const pw = "N0t-The-Passw0rd"
	bad := *good
	bad.Password = pw
	var logs bytes.Buffer
	n := &notifications{}
	_, err = snapshot.Run(t.Context(), snapshot.Options{Source: serverSource(t.TempDir(), &bad), Notifier: n,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}, []snapshot.Destination{{Name: "target", Store: newLocal(t)}})
	if err == nil || !strings.Contains(err.Error(), "wrong user name or password") || strings.ContainsAny(err.Error(), "\r\n") {
		t.Fatalf("Run with a wrong password: %v, want one line saying so", err)
	}
	if len(n.events) != 1 || n.events[0].OK {
		t.Fatalf("notifications %+v, want one failure", n.events)
	}
	for what, text := range map[string]string{"error": err.Error(), "log": logs.String(), "notification": n.events[0].Error} {
		if strings.Contains(text, pw) {
			t.Errorf("the password appears in the %s: %s", what, text)
		}
	}
}
