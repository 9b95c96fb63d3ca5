package vaultsim

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Create builds a Vaultwarden data folder in dir (created if missing, and which
// must not hold a database yet), deterministic from opts.Seed, and returns it open.
func Create(dir string, opts Options) (*Vault, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("create vault: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, DBName)); err == nil {
		return nil, fmt.Errorf("create vault: %s already exists in %s", DBName, dir)
	}
	for _, d := range []string{"", AttachmentsDir, SendsDir, TmpDir, IconCacheDir} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("create vault: %w", err)
		}
	}
	db, err := OpenDB(filepath.Join(dir, DBName))
	if err != nil {
		return nil, fmt.Errorf("create vault: %w", err)
	}
	v := &Vault{Dir: dir, DB: db}
	g := newGen(o.Seed, "fixture")
	if err := v.fill(g, o); err != nil {
		db.Close()
		return nil, fmt.Errorf("create vault: %w", err)
	}
	if err := writeSideFiles(dir, g, o); err != nil {
		db.Close()
		return nil, fmt.Errorf("create vault: %w", err)
	}
	return v, nil
}

// inserter writes rows through cached prepared statements and keeps the first error.
type inserter struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
	err   error
}

func (in *inserter) row(table, cols string, args ...any) {
	if in.err != nil {
		return
	}
	key := table + "(" + cols + ")"
	st, ok := in.stmts[key]
	if !ok {
		q := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", table, cols,
			strings.TrimSuffix(strings.Repeat("?,", len(args)), ","))
		if st, in.err = in.tx.Prepare(q); in.err != nil {
			return
		}
		in.stmts[key] = st
	}
	if _, err := st.Exec(args...); err != nil {
		in.err = fmt.Errorf("insert into %s: %w", table, err)
	}
}

// member is a confirmed organization membership.
type member struct{ uoUUID, userUUID, orgUUID string }

