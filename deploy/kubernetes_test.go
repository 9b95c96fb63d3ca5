package deploy

// The Kubernetes manifests (deploy/kubernetes) and the Helm chart
// (deploy/helm/vwstream), decoded strictly into the Kubernetes API types and
// checked against the code: one replica, vwstream as a native sidecar ahead of
// an untouched Vaultwarden, probes on the port vwstream serves, a grace period
// covering the shutdown budget, secrets only in Secrets.

import (
	"bytes"
	"cmp"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/node"
	"github.com/vwstream/vwstream/internal/status"
	"github.com/vwstream/vwstream/internal/testenv"
)

// minKubeVersion is the first Kubernetes with native sidecars on by default.
const minKubeVersion = "1.29.0"

// objects is one rendering: everything kubectl or helm would apply.
type objects struct {
	name       string
	sets       []*appsv1.StatefulSet
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
	services   []*corev1.Service
	pdbs       []*policyv1.PodDisruptionBudget
	// secretValues are secret strings the rendering was given: none may
	// appear outside a Secret.
	secretValues []string
}

// decoder decodes strictly: an unknown or misspelt field, a duplicate field or
// a kind outside the registered API groups is an error.
var decoder = func() runtime.Decoder {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{appsv1.AddToScheme, corev1.AddToScheme, policyv1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
}()

// decodeAll splits a YAML stream into documents and decodes each.
func decodeAll(t *testing.T, name string, stream []byte, secretValues ...string) *objects {
	t.Helper()
	o := &objects{name: name, configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}, secretValues: secretValues}
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(stream), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(doc, "")) == "" {
			continue
		}
		obj, _, err := decoder.Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("%s: document %d: %v\n%s", name, i, err, doc)
		}
		switch v := obj.(type) {
		case *appsv1.StatefulSet:
			o.sets = append(o.sets, v)
		case *corev1.ConfigMap:
			o.configMaps[v.Name] = v
		case *corev1.Secret:
			o.secrets[v.Name] = v
		case *corev1.Service:
			o.services = append(o.services, v)
		case *policyv1.PodDisruptionBudget:
			o.pdbs = append(o.pdbs, v)
		default:
			t.Fatalf("%s: document %d: unexpected kind %T", name, i, obj)
		}
	}
	return o
}

// helmBinary is the pinned helm scripts/test installs; under CI it must be there.
func helmBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("VWSTREAM_TEST_HELM"); p != "" {
		return p
	}
	return testenv.Tool(t, "helm")
}

// render runs `helm template` on the chart with the values given as YAML.
func render(t *testing.T, helm, values string) []byte {
	t.Helper()
	cmd := exec.Command(helm, "template", "vw", "helm/vwstream", "--namespace", "vault",
		"--kube-version", minKubeVersion, "--values", "-")
	cmd.Stdin = strings.NewReader(values)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, stderr.String())
	}
	return out
}

// chartCase is one set of values for the chart.
type chartCase struct {
	name    string
	values  string
	secrets []string // secret values among them
	check   func(t *testing.T, o *objects)
}

