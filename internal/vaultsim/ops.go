package vaultsim

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// cipherRef is a live (not deleted) cipher the workload may touch.
type cipherRef struct {
	uuid, user string
	attached   bool // has (or is getting) an attachment: never hard-deleted
}

type deviceRef struct{ uuid, user string }

// pool is what the workload knows exists; guarded by Workload.mu.
type pool struct {
	users   []string
	ciphers []cipherRef
	folders map[string][]string
	devices []deviceRef
}

func loadPool(ctx context.Context, db *sql.DB) (*pool, error) {
	p := &pool{folders: map[string][]string{}}
	scan := func(q string, fn func(a, b string, c bool)) error {
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			return fmt.Errorf("load vault: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var a, b string
			var c bool
			if err := rows.Scan(&a, &b, &c); err != nil {
				return fmt.Errorf("load vault: %w", err)
			}
			fn(a, b, c)
		}
		return rows.Err()
	}
	steps := []struct {
		q  string
		fn func(a, b string, c bool)
	}{
		{`SELECT uuid, '', 0 FROM users ORDER BY rowid`, func(a, _ string, _ bool) { p.users = append(p.users, a) }},
		{`SELECT uuid, coalesce(user_uuid, ''), EXISTS (SELECT 1 FROM attachments a WHERE a.cipher_uuid = c.uuid)
			FROM ciphers c WHERE deleted_at IS NULL ORDER BY rowid`,
			func(a, b string, c bool) { p.ciphers = append(p.ciphers, cipherRef{a, b, c}) }},
		{`SELECT uuid, user_uuid, 0 FROM folders ORDER BY rowid`, func(a, b string, _ bool) { p.folders[b] = append(p.folders[b], a) }},
		{`SELECT uuid, user_uuid, 0 FROM devices ORDER BY rowid`, func(a, b string, _ bool) { p.devices = append(p.devices, deviceRef{a, b}) }},
	}
	for _, s := range steps {
		if err := scan(s.q, s.fn); err != nil {
			return nil, err
		}
	}
	if len(p.users) == 0 {
		return nil, errEmptyVault
	}
	return p, nil
}

// writer is one pooled connection's worth of workload, with its own random source.
type writer struct {
	w   *Workload
	g   *gen
	led *ledger
}

// step runs one transaction chosen at random (and, for uploads, writes the file after).
func (wr *writer) step() error {
	o, g := wr.w.opts, wr.g
	p := g.r.Float64()
	switch {
	case p < o.AttachmentRatio:
		return wr.uploadAttachment()
	case p < o.AttachmentRatio+o.SendRatio:
		return wr.createSend()
	}
	switch q := g.r.IntN(100); {
	case q < 40:
		return wr.updateCipher()
	case q < 60:
		return wr.createCipher()
	case q < 68:
		return wr.deleteCipher(false)
	case q < 72:
		return wr.deleteCipher(true)
	case q < 82:
		return wr.folderOp()
	default:
		return wr.refreshDevice()
	}
}

// pickCipher picks a live cipher; remove drops it from the pool (refusing one with
// attachments when purge is set, as purging would orphan files), attach marks it.
func (wr *writer) pickCipher(remove, purge, attach bool) (cipherRef, bool) {
	w := wr.w
	w.mu.Lock()
	defer w.mu.Unlock()
	cs := w.state.ciphers
	if len(cs) == 0 {
		return cipherRef{}, false
	}
	i := wr.g.r.IntN(len(cs))
	c := cs[i]
	if purge && c.attached {
		return cipherRef{}, false
	}
	if remove {
		cs[i] = cs[len(cs)-1]
		w.state.ciphers = cs[:len(cs)-1]
	}
	if attach {
		cs[i].attached = true
	}
	return c, true
}

func (wr *writer) pickUser() string {
	wr.w.mu.Lock()
	defer wr.w.mu.Unlock()
	return wr.w.state.users[wr.g.r.IntN(len(wr.w.state.users))]
}

func bumpRevision(tx *sql.Tx, user, now string) error {
	if user == "" {
		return nil
	}
	if _, err := tx.Exec(`UPDATE users SET updated_at = ? WHERE uuid = ?`, now, user); err != nil {
		return fmt.Errorf("update user revision: %w", err)
	}
	return nil
}

