package vaultsim

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Cipher types (ciphers.atype).
const (
	CipherLogin      = 1
	CipherSecureNote = 2
	CipherCard       = 3
	CipherIdentity   = 4
	CipherSSHKey     = 5
)

// Event types Bitwarden clients know; the workload writes the cipher ones.
const (
	EventUserLoggedIn            = 1000
	EventCipherCreated           = 1100
	EventCipherUpdated           = 1101
	EventCipherDeleted           = 1102
	EventCipherAttachmentCreated = 1103
	EventCipherSoftDeleted       = 1115
)

var eventTypes = []int{EventUserLoggedIn, EventCipherCreated, EventCipherUpdated, 1107, 1114, EventCipherSoftDeleted}

var deviceTypes = []struct {
	atype int
	name  string
}{{0, "Android"}, {1, "iOS"}, {2, "chrome"}, {3, "firefox"}, {8, "Windows"}, {9, "firefox"}, {10, "chrome"}, {14, "Bitwarden CLI"}}

// cipher is one ciphers row as a client's sync writes it.
type cipher struct {
	uuid             string
	created, updated time.Time
	atype            int
	key, notes       any
	fields, history  any
	name, data       string
}

func newCipher(g *gen, start time.Time, span time.Duration) cipher {
	c := cipher{uuid: g.uuid(), name: g.encString(g.between(4, 30))}
	c.created = g.at(start, span)
	c.updated = g.at(c.created, start.Add(span).Sub(c.created))
	switch p := g.r.IntN(100); {
	case p < 70:
		c.atype = CipherLogin
	case p < 85:
		c.atype = CipherSecureNote
	case p < 92:
		c.atype = CipherCard
	case p < 98:
		c.atype = CipherIdentity
	default:
		c.atype = CipherSSHKey
	}
	if g.chance(0.5) {
		c.key = g.encString(64) // per-cipher key of newer clients
	}
	if g.chance(0.2) || c.atype == CipherSecureNote {
		c.notes = g.encString(g.between(10, 400))
	}
	if g.chance(0.1) {
		c.fields = mustJSON([]map[string]any{{"name": g.encString(8), "value": g.encString(16), "type": 0, "linkedId": nil}})
	}
	if c.atype == CipherLogin && g.chance(0.15) {
		c.history = mustJSON([]map[string]any{{"password": g.encString(20), "lastUsedDate": c.created.Format(time.RFC3339)}})
	}
	c.data = cipherData(g, c)
	return c
}

// cipherData is the ciphers.data JSON: the type-specific fields, each an encrypted string.
func cipherData(g *gen, c cipher) string {
	d := map[string]any{"name": c.name, "notes": c.notes, "fields": nil, "passwordHistory": nil}
	switch c.atype {
	case CipherLogin:
		d["username"] = g.encString(g.between(5, 30))
		d["password"] = g.encString(g.between(12, 40))
		d["uris"] = []map[string]any{{"uri": g.encString(g.between(15, 60)), "uriChecksum": g.encString(44), "match": nil}}
		d["totp"] = nil
		d["passwordRevisionDate"] = nil
		d["autofillOnPageLoad"] = nil
		d["fido2Credentials"] = []any{}
	case CipherSecureNote:
		d["type"] = 0
	case CipherCard:
		for _, k := range []string{"cardholderName", "brand", "number", "expMonth", "expYear", "code"} {
			d[k] = g.encString(g.between(3, 19))
		}
	case CipherIdentity:
		for _, k := range []string{"title", "firstName", "lastName", "address1", "city", "postalCode", "country", "email", "phone"} {
			d[k] = g.encString(g.between(3, 30))
		}
	case CipherSSHKey:
		d["privateKey"] = g.encString(400)
		d["publicKey"] = g.encString(90)
		d["keyFingerprint"] = g.encString(50)
	}
	return mustJSON(d)
}

// send is one sends row; file sends also have a file under sends/.
type send struct {
	uuid, user, name, data string
	atype                  int
	fileID                 string
	size                   int
	created                time.Time
}

func newSend(g *gen, user string, now time.Time, file bool, o Options) send {
	s := send{uuid: g.uuid(), user: user, name: g.encString(g.between(5, 20)), created: g.at(now.AddDate(0, 0, -6), 6*24*time.Hour)}
	if !file {
		s.data = mustJSON(map[string]any{"text": g.encString(g.between(10, 200)), "hidden": false})
		return s
	}
	s.atype = 1
	s.fileID = hex.EncodeToString(g.bytes(16))
	s.size = g.between(o.AttachmentMinSize, o.AttachmentMaxSize)
	s.data = mustJSON(map[string]any{"id": s.fileID, "fileName": g.encString(14),
		"size": fmt.Sprint(s.size), "sizeName": fmt.Sprintf("%.1f KB", float64(s.size)/1024)})
	return s
}

// configJSON is an admin-panel config.json; like the real one it holds plaintext
// secrets (admin token hash, SMTP password), which is why backups encrypt it.
func configJSON(g *gen) []byte {
	b, _ := json.MarshalIndent(map[string]any{
		"domain":                   "https://vault.example.com",
		"signups_allowed":          false,
		"invitations_allowed":      true,
		"show_password_hint":       false,
		"admin_token":              "$argon2id$v=19$m=65540,t=3,p=4$" + g.b64(32) + "$" + g.b64(32),
		"_enable_smtp":             true,
		"smtp_host":                "smtp.example.com",
		"smtp_security":            "starttls",
		"smtp_port":                587,
		"smtp_from":                "vault@example.com",
		"smtp_username":            "vault@example.com",
		"smtp_password":            hex.EncodeToString(g.bytes(12)),
		"org_events_enabled":       true,
		"events_days_retain":       365,
		"trash_auto_delete_days":   30,
		"password_iterations":      600000,
		"attachments_folder":       "data/attachments",
		"icon_cache_ttl":           2592000,
		"_enable_yubico":           false,
		"disable_icon_download":    false,
		"org_creation_users":       "",
		"user_attachment_limit":    nil,
		"_enable_email_2fa":        true,
		"emergency_access_allowed": true,
	}, "", "  ")
	return b
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