var chartCases = []chartCase{
	{name: "defaults", values: "{}\n"},
	{
		name: "primary with every group set",
		values: `
mode: persistent
s3: {bucket: vault-backup, endpoint: https://s3.example.com, region: eu-central-1, prefix: prod/vw, provider: Minio,
     forcePathStyle: true, accessKeyId: AKIDEXAMPLE1, secretAccessKey: s3-secret-value-1}
encryption: {passphrase: passphrase-value-1}
snapshots: {enabled: true, cron: "0 3 * * *", timezone: Europe/Berlin, compression: zst, retentionDays: 14, minKeep: 5,
            gpgPassphrase: gpg-secret-value-1}
notifications: {urls: "ntfy://ntfy.example.com/secret-topic-1", level: info}
replication: {syncInterval: 2s, shutdownTimeoutSeconds: 45}
sync: {shutdownTimeoutSeconds: 20, secondaryInterval: 30m}
lease: {ttl: 40s, renewInterval: 10s}
vaultwarden: {domain: "https://vault.example.com/vw/", port: 8080, env: {SIGNUPS_ALLOWED: "false", ROCKET_TLS: "{certs=\"/ssl/cert.pem\",key=\"/ssl/key.pem\"}"}}
env: {LOG_LEVEL: debug}
`,
		secrets: []string{"AKIDEXAMPLE1", "s3-secret-value-1", "passphrase-value-1", "gpg-secret-value-1", "secret-topic-1"},
	},
	{
		name: "standby with an existing secret, serverless, no volume",
		values: `
role: secondary
mode: serverless
existingSecret: my-vwstream-secrets
s3: {bucket: vault-backup}
persistence: {enabled: false}
statusPort: 9100
`,
		check: func(t *testing.T, o *objects) {
			if _, ok := o.secrets["vw-secrets"]; ok || len(o.secrets) != 0 {
				t.Errorf("with existingSecret the chart still renders a Secret")
			}
			if len(o.sets[0].Spec.VolumeClaimTemplates) != 0 {
				t.Errorf("persistence disabled but a volume claim is rendered")
			}
		},
	},
	{
		name: "server database and the bucket key",
		values: `
s3: {bucket: vault-backup, secretAccessKey: s3-secret-value-2, accessKeyId: AKIDEXAMPLE2}
encryption: {key: AGE-SECRET-KEY-1L2ANMRUEFH6HKW6SHKWDALPW8X9NUYG2KYLQ8RKN9LADT7Z9ZW0SA74VHZ}
database: {existingSecret: vaultwarden-database, key: url}
`,
		secrets: []string{"s3-secret-value-2", "AKIDEXAMPLE2", "AGE-SECRET-KEY-1L2ANMRUEFH6HKW6SHKWDALPW8X9NUYG2KYLQ8RKN9LADT7Z9ZW0SA74VHZ"},
		check: func(t *testing.T, o *objects) {
			for _, c := range podContainers(o.sets[0]) {
				if got := effectiveEnv(t, o, o.sets[0], c)["DATABASE_URL_FILE"]; got != "/run/secrets/database/url" {
					t.Errorf("container %s: DATABASE_URL_FILE = %q, want the mounted database secret", c.Name, got)
				}
				if !mountsSecret(o.sets[0], c, "vaultwarden-database", "/run/secrets/database/url") {
					t.Errorf("container %s does not mount the database secret at /run/secrets/database", c.Name)
				}
			}
		},
	},
}

// TestHelmChart_Renders renders the chart for each value set and checks every
// document against the API types and the code.
func TestHelmChart_Renders(t *testing.T) {
	helm := helmBinary(t)
	for _, c := range chartCases {
		t.Run(c.name, func(t *testing.T) {
			o := decodeAll(t, c.name, render(t, helm, c.values), c.secrets...)
			if len(o.sets) != 1 || len(o.services) != 1 || len(o.pdbs) != 1 {
				t.Fatalf("rendered %d StatefulSets, %d Services, %d PodDisruptionBudgets; want one each",
					len(o.sets), len(o.services), len(o.pdbs))
			}
			checkObjects(t, o)
			if c.check != nil {
				c.check(t, o)
			}
		})
	}
}

// TestHelmChart_Lint: `helm lint --strict` passes with each value set.
func TestHelmChart_Lint(t *testing.T) {
	helm := helmBinary(t)
	for _, c := range chartCases {
		cmd := exec.Command(helm, "lint", "--strict", "helm/vwstream", "--kube-version", minKubeVersion, "--values", "-")
		cmd.Stdin = strings.NewReader(c.values)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("helm lint with the values %q: %v\n%s", c.name, err, out)
		}
	}
}

// TestKubernetesManifests: the plain manifests pass the same checks, the
// primary from deploy/kubernetes and the standby from its overlay on top of
// the primary's ConfigMaps and Secret; the kustomizations list every file.
func TestKubernetesManifests(t *testing.T) {
	checkManifests(t, "deploy/kubernetes", readKustomization(t, "kubernetes"), readKustomization(t, "kubernetes/standby"))
}