func (wr *writer) createCipher() error {
	g, user := wr.g, wr.pickUser()
	wr.w.mu.Lock()
	fs := wr.w.state.folders[user]
	folder := ""
	if len(fs) > 0 && g.chance(0.5) {
		folder = fs[g.r.IntN(len(fs))]
	}
	wr.w.mu.Unlock()
	c := newCipher(g, time.Now(), 0)
	_, err := wr.w.commit(wr.led, func(tx *sql.Tx, now string) (ledgerEvent, error) {
		if _, err := tx.Exec(`INSERT INTO ciphers (uuid, created_at, updated_at, user_uuid, key, atype, name, notes,
			fields, data, password_history, reprompt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`,
			c.uuid, now, now, user, c.key, c.atype, c.name, c.notes, c.fields, c.data, c.history); err != nil {
			return ledgerEvent{}, fmt.Errorf("insert cipher: %w", err)
		}
		if folder != "" {
			if _, err := tx.Exec(`INSERT INTO folders_ciphers (cipher_uuid, folder_uuid) VALUES (?, ?)`, c.uuid, folder); err != nil {
				return ledgerEvent{}, fmt.Errorf("insert folder cipher: %w", err)
			}
		}
		return ledgerEvent{EventCipherCreated, user, c.uuid}, bumpRevision(tx, user, now)
	})
	if err != nil {
		return err
	}
	wr.w.mu.Lock()
	wr.w.state.ciphers = append(wr.w.state.ciphers, cipherRef{uuid: c.uuid, user: user})
	wr.w.mu.Unlock()
	return nil
}

func (wr *writer) updateCipher() error {
	c, ok := wr.pickCipher(false, false, false)
	if !ok {
		return wr.createCipher()
	}
	g := wr.g
	_, err := wr.w.commit(wr.led, func(tx *sql.Tx, now string) (ledgerEvent, error) {
		var atype int
		err := tx.QueryRow(`SELECT atype FROM ciphers WHERE uuid = ?`, c.uuid).Scan(&atype)
		if err != nil && err != sql.ErrNoRows {
			return ledgerEvent{}, fmt.Errorf("read cipher: %w", err)
		}
		nc := cipher{atype: atype, name: g.encString(g.between(4, 30))}
		if _, err := tx.Exec(`UPDATE ciphers SET name = ?, data = ?, updated_at = ? WHERE uuid = ?`,
			nc.name, cipherData(g, nc), now, c.uuid); err != nil {
			return ledgerEvent{}, fmt.Errorf("update cipher: %w", err)
		}
		return ledgerEvent{EventCipherUpdated, nullable(c.user), c.uuid}, bumpRevision(tx, c.user, now)
	})
	return err
}

// deleteCipher soft-deletes (to trash) or, for ciphers without attachments, purges.
func (wr *writer) deleteCipher(hard bool) error {
	c, ok := wr.pickCipher(true, hard, false)
	if !ok {
		return wr.createCipher()
	}
	_, err := wr.w.commit(wr.led, func(tx *sql.Tx, now string) (ledgerEvent, error) {
		if !hard {
			if _, err := tx.Exec(`UPDATE ciphers SET deleted_at = ?, updated_at = ? WHERE uuid = ?`, now, now, c.uuid); err != nil {
				return ledgerEvent{}, fmt.Errorf("soft delete cipher: %w", err)
			}
			return ledgerEvent{EventCipherSoftDeleted, nullable(c.user), c.uuid}, bumpRevision(tx, c.user, now)
		}
		for _, t := range []string{"folders_ciphers", "favorites", "ciphers_collections"} {
			if _, err := tx.Exec(`DELETE FROM `+t+` WHERE cipher_uuid = ?`, c.uuid); err != nil {
				return ledgerEvent{}, fmt.Errorf("delete cipher: %w", err)
			}
		}
		if _, err := tx.Exec(`DELETE FROM ciphers WHERE uuid = ?`, c.uuid); err != nil {
			return ledgerEvent{}, fmt.Errorf("delete cipher: %w", err)
		}
		return ledgerEvent{EventCipherDeleted, nullable(c.user), c.uuid}, bumpRevision(tx, c.user, now)
	})
	return err
}

func (wr *writer) folderOp() error {
	g, user := wr.g, wr.pickUser()
	wr.w.mu.Lock()
	fs := wr.w.state.folders[user]
	rename := ""
	if len(fs) > 0 && g.chance(0.3) {
		rename = fs[g.r.IntN(len(fs))]
	}
	wr.w.mu.Unlock()
	id, name := g.uuid(), g.encString(g.between(4, 20))
	_, err := wr.w.commit(wr.led, func(tx *sql.Tx, now string) (ledgerEvent, error) {
		var err error
		if rename != "" {
			_, err = tx.Exec(`UPDATE folders SET name = ?, updated_at = ? WHERE uuid = ?`, name, now, rename)
		} else {
			_, err = tx.Exec(`INSERT INTO folders (uuid, created_at, updated_at, user_uuid, name) VALUES (?, ?, ?, ?, ?)`,
				id, now, now, user, name)
		}
		if err != nil {
			return ledgerEvent{}, fmt.Errorf("write folder: %w", err)
		}
		return ledgerEvent{EventCipherUpdated, user, nil}, bumpRevision(tx, user, now)
	})
	if err == nil && rename == "" {
		wr.w.mu.Lock()
		wr.w.state.folders[user] = append(wr.w.state.folders[user], id)
		wr.w.mu.Unlock()
	}
	return err
}

