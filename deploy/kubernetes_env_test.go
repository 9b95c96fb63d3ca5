package deploy

// The environment the manifests give each container, resolved the way the
// kubelet does, loaded with vwstream's own configuration table.

import (
	"fmt"
	"os"
	"path"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/vwstream/vwstream/internal/config"
)

// vaultwardenVars are Vaultwarden settings (its .env.template) the manifests or
// the test values may set; Vaultwarden reads each also as NAME_FILE.
var vaultwardenVars = []string{
	"DATA_FOLDER", "DATABASE_URL", "DATABASE_MAX_CONNS", "DOMAIN", "ROCKET_PORT", "ROCKET_ADDRESS",
	"ROCKET_TLS", "SIGNUPS_ALLOWED", "SIGNUPS_VERIFY", "INVITATIONS_ALLOWED", "ADMIN_TOKEN",
	"ENABLE_WEBSOCKET", "LOG_LEVEL", "EXTENDED_LOGGING", "SMTP_HOST", "SMTP_FROM", "SMTP_PORT",
	"SMTP_SECURITY", "SMTP_USERNAME", "SMTP_PASSWORD", "ATTACHMENTS_FOLDER", "SENDS_FOLDER",
	"ICON_CACHE_FOLDER", "TMP_FOLDER", "RSA_KEY_FILENAME", "PUSH_ENABLED", "PUSH_INSTALLATION_ID",
	"PUSH_INSTALLATION_KEY", "SHOW_PASSWORD_HINT", "IP_HEADER", "ORG_CREATION_USERS",
}

// vaultwardenSecrets are the Vaultwarden settings that are secrets.
var vaultwardenSecrets = []string{"ADMIN_TOKEN", "SMTP_PASSWORD", "PUSH_INSTALLATION_KEY"}

// effectiveEnv is container c's environment: envFrom ConfigMaps, then env.
// Secrets must come as files: a Secret in the environment fails the test.
func effectiveEnv(t *testing.T, o *objects, s *appsv1.StatefulSet, c corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.SecretRef != nil {
			t.Errorf("%s: container %s takes Secret %s as environment; secrets are files (NAME_FILE)", o.name, c.Name, from.SecretRef.Name)
			continue
		}
		cm, ok := o.configMaps[from.ConfigMapRef.Name]
		if !ok {
			t.Fatalf("%s: container %s reads ConfigMap %s, which is not rendered", o.name, c.Name, from.ConfigMapRef.Name)
		}
		for k, v := range cm.Data {
			env[from.Prefix+k] = v
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			t.Errorf("%s: container %s takes %s from a Secret as environment; secrets are files (NAME_FILE)", o.name, c.Name, e.Name)
		default:
			t.Errorf("%s: container %s: %s from an unexpected source", o.name, c.Name, e.Name)
		}
	}
	return env
}

// loadConfig loads vwstream's configuration from the sidecar's environment,
// reading NAME_FILE from the Secrets mounted into it.
func loadConfig(t *testing.T, o *objects, s *appsv1.StatefulSet) *config.Config {
	t.Helper()
	side := s.Spec.Template.Spec.InitContainers[0]
	var env []string
	variable := map[string]string{} // file -> the variable NAME_FILE naming it
	for k, v := range effectiveEnv(t, o, s, side) {
		env = append(env, k+"="+v)
		if name, ok := strings.CutSuffix(k, "_FILE"); ok {
			variable[v] = name
		}
	}
	cfg, err := config.Load(nil, env, func(p string) ([]byte, error) { return secretFile(o, s, side, p, variable[p]) })
	if err != nil {
		t.Fatalf("%s: vwstream refuses the configuration the manifests give it: %v", o.name, err)
	}
	return cfg
}