// TestKubernetesManifests_KustomizeBuild: what `kubectl apply -k` applies,
// rendered by the pinned kustomize, passes them too, with the image set.
func TestKubernetesManifests_KustomizeBuild(t *testing.T) {
	kustomize := os.Getenv("VWSTREAM_TEST_KUSTOMIZE")
	if kustomize == "" {
		kustomize = testenv.Tool(t, "kustomize")
	}
	build := func(dir string) []byte {
		out, err := exec.Command(kustomize, "build", dir).Output()
		if err != nil {
			t.Fatalf("kustomize build %s: %v", dir, err)
		}
		return out
	}
	primary, standby := checkManifests(t, "kustomize build deploy/kubernetes", build("kubernetes"), build("kubernetes/standby"))
	for _, s := range []*appsv1.StatefulSet{primary, standby} {
		if got := s.Spec.Template.Spec.InitContainers[0].Image; got != "registry.example.com/vwstream:dev" {
			t.Errorf("StatefulSet %s: kustomize set the vwstream image to %s", s.Name, got)
		}
	}
}

// checkManifests checks the primary's objects and the standby's (which uses
// the primary's ConfigMaps and Secret) and returns both StatefulSets.
func checkManifests(t *testing.T, name string, base, overlay []byte) (primarySet, standbySet *appsv1.StatefulSet) {
	t.Helper()
	primary := decodeAll(t, name, base)
	fillSecrets(primary)
	checkObjects(t, primary)
	if len(primary.sets) != 1 || len(primary.services) != 1 || len(primary.pdbs) != 1 {
		t.Fatalf("%s has %d StatefulSets, %d Services, %d PodDisruptionBudgets; want one each",
			name, len(primary.sets), len(primary.services), len(primary.pdbs))
	}
	standby := decodeAll(t, name+" + standby", append(append(slices.Clone(base), "\n---\n"...), overlay...))
	standby.sets = slices.DeleteFunc(standby.sets, func(s *appsv1.StatefulSet) bool { return s.Name == primary.sets[0].Name })
	fillSecrets(standby)
	checkObjects(t, standby)
	if cfg := loadConfig(t, standby, standby.sets[0]); cfg.Role != config.RoleSecondary {
		t.Errorf("%s: the standby runs as %s", name, cfg.Role)
	}
	// The README's failover patches initContainers/0/env/0 to make it the primary.
	if env := standby.sets[0].Spec.Template.Spec.InitContainers[0].Env; len(env) == 0 || env[0].Name != "NODE_ROLE" {
		t.Errorf("%s: the standby's first variable is not NODE_ROLE, which the README's failover patch replaces", name)
	}
	if cfg := loadConfig(t, primary, primary.sets[0]); cfg.Role != config.RolePrimary {
		t.Errorf("%s: the primary runs as %s", name, cfg.Role)
	}
	return primary.sets[0], standby.sets[0]
}

// fillSecrets fills in the example Secret as its user must: it ships empty,
// so that vwstream refuses to start (naming the variable) until it is filled.
func fillSecrets(o *objects) {
	for _, sec := range o.secrets {
		for k, v := range sec.StringData {
			if v == "" {
				sec.StringData[k] = "filled in for " + k
			}
		}
	}
}

// readKustomization reads a kustomization's resources, checking that it lists
// every manifest in its folder, and returns them as one stream.
func readKustomization(t *testing.T, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Resources  []string `json:"resources"`
		Images     []struct {
			Name    string `json:"name"`
			NewName string `json:"newName"`
			NewTag  string `json:"newTag"`
		} `json:"images"`
	}
	if err := yaml.UnmarshalStrict(b, &k); err != nil || k.Kind != "Kustomization" {
		t.Fatalf("%s/kustomization.yaml: %v (kind %q)", dir, err, k.Kind)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	var want []string
	for _, f := range files {
		if filepath.Base(f) != "kustomization.yaml" {
			want = append(want, filepath.Base(f))
		}
	}
	if !slices.Equal(slices.Sorted(slices.Values(k.Resources)), want) {
		t.Errorf("%s/kustomization.yaml lists %v; the folder holds %v", dir, k.Resources, want)
	}
	if len(k.Images) != 1 || k.Images[0].Name != "vwstream" {
		t.Errorf("%s/kustomization.yaml should set the vwstream image: %+v", dir, k.Images)
	}
	var out []byte
	for _, r := range k.Resources {
		b, err := os.ReadFile(filepath.Join(dir, r))
		if err != nil {
			t.Fatal(err)
		}
		out = append(append(out, b...), "\n---\n"...)
	}
	return out
}

