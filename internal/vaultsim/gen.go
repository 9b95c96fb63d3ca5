package vaultsim

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"time"
)

// TimeFormat is how Vaultwarden's SQLite backend stores timestamps.
const TimeFormat = "2006-01-02 15:04:05"

// gen produces deterministic Vaultwarden-looking values from a seed.
type gen struct {
	r *rand.Rand
	c *rand.ChaCha8
}

// newGen returns a generator for seed within domain; different domains give
// unrelated streams for the same seed.
func newGen(seed int64, domain string) *gen {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], uint64(seed))
	h := sha256.Sum256([]byte(domain))
	copy(s[8:], h[:24])
	c := rand.NewChaCha8(s)
	return &gen{r: rand.New(c), c: c}
}

func (g *gen) bytes(n int) []byte {
	b := make([]byte, n)
	_, _ = g.c.Read(b)
	return b
}

// uuid returns a version 4 UUID string.
func (g *gen) uuid() string {
	b := g.bytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// between returns an int in [lo, hi].
func (g *gen) between(lo, hi int) int {
	if hi <= lo {
		return lo
	}
	return lo + g.r.IntN(hi-lo+1)
}

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

// encString is a Bitwarden type 2 cipher string (AES-CBC-256 + HMAC-SHA256):
// "2.<iv>|<ciphertext>|<mac>", sized for a plaintext of n bytes.
func (g *gen) encString(n int) string {
	ct := (n/16 + 1) * 16
	b64 := base64.StdEncoding.EncodeToString
	return "2." + b64(g.bytes(16)) + "|" + b64(g.bytes(ct)) + "|" + b64(g.bytes(32))
}

func (g *gen) b64(n int) string { return base64.StdEncoding.EncodeToString(g.bytes(n)) }

// rsaEncString is a type 4 string (RSA-OAEP-SHA1), used for org keys.
func (g *gen) rsaEncString() string { return "4." + g.b64(256) }

// at returns base moved forward by a random amount up to span.
func (g *gen) at(base time.Time, span time.Duration) time.Time {
	if span <= 0 {
		return base
	}
	return base.Add(time.Duration(g.r.Int64N(int64(span)))).Truncate(time.Second)
}

func ts(t time.Time) string { return t.UTC().Format(TimeFormat) }

var firstNames = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
	"ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor",
	"walter", "yvonne"}

var avatarColors = []string{"#2196f3", "#e91e63", "#4caf50", "#ff9800", "#9c27b0", "#795548"}

func (g *gen) name(i int) string {
	return fmt.Sprintf("%s%d", firstNames[i%len(firstNames)], i)
}

func (g *gen) pick(list []string) string { return list[g.r.IntN(len(list))] }
