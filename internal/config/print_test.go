package config_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vwstream/vwstream/internal/config"
)

var update = flag.Bool("update", false, "rewrite docs/CONFIGURATION.md from the table")

const secretMark = "S3CR3T"

// testKey is a valid age identity, for ENCRYPTION_KEY: as a secret, no part of
// it may show.
const testKey = "AGE-SECRET-KEY-1L2ANMRUEFH6HKW6SHKWDALPW8X9NUYG2KYLQ8RKN9LADT7Z9ZW0SA74VHZ"

// secretEnv sets every secret, through every way in, to a value holding secretMark.
func secretEnv(t *testing.T) []string {
	file := writeFile(t, secretMark+"-file\n")
	return []string{
		"S3_BUCKET=bucket",
		"S3_SECRET_ACCESS_KEY=" + secretMark + "-s3",
		"AWS_SECRET_ACCESS_KEY=" + secretMark + "-aws",
		"GPG_PASSPHRASE_FILE=" + file,
		"ENCRYPTION_PASSPHRASE=" + secretMark + "-enc",
		"ENCRYPTION_KEY=" + testKey,
		"NOTIFICATION_URLS=telegram://" + secretMark + "tok@telegram?chats=1,2 gotify://host/" + secretMark + "path, ntfy://u:" + secretMark + "pw@ntfy.sh/t",
		"DOMAIN=https://vault.example.com/?k=" + secretMark + "d",
		"S3_ENDPOINT=https://s3.example.com",
		"RCLONE_CONFIG_OFF_TYPE=s3",
		"RCLONE_CONFIG_OFF_SECRET_ACCESS_KEY=" + secretMark + "-rc",
		"RCLONE_CONFIG_OFF_PASS=" + secretMark + "-rcpass",
		"RCLONE_CONFIG_OFF_TOKEN=" + secretMark + "-rctoken",
		"BACKUP_EXTRA_REMOTES=off:vw",
	}
}

func TestConfig_RowsNeverShowSecrets(t *testing.T) {
	c := mustLoad(t, []string{"--encryption-passphrase=" + secretMark + "-flag"}, secretEnv(t)...)
	var all strings.Builder
	rows := c.Rows()
	js, err := json.Marshal(rows)
	if err != nil {
		t.Fatal(err)
	}
	all.Write(js)
	for _, r := range rows {
		all.WriteString(r.Name + r.Value + r.Source)
	}
	all.WriteString(strings.Join(c.Warnings(), "\n"))
	if strings.Contains(all.String(), secretMark) || strings.Contains(all.String(), testKey[16:]) {
		t.Fatalf("a secret is printed:\n%s", all.String())
	}
	got := map[string]config.Row{}
	for _, r := range rows {
		got[r.Name] = r
	}
	for name, want := range map[string]string{
		"S3_SECRET_ACCESS_KEY":                "(set)",
		"GPG_PASSPHRASE":                      "(set)",
		"RCLONE_CONFIG_OFF_SECRET_ACCESS_KEY": "(set)",
		"RCLONE_CONFIG_OFF_TYPE":              "s3",
		"ENCRYPTION_PASSPHRASE":               "(set)",
		"ENCRYPTION_KEY":                      "(set)",
		"NOTIFICATION_URLS":                   "telegram://(hidden) gotify://(hidden) ntfy://(hidden)",
		"S3_BUCKET":                           "bucket",
	} {
		if got[name].Value != want {
			t.Errorf("%s = %q, want %q", name, got[name].Value, want)
		}
	}
	if got, want := got["GPG_PASSPHRASE"].Source, "file GPG_PASSPHRASE_FILE"; got != want {
		t.Errorf("GPG_PASSPHRASE source = %q, want %q", got, want)
	}
	if !strings.Contains(got["S3_ENDPOINT"].Value, "s3.example.com") {
		t.Errorf("endpoint over-redacted: %q", got["S3_ENDPOINT"].Value)
	}
}

func TestError_NeverShowsSecrets(t *testing.T) {
	env := secretEnv(t)
	cases := [][]string{
		append(env, "AGE_PASSPHRASE="+secretMark+"-age"),                   // two snapshot modes
		{"NOTIFICATION_URLS=" + secretMark + "-not-a-url"},                 // bad secret URL
		{"NOTIFICATION_URLS=ntfy://" + secretMark + "tok@x " + secretMark}, // second one bad
		{"S3_SECRET_ACCESS_KEY=" + secretMark, "S3_SECRET_ACCESS_KEY_FILE=/x"},
		{"S3_BUCKET=b", "S3_SECRET_ACCESS_KEY=" + secretMark},                    // RequireEncryption
		{"ENCRYPTION_KEY=" + secretMark},                                         // not an identity
		{"ENCRYPTION_KEY=AGE-SECRET-KEY-1" + secretMark + "\nAGE-SECRET-KEY-1X"}, // two
		{"ENCRYPTION_KEY=AGE-SECRET-KEY-1" + secretMark},                         // a wrong character
		{"ENCRYPTION_KEY=" + testKey[:40] + secretMark + testKey[46:]},           // a wrong checksum
		{"NOTIFICATION_URLS=" + secretMark + "://tok@x"},                         // unknown scheme
		{"NOTIFICATION_URLS=ntfy://" + secretMark + "@x", "NOTIFICATION_TITLE={{.Nope}}"},
	}
	for _, env := range cases {
		c, err := load(t, nil, env...)
		if err == nil {
			err = c.RequireEncryption()
		}
		if err == nil {
			t.Fatalf("%d entries: no error", len(env))
		}
		if strings.Contains(err.Error(), secretMark) {
			t.Errorf("error shows a secret: %s", err)
		}
	}
}

func TestReference_MatchesDocs(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "CONFIGURATION.md")
	want := config.Reference()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read docs: %v (regenerate: go test ./internal/config -run TestReference -update)", err)
	}
	if string(got) != want {
		t.Fatalf("docs/CONFIGURATION.md disagrees with the table; regenerate: go test ./internal/config -run TestReference -update")
	}
	for _, v := range config.Vars() {
		if !strings.Contains(want, "`"+v.Name+"`") || !strings.Contains(want, v.Flag()) {
			t.Errorf("reference misses %s or %s", v.Name, v.Flag())
		}
	}
}

func TestEnvExample_MatchesDeploy(t *testing.T) {
	path := filepath.Join("..", "..", "deploy", ".env.example")
	want := config.EnvExample()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v (regenerate: go test ./internal/config -run TestEnvExample -update)", path, err)
	}
	if string(got) != want {
		t.Fatalf("deploy/.env.example disagrees with the table; regenerate: go test ./internal/config -run TestEnvExample -update")
	}
	for _, v := range config.Vars() {
		if !strings.Contains(want, "#"+v.Name+"=") && !strings.Contains(want, "#"+v.Name+"_FILE=") {
			t.Errorf(".env.example misses %s", v.Name)
		}
		if v.Secret && strings.Contains(want, "#"+v.Name+"=") {
			t.Errorf(".env.example suggests %s inline instead of %s_FILE", v.Name, v.Name)
		}
	}
}

func TestFlagUsage_ListsEveryFlag(t *testing.T) {
	usage := config.FlagUsage()
	for _, v := range config.Vars() {
		if !strings.Contains(usage, v.Flag()+" ") || !strings.Contains(usage, v.Name) {
			t.Errorf("usage misses %s", v.Flag())
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://u:pw@host/p?token=abc": "https://u:xxxxx@host/p?token=xxxxx",
		"https://host/p":                "https://host/p",
	} {
		if got := config.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