// checkObjects checks the invariants of one rendering.
func checkObjects(t *testing.T, o *objects) {
	t.Helper()
	if len(o.sets) != 1 {
		t.Fatalf("%s: %d StatefulSets, want 1", o.name, len(o.sets))
	}
	s := o.sets[0]
	checkPod(t, o, s)
	checkNoSecretsInConfigMaps(t, o)
	labels := s.Spec.Template.Labels
	for _, svc := range o.services {
		for k, v := range svc.Spec.Selector {
			if labels[k] != v {
				t.Errorf("%s: Service %s selects %s=%s, which the pod lacks", o.name, svc.Name, k, v)
			}
		}
		for _, p := range svc.Spec.Ports {
			if p.TargetPort.Type != intstr.String || containerPort(s, p.TargetPort.StrVal) == 0 {
				t.Errorf("%s: Service %s port %s targets %s, not a named port of the pod", o.name, svc.Name, p.Name, p.TargetPort.String())
			}
		}
		if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "metrics" }) {
			t.Errorf("%s: Service %s has no port named metrics for a ServiceMonitor", o.name, svc.Name)
		}
	}
	for _, pdb := range o.pdbs {
		for k, v := range pdb.Spec.Selector.MatchLabels {
			if labels[k] != v {
				t.Errorf("%s: PodDisruptionBudget %s selects %s=%s, which the pod lacks", o.name, pdb.Name, k, v)
			}
		}
	}
}