// fill creates the schema and every row in one transaction, then writes the files
// attachment and send rows point to.
func (v *Vault) fill(g *gen, o Options) error {
	ctx := context.Background()
	tx, err := v.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	for _, s := range schema {
		if _, err := tx.Exec(s); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	}
	in := &inserter{tx: tx, stmts: map[string]*sql.Stmt{}}
	now := o.Epoch
	start := now.AddDate(-2, 0, 0)
	span := now.Sub(start)

	for i, m := range migrations {
		in.row("__diesel_schema_migrations", "version,run_on", m, ts(start.Add(time.Duration(i)*time.Minute)))
	}

	users := make([]string, o.Users)
	for i := range users {
		users[i] = g.uuid()
		created := g.at(start, span/2)
		in.row("users", "uuid,enabled,created_at,updated_at,verified_at,email,name,password_hash,salt,"+
			"password_iterations,akey,private_key,public_key,security_stamp,equivalent_domains,"+
			"excluded_globals,client_kdf_type,client_kdf_iter,api_key,avatar_color",
			users[i], true, ts(created), ts(g.at(created, now.Sub(created))), ts(created),
			g.name(i)+"@example.com", g.name(i), g.bytes(32), g.bytes(64), 600000,
			g.encString(64), g.encString(1218), g.b64(294), g.uuid(), "[]", "[]", 0, 600000,
			hex.EncodeToString(g.bytes(15)), g.pick(avatarColors))
	}

	orgs := make([]string, o.Orgs)
	var members []member
	var collections []string
	collOrg := map[string]string{}
	for i := range orgs {
		orgs[i] = g.uuid()
		in.row("organizations", "uuid,name,billing_email,private_key,public_key",
			orgs[i], fmt.Sprintf("Org %d", i), g.name(i)+"@example.com", g.encString(1218), g.b64(294))
		for j, u := range users {
			if j != 0 && !g.chance(0.5) {
				continue
			}
			atype, status := 2, 2
			if j == 0 {
				atype = 0
			} else if g.chance(0.1) {
				status = g.between(0, 1)
			}
			uo := g.uuid()
			in.row("users_organizations", "uuid,user_uuid,org_uuid,access_all,akey,status,atype",
				uo, u, orgs[i], atype == 0, g.rsaEncString(), status, atype)
			members = append(members, member{uo, u, orgs[i]})
		}
		for _, pt := range []int{0, 1} { // two-step login, master password
			in.row("org_policies", "uuid,org_uuid,atype,enabled,data", g.uuid(), orgs[i], pt, g.chance(0.5), "{}")
		}
	}
	for i := 0; i < o.Collections && len(orgs) > 0; i++ {
		c := g.uuid()
		org := orgs[i%len(orgs)]
		collections = append(collections, c)
		collOrg[c] = org
		in.row("collections", "uuid,org_uuid,name", c, org, g.encString(16))
	}
	for _, m := range members {
		for _, c := range collections {
			if collOrg[c] == m.orgUUID && g.chance(0.4) {
				in.row("users_collections", "user_uuid,collection_uuid,read_only,hide_passwords,manage",
					m.userUUID, c, g.chance(0.2), false, g.chance(0.1))
			}
		}
	}
	for _, org := range orgs {
		grp := g.uuid()
		in.row("groups", "uuid,organizations_uuid,name,access_all,creation_date,revision_date",
			grp, org, "Staff", false, ts(g.at(start, span)), ts(now))
		for _, m := range members {
			if m.orgUUID == org && g.chance(0.5) {
				in.row("groups_users", "groups_uuid,users_organizations_uuid", grp, m.uoUUID)
			}
		}
		for _, c := range collections {
			if collOrg[c] == org {
				in.row("collections_groups", "collections_uuid,groups_uuid,read_only,hide_passwords,manage",
					c, grp, false, false, false)
			}
		}
	}

	folders := map[string][]string{}
	for i := 0; i < o.Folders; i++ {
		u := users[g.r.IntN(len(users))]
		f := g.uuid()
		folders[u] = append(folders[u], f)
		created := g.at(start, span)
		in.row("folders", "uuid,created_at,updated_at,user_uuid,name", f, ts(created), ts(created), u, g.encString(12))
	}

	type cipherRef struct{ uuid, user string }
	var live []cipherRef
	for i := 0; i < o.Ciphers; i++ {
		c := newCipher(g, start, span)
		var user, org any
		if len(collections) > 0 && g.chance(0.2) {
			coll := collections[g.r.IntN(len(collections))]
			org = collOrg[coll]
			in.row("ciphers_collections", "cipher_uuid,collection_uuid", c.uuid, coll)
		} else {
			u := users[g.r.IntN(len(users))]
			user = u
			if fs := folders[u]; len(fs) > 0 && g.chance(0.5) {
				in.row("folders_ciphers", "cipher_uuid,folder_uuid", c.uuid, fs[g.r.IntN(len(fs))])
			}
			if g.chance(0.1) {
				in.row("favorites", "user_uuid,cipher_uuid", u, c.uuid)
			}
		}
		var deleted any
		if g.chance(0.02) {
			deleted = ts(c.updated)
		} else {
			u, _ := user.(string)
			live = append(live, cipherRef{c.uuid, u})
		}
		in.row("ciphers", "uuid,created_at,updated_at,user_uuid,organization_uuid,key,atype,name,notes,"+
			"fields,data,password_history,deleted_at,reprompt",
			c.uuid, ts(c.created), ts(c.updated), user, org, c.key, c.atype, c.name, c.notes,
			c.fields, c.data, c.history, deleted, 0)
	}

	type file struct {
		path string
		size int
	}
	var files []file
	for i := 0; i < o.Attachments && len(live) > 0; i++ {
		c := live[g.r.IntN(len(live))]
		id := attachmentID(g)
		size := g.between(o.AttachmentMinSize, o.AttachmentMaxSize)
		in.row("attachments", "id,cipher_uuid,file_name,file_size,akey", id, c.uuid, g.encString(14), size, g.encString(64))
		files = append(files, file{v.AttachmentPath(c.uuid, id), size})
	}
	for i := 0; i < o.Sends; i++ {
		s := newSend(g, users[g.r.IntN(len(users))], now, i%3 == 2, o)
		in.row("sends", "uuid,user_uuid,name,notes,atype,data,akey,password_hash,password_salt,password_iter,"+
			"max_access_count,access_count,creation_date,revision_date,expiration_date,deletion_date,disabled,hide_email",
			s.uuid, s.user, s.name, nil, s.atype, s.data, g.encString(16), nil, nil, nil,
			nil, g.between(0, 3), ts(s.created), ts(s.created), nil, ts(s.created.AddDate(0, 0, 7)), false, false)
		if s.atype == 1 {
			files = append(files, file{v.SendPath(s.uuid, s.fileID), s.size})
		}
	}
	for i := 0; i < o.Devices; i++ {
		u := users[i%len(users)]
		created := g.at(start, span)
		dt := deviceTypes[g.r.IntN(len(deviceTypes))]
		in.row("devices", "uuid,created_at,updated_at,user_uuid,name,atype,push_uuid,push_token,refresh_token,twofactor_remember",
			g.uuid(), ts(created), ts(g.at(created, now.Sub(created))), u, dt.name, dt.atype, nil, nil,
			refreshToken(g), nil)
	}
	for _, u := range users {
		if g.chance(0.3) {
			in.row("twofactor", "uuid,user_uuid,atype,enabled,data,last_used",
				g.uuid(), u, 0, true, strings.ToUpper(hex.EncodeToString(g.bytes(10))), now.Unix()/30)
		}
	}
	if len(users) >= 2 {
		for i := 0; i < len(users)/5+1; i++ {
			a, b := users[g.r.IntN(len(users))], users[g.r.IntN(len(users))]
			if a == b {
				continue
			}
			created := g.at(start, span)
			in.row("emergency_access", "uuid,grantor_uuid,grantee_uuid,email,key_encrypted,atype,status,"+
				"wait_time_days,updated_at,created_at",
				g.uuid(), a, b, nil, g.rsaEncString(), g.between(0, 1), 2, 7, ts(created), ts(created))
		}
	}
	for i := 0; i < len(users)/10+1; i++ {
		in.row("invitations", "email", fmt.Sprintf("invitee%d@example.com", i))
	}
	for i := 0; i < o.Events; i++ {
		var org any
		if len(orgs) > 0 {
			org = orgs[g.r.IntN(len(orgs))]
		}
		u := users[g.r.IntN(len(users))]
		in.row("event", "uuid,event_type,user_uuid,org_uuid,act_user_uuid,device_type,ip_address,event_date",
			g.uuid(), eventTypes[g.r.IntN(len(eventTypes))], u, org, u, 9,
			fmt.Sprintf("192.0.2.%d", g.between(1, 254)), ts(g.at(start, span)))
	}
	if len(users) > 0 {
		created := g.at(now.AddDate(0, 0, -1), 12*time.Hour)
		in.row("auth_requests", "uuid,user_uuid,request_device_identifier,device_type,request_ip,access_code,"+
			"public_key,approved,creation_date",
			g.uuid(), users[0], g.uuid(), 0, "192.0.2.10", hex.EncodeToString(g.bytes(12)), g.b64(294), nil, ts(created))
	}
	if in.err != nil {
		return in.err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	for _, f := range files {
		if err := writeRandomFile(f.path, g, f.size); err != nil {
			return err
		}
	}
	return nil
}

func writeRandomFile(path string, g *gen, size int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write file: %w", err)
	}
	if err := os.WriteFile(path, g.bytes(size), 0o600); err != nil {
		return fmt.Errorf("write file: %w", err)
	}
	return nil
}

// writeSideFiles writes rsa_key.pem, config.json and a few icon cache entries.
func writeSideFiles(dir string, g *gen, o Options) error {
	key, err := rsaKeyPEM(g)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, RSAKeyName), key, 0o600); err != nil {
		return fmt.Errorf("write rsa key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigName), configJSON(g), 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	for i, host := range []string{"github.com", "example.com", "bitwarden.com"} {
		name := host + ".png"
		if i == 1 {
			name = host + ".miss" // Vaultwarden's marker for a failed icon download
			if err := os.WriteFile(filepath.Join(dir, IconCacheDir, name), nil, 0o600); err != nil {
				return fmt.Errorf("write icon: %w", err)
			}
			continue
		}
		if err := writeRandomFile(filepath.Join(dir, IconCacheDir, name), g, g.between(300, 3000)); err != nil {
			return err
		}
	}
	return nil
}

// attachmentID is 10 random bytes in hex, like Vaultwarden's generate_attachment_id.
func attachmentID(g *gen) string { return hex.EncodeToString(g.bytes(10)) }

// refreshToken is 64 random bytes, base64url, like Vaultwarden's device tokens.
func refreshToken(g *gen) string {
	return strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(g.b64(64)), "=")
}