// secretFile reads the file at p in container c from the Secret volume
// mounted there; a Secret the rendering does not hold (existingSecret) gives
// a placeholder for the variable it holds, as the user's Secret would.
func secretFile(o *objects, s *appsv1.StatefulSet, c corev1.Container, p, variable string) ([]byte, error) {
	name, key, ok := secretAt(s, c, p)
	if !ok {
		return nil, fmt.Errorf("%s is not in a Secret volume of container %s", p, c.Name)
	}
	sec, ok := o.secrets[name]
	if !ok {
		if variable == "DATABASE_URL" {
			return []byte("postgresql://vaultwarden:placeholder@postgres:5432/vaultwarden"), nil
		}
		return []byte("placeholder for " + variable), nil
	}
	if v, ok := sec.StringData[key]; ok {
		return []byte(v), nil
	}
	if v, ok := sec.Data[key]; ok {
		return v, nil
	}
	return nil, fmt.Errorf("%w: Secret %s has no key %s", os.ErrNotExist, name, key)
}

// secretAt names the Secret and key that file p of container c comes from.
func secretAt(s *appsv1.StatefulSet, c corev1.Container, p string) (secret, key string, ok bool) {
	for _, m := range c.VolumeMounts {
		rel, found := strings.CutPrefix(path.Clean(p), path.Clean(m.MountPath)+"/")
		if !found {
			continue
		}
		for _, v := range s.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.Secret != nil {
				return v.Secret.SecretName, rel, true
			}
		}
	}
	return "", "", false
}

// mountsSecret reports whether container c sees Secret secret's file at p.
func mountsSecret(s *appsv1.StatefulSet, c corev1.Container, secret, p string) bool {
	name, _, ok := secretAt(s, c, p)
	return ok && name == secret
}

// checkEnvNames: every variable a container gets is a real one. vwstream's
// come from its table (a NAME_FILE only for variables that accept one);
// Vaultwarden's from its settings. Vaultwarden gets none of vwstream's own.
func checkEnvNames(t *testing.T, o *objects, s *appsv1.StatefulSet, c corev1.Container) {
	t.Helper()
	ours := map[string]*config.Var{}
	for _, v := range config.Vars() {
		ours[v.Name] = v
	}
	isVaultwarden := func(name string) bool {
		for _, v := range vaultwardenVars {
			if name == v || name == v+"_FILE" {
				return true
			}
		}
		return false
	}
	env := effectiveEnv(t, o, s, c)
	for name := range env {
		if isVaultwarden(name) {
			continue
		}
		if c.Name == "vaultwarden" {
			t.Errorf("%s: Vaultwarden's container gets %s, not a Vaultwarden setting", o.name, name)
			continue
		}
		if v, ok := ours[name]; ok && !v.Secret {
			continue
		} else if ok {
			t.Errorf("%s: container %s gets the secret %s as a value; give it as %s_FILE", o.name, c.Name, name, name)
			continue
		}
		if base, ok := strings.CutSuffix(name, "_FILE"); ok && ours[base] != nil && ours[base].File {
			if p := env[name]; ours[base].Secret {
				if _, _, ok := secretAt(s, c, p); !ok {
					t.Errorf("%s: container %s: %s=%s is not in a mounted Secret", o.name, c.Name, name, p)
				}
			}
			continue
		}
		t.Errorf("%s: container %s gets %s, which is neither a vwstream variable (docs/CONFIGURATION.md) nor a Vaultwarden one", o.name, c.Name, name)
	}
}

// checkNoSecretsInConfigMaps: no ConfigMap holds a secret variable or any
// secret's value.
func checkNoSecretsInConfigMaps(t *testing.T, o *objects) {
	t.Helper()
	secret := map[string]bool{}
	for _, v := range config.Vars() {
		if v.Secret {
			secret[v.Name] = true
			for _, a := range v.Aliases {
				secret[a] = true
			}
		}
	}
	for _, v := range vaultwardenSecrets {
		secret[v] = true
	}
	values := append([]string{}, o.secretValues...)
	for _, s := range o.secrets {
		for _, v := range s.StringData {
			values = append(values, v)
		}
		for _, v := range s.Data {
			values = append(values, string(v))
		}
	}
	for _, cm := range o.configMaps {
		for k, v := range cm.Data {
			if secret[k] {
				t.Errorf("%s: ConfigMap %s holds the secret %s; put it in a Secret and set %s_FILE", o.name, cm.Name, k, k)
			}
			for _, s := range values {
				if len(s) >= 4 && strings.Contains(v, s) {
					t.Errorf("%s: ConfigMap %s: %s holds a secret value", o.name, cm.Name, k)
				}
			}
		}
	}
}
