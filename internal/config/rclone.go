package config

import (
	"sort"
	"strings"
)

const rclonePrefix = "RCLONE_CONFIG_"

// collectRclone gathers RCLONE_CONFIG_<NAME>_<KEY> variables. Remote names may
// contain underscores, so, as rclone does, a remote exists when
// RCLONE_CONFIG_<NAME>_TYPE is set, and other variables belong to the longest
// remote name they start with.
func collectRclone(environ []string) (map[string]map[string]string, []resolved) {
	env := envMap(environ)
	var names []string
	for k, v := range env {
		if strings.HasPrefix(k, rclonePrefix) && strings.HasSuffix(k, "_TYPE") && v != "" {
			if name := strings.TrimSuffix(strings.TrimPrefix(k, rclonePrefix), "_TYPE"); name != "" {
				names = append(names, name)
			}
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
	remotes := map[string]map[string]string{}
	var rows []resolved
	for k, v := range env {
		if !strings.HasPrefix(k, rclonePrefix) || v == "" {
			continue
		}
		rest := strings.TrimPrefix(k, rclonePrefix)
		for _, name := range names {
			key, ok := strings.CutPrefix(rest, name+"_")
			if !ok || key == "" {
				continue
			}
			remote := strings.ToLower(name)
			if remotes[remote] == nil {
				remotes[remote] = map[string]string{}
			}
			remotes[remote][strings.ToLower(key)] = v
			rows = append(rows, resolved{name: k, from: k, source: "env " + k, value: v, secret: rcloneSecret(key)})
			break
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].name < rows[j].name })
	return remotes, rows
}

// rcloneSecret reports whether an rclone option holds a credential.
func rcloneSecret(key string) bool {
	key = strings.ToUpper(key)
	for _, w := range []string{"PASS", "SECRET", "TOKEN", "KEY", "CREDENTIAL", "SAS_URL", "CONNECTION_STRING"} {
		if strings.Contains(key, w) {
			return true
		}
	}
	return false
}

// WithoutSecrets returns environ without vwstream's secrets (every secret
// variable, its aliases and the secret RCLONE_CONFIG_* options): what a
// supervised child is given, so Vaultwarden's environment does not carry the
// bucket credentials and passphrases. NAME_FILE paths stay; they hold no secret.
func WithoutSecrets(environ []string) []string {
	secret := map[string]bool{}
	for _, v := range vars {
		if v.Secret {
			secret[v.Name] = true
			for _, a := range v.Aliases {
				secret[a] = true
			}
		}
	}
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if secret[name] {
			continue
		}
		if rest, ok := strings.CutPrefix(name, "RCLONE_CONFIG_"); ok && rcloneSecret(strings.ToLower(rest)) {
			continue
		}
		out = append(out, kv)
	}
	return out
}