// refreshDevice rotates a device's refresh token, as every login and token refresh does.
func (wr *writer) refreshDevice() error {
	wr.w.mu.Lock()
	ds := wr.w.state.devices
	var d deviceRef
	if len(ds) > 0 {
		d = ds[wr.g.r.IntN(len(ds))]
	}
	wr.w.mu.Unlock()
	if d.uuid == "" {
		d = deviceRef{wr.g.uuid(), wr.pickUser()}
	}
	token := refreshToken(wr.g)
	_, err := wr.w.commit(wr.led, func(tx *sql.Tx, now string) (ledgerEvent, error) {
		if _, err := tx.Exec(`INSERT INTO devices (uuid, created_at, updated_at, user_uuid, name, atype, refresh_token)
			VALUES (?, ?, ?, ?, 'firefox', 9, ?)
			ON CONFLICT (uuid, user_uuid) DO UPDATE SET refresh_token = excluded.refresh_token, updated_at = excluded.updated_at`,
			d.uuid, now, now, d.user, token); err != nil {
			return ledgerEvent{}, fmt.Errorf("update device: %w", err)
		}
		return ledgerEvent{EventUserLoggedIn, d.user, nil}, nil
	})
	return err
}

// uploadAttachment commits the attachments row, then writes the file in chunks.
func (wr *writer) uploadAttachment() error {
	c, ok := wr.pickCipher(false, false, true)
	if !ok {
		return wr.createCipher()
	}
	g, o := wr.g, wr.w.opts
	id, size := attachmentID(g), g.between(o.AttachmentMinSize, o.AttachmentMaxSize)
	_, err := wr.w.commit(wr.led, func(tx *sql.Tx, now string) (ledgerEvent, error) {
		if _, err := tx.Exec(`INSERT INTO attachments (id, cipher_uuid, file_name, file_size, akey) VALUES (?, ?, ?, ?, ?)`,
			id, c.uuid, g.encString(14), size, g.encString(64)); err != nil {
			return ledgerEvent{}, fmt.Errorf("insert attachment: %w", err)
		}
		if _, err := tx.Exec(`UPDATE ciphers SET updated_at = ? WHERE uuid = ?`, now, c.uuid); err != nil {
			return ledgerEvent{}, fmt.Errorf("update cipher: %w", err)
		}
		return ledgerEvent{EventCipherAttachmentCreated, nullable(c.user), c.uuid}, bumpRevision(tx, c.user, now)
	})
	if err != nil {
		return err
	}
	if err := wr.w.writeChunked(g, wr.w.v.AttachmentPath(c.uuid, id), size); err != nil {
		return err
	}
	wr.w.attachments.Add(1)
	return nil
}

// createSend commits a sends row; a file send's file is written after the commit.
func (wr *writer) createSend() error {
	g, user, o := wr.g, wr.pickUser(), wr.w.opts
	s := newSend(g, user, time.Now(), g.chance(0.5), Options{AttachmentMinSize: o.AttachmentMinSize, AttachmentMaxSize: o.AttachmentMaxSize})
	akey := g.encString(16)
	_, err := wr.w.commit(wr.led, func(tx *sql.Tx, now string) (ledgerEvent, error) {
		deletion := ts(time.Now().AddDate(0, 0, 7))
		if _, err := tx.Exec(`INSERT INTO sends (uuid, user_uuid, name, atype, data, akey, access_count, creation_date,
			revision_date, deletion_date, disabled, hide_email) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, 0, 0)`,
			s.uuid, user, s.name, s.atype, s.data, akey, now, now, deletion); err != nil {
			return ledgerEvent{}, fmt.Errorf("insert send: %w", err)
		}
		return ledgerEvent{EventUserLoggedIn, user, nil}, bumpRevision(tx, user, now)
	})
	if err != nil {
		return err
	}
	if s.atype == 1 {
		if err := wr.w.writeChunked(g, wr.w.v.SendPath(s.uuid, s.fileID), s.size); err != nil {
			return err
		}
	}
	wr.w.sends.Add(1)
	return nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