// checkPod checks the StatefulSet and its pod template.
func checkPod(t *testing.T, o *objects, s *appsv1.StatefulSet) {
	t.Helper()
	errorf := func(format string, args ...any) {
		t.Errorf("%s: StatefulSet %s: %s", o.name, s.Name, fmt.Sprintf(format, args...))
	}
	if s.Spec.Replicas == nil || *s.Spec.Replicas != 1 {
		errorf("replicas %v, want exactly 1", s.Spec.Replicas)
	}
	for _, vct := range s.Spec.VolumeClaimTemplates {
		if !slices.Equal(vct.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
			errorf("volume claim %s has access modes %v, want ReadWriteOnce", vct.Name, vct.Spec.AccessModes)
		}
	}
	pod := s.Spec.Template.Spec
	// vwstream: the first init container, restartable (a native sidecar), so
	// the kubelet starts it before Vaultwarden and stops it after.
	if len(pod.InitContainers) != 1 || len(pod.Containers) != 1 {
		t.Fatalf("%s: StatefulSet %s: %d init containers and %d containers, want vwstream and vaultwarden",
			o.name, s.Name, len(pod.InitContainers), len(pod.Containers))
	}
	side, app := pod.InitContainers[0], pod.Containers[0]
	if side.Name != "vwstream" || side.RestartPolicy == nil || *side.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		errorf("the init container %s is not vwstream with restartPolicy Always", side.Name)
	}
	if len(side.Command) != 0 || !slices.Equal(side.Args, []string{"run"}) {
		errorf("vwstream runs %v %v, want `run` without a command (sidecar mode)", side.Command, side.Args)
	}
	// Vaultwarden: the official image as the Dockerfile pins it, untouched.
	if want := vaultwardenImage(t); app.Name != "vaultwarden" || app.Image != want {
		errorf("the app container is %s with image %s, want vaultwarden with %s", app.Name, app.Image, want)
	}
	if len(app.Command) != 0 || len(app.Args) != 0 {
		errorf("the Vaultwarden container overrides the image's entrypoint: %v %v", app.Command, app.Args)
	}

	cfg := loadConfig(t, o, s)
	// Probes: vwstream's on the port its STATUS_ADDR listens on, reachable
	// from the kubelet (the pod's address, not loopback).
	host, statusPort, err := net.SplitHostPort(cfg.Health.StatusAddr)
	if err != nil {
		t.Fatalf("%s: STATUS_ADDR %q: %v", o.name, cfg.Health.StatusAddr, err)
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		errorf("STATUS_ADDR %s listens on loopback only; the kubelet probes the pod's address", cfg.Health.StatusAddr)
	}
	if containerPort(s, "metrics") != mustAtoi(t, statusPort) {
		errorf("port metrics is %d, STATUS_ADDR listens on %s", containerPort(s, "metrics"), statusPort)
	}
	for what, p := range map[string]*corev1.Probe{"startupProbe": side.StartupProbe, "livenessProbe": side.LivenessProbe} {
		want := map[string]string{"startupProbe": "/readyz", "livenessProbe": "/healthz"}[what]
		if p == nil || p.HTTPGet == nil {
			errorf("vwstream has no HTTP %s", what)
			continue
		}
		if path := strings.SplitN(p.HTTPGet.Path, "?", 2)[0]; path != want {
			errorf("vwstream's %s asks %s, want %s", what, p.HTTPGet.Path, want)
		}
		if resolvePort(s, side, p.HTTPGet.Port) != mustAtoi(t, statusPort) {
			errorf("vwstream's %s probes port %s, STATUS_ADDR listens on %s", what, p.HTTPGet.Port.String(), statusPort)
		}
	}
	if p := side.StartupProbe; p != nil && p.HTTPGet != nil && !strings.Contains(p.HTTPGet.Path, "role=primary") {
		errorf("vwstream's startupProbe %s lets Vaultwarden start beside a standby", p.HTTPGet.Path)
	}
	// Vaultwarden's: /alive where it serves it (DOMAIN's path, ROCKET_PORT,
	// https with ROCKET_TLS), as `vwstream healthcheck` asks it.
	alive, err := url.Parse(status.AliveURL(cfg.Vaultwarden.RocketPort, cfg.Vaultwarden.RocketTLS, cfg.Vaultwarden.Domain))
	if err != nil {
		t.Fatal(err)
	}
	for what, p := range map[string]*corev1.Probe{"readinessProbe": app.ReadinessProbe, "livenessProbe": app.LivenessProbe} {
		if p == nil || p.HTTPGet == nil {
			errorf("Vaultwarden has no HTTP %s", what)
			continue
		}
		scheme := cmp.Or(string(p.HTTPGet.Scheme), string(corev1.URISchemeHTTP))
		if p.HTTPGet.Path != alive.EscapedPath() || !strings.EqualFold(scheme, alive.Scheme) ||
			strconv.Itoa(resolvePort(s, app, p.HTTPGet.Port)) != alive.Port() {
			errorf("Vaultwarden's %s asks %s %s on port %s, not %s", what, scheme, p.HTTPGet.Path, p.HTTPGet.Port.String(), alive)
		}
	}
	// A pod's grace period covers vwstream's whole shutdown budget.
	budget := node.ShutdownBudget(cfg)
	if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second < budget {
		errorf("terminationGracePeriodSeconds %s is under the shutdown budget %s", fmtSeconds(g), budget)
	}
	if cfg.Role == config.RoleSecondary && !zoneAntiAffinity(pod.Affinity) {
		errorf("a standby without required anti-affinity on topology.kubernetes.io/zone")
	}
	if cfg.Role == config.RolePrimary && side.StartupProbe != nil && side.StartupProbe.FailureThreshold > 10000 {
		errorf("a primary whose start-up hangs is never restarted (startupProbe failureThreshold %d)", side.StartupProbe.FailureThreshold)
	}
	// Both containers agree on the data folder.
	if vw := effectiveEnv(t, o, s, app); vw["DATA_FOLDER"] != cfg.DataFolder {
		errorf("Vaultwarden's DATA_FOLDER %q, vwstream's %q", vw["DATA_FOLDER"], cfg.DataFolder)
	}
	for _, c := range podContainers(s) {
		checkEnvNames(t, o, s, c)
		for _, m := range c.VolumeMounts {
			if m.Name == "data" && m.MountPath != cfg.DataFolder {
				errorf("container %s mounts the data volume at %s, DATA_FOLDER is %s", c.Name, m.MountPath, cfg.DataFolder)
			}
		}
	}
}

// podContainers is the sidecar and the app.
func podContainers(s *appsv1.StatefulSet) []corev1.Container {
	return append(slices.Clone(s.Spec.Template.Spec.InitContainers), s.Spec.Template.Spec.Containers...)
}

func zoneAntiAffinity(a *corev1.Affinity) bool {
	if a == nil || a.PodAntiAffinity == nil {
		return false
	}
	return slices.ContainsFunc(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution,
		func(term corev1.PodAffinityTerm) bool { return term.TopologyKey == "topology.kubernetes.io/zone" })
}

// vaultwardenImage is the official image the Dockerfile builds on.
func vaultwardenImage(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ARG VAULTWARDEN_IMAGE=(\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("Dockerfile has no ARG VAULTWARDEN_IMAGE")
	}
	return string(m[1])
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil {
		t.Fatalf("port %q: %v", s, err)
	}
	return n
}

// containerPort is the number of the pod's port called name, 0 if none.
func containerPort(s *appsv1.StatefulSet, name string) int {
	for _, c := range podContainers(s) {
		for _, p := range c.Ports {
			if p.Name == name {
				return int(p.ContainerPort)
			}
		}
	}
	return 0
}

// resolvePort is the number a probe's port means in container c.
func resolvePort(s *appsv1.StatefulSet, c corev1.Container, p intstr.IntOrString) int {
	if p.Type == intstr.Int {
		return p.IntValue()
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort)
		}
	}
	return 0
}

// fmtSeconds renders an optional number of seconds.
func fmtSeconds(s *int64) string {
	if s == nil {
		return "unset"
	}
	return (time.Duration(*s) * time.Second).String()
}

// TestDockerfile_SidecarTarget: the image the manifests run as the sidecar is
// a target of the Dockerfile (vwstream alone, run by default), and the default
// target is still the Vaultwarden image with vwstream as its entrypoint.
func TestDockerfile_SidecarTarget(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	stages := regexp.MustCompile(`(?m)^FROM .*$`).FindAllString(string(b), -1)
	if !slices.Contains(stages, "FROM scratch AS sidecar") {
		t.Errorf("Dockerfile has no sidecar stage: %v", stages)
	}
	if len(stages) == 0 || stages[len(stages)-1] != "FROM ${VAULTWARDEN_IMAGE}" {
		t.Errorf("the Dockerfile's last stage is not the Vaultwarden image: %v", stages)
	}
	sidecar := string(b)[strings.Index(string(b), "FROM scratch AS sidecar"):]
	sidecar = sidecar[:strings.Index(sidecar, "\nFROM ")]
	for _, want := range []string{`ENTRYPOINT ["/usr/local/bin/vwstream"]`, `CMD ["run"]`, "ca-certificates.crt"} {
		if !strings.Contains(sidecar, want) {
			t.Errorf("the sidecar stage lacks %s", want)
		}
	}
	// The variant for a server database carries the dump and load tools.
	i := strings.Index(string(b), "AS sidecar-db\n")
	if i < 0 {
		t.Fatalf("Dockerfile has no sidecar-db stage: %v", stages)
	}
	db := string(b)[i:]
	db = db[:strings.Index(db, "\nFROM ")]
	for _, want := range []string{"postgresql-client", "mariadb-client", `ENTRYPOINT ["/usr/local/bin/vwstream"]`, `CMD ["run"]`} {
		if !strings.Contains(db, want) {
			t.Errorf("the sidecar-db stage lacks %s", want)
		}
	}
}
