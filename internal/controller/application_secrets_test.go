package controller_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/cli"
	"github.com/keyless-cd/keyless/internal/install"
	"github.com/keyless-cd/keyless/internal/sopsfile/sopstest"
)

// Plaintexts of the SOPS test: each must reach the cluster and nowhere else.
const (
	dbPassword   = "db-pass-7f3a9c-plaintext"
	helmPassword = "helm-pass-51d2e0-plaintext"
	rotatedValue = "rotated-pass-a8b4c2-plaintext"
)

func secretManifest(value string) string {
	return "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: " + value + "\n"
}

const sopsChart = `apiVersion: v2
name: app
version: 0.1.0
`

const sopsChartSecret = `apiVersion: v1
kind: Secret
metadata:
  name: from-values
stringData:
  password: {{ .Values.db.password | quote }}
`

// TestSOPSSecretsAreDecryptedOnlyInTheCluster: a team commits a Secret
// encrypted with `keyless secret encrypt` and an encrypted Helm values file;
// with spec.decryption naming its age key, the cluster gets the plaintext
// and nothing else does — not the Git cache on disk, the status, the
// Events, the controller's log or the audit line — and `keyless diff`
// masks it. A file for another key, or with a tampered MAC, stalls with the
// file named and the last good Secret left running; a rotated key syncs.
func TestSOPSSecretsAreDecryptedOnlyInTheCluster(t *testing.T) {
	e := newEnv(t)
	e.logs = &syncBuffer{}
	e.startController(time.Hour)
	ctx := t.Context()
	key := sopstest.NewKey(t)
	work := t.TempDir()
	keyFile := filepath.Join(work, "team.agekey")
	if err := os.WriteFile(keyFile, key.File, 0o600); err != nil {
		t.Fatal(err)
	}
	// As `keyless install namespace --from` derives it for manifests with a
	// Secret: the deployer may write Secrets, the controller watch them.
	e.grantRole("keyless-deployer", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: install.DeployerVerbs})
	e.grantRole("keyless-controller", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list", "watch"}})
	if err := e.admin.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sops-age", Namespace: appNS},
		Data: map[string][]byte{"team.agekey": key.File}}); err != nil {
		t.Fatal(err)
	}

	t.Log("the CLI encrypts the Secret; the commit holds only ciphertext")
	plainFile := filepath.Join(work, "secret.yaml")
	if err := os.WriteFile(plainFile, []byte(secretManifest(dbPassword)), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errBuf bytes.Buffer
	code := cli.Run(ctx, []string{"secret", "encrypt", "--age", key.Recipient, plainFile}, cli.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errBuf})
	encrypted, errOut := out.String(), errBuf.String()
	if code != 0 || strings.Contains(encrypted, dbPassword) {
		t.Fatalf("keyless secret encrypt: exit %d, stderr %q", code, errOut)
	}
	files := manifests("registry.example.com/web:1.0", "hello")
	files["deploy/secret.yaml"] = encrypted
	files["chart/Chart.yaml"] = sopsChart
	files["chart/templates/secret.yaml"] = sopsChartSecret
	files["chart/secrets.yaml"] = string(sopstest.EncryptAll(t, key, "secrets.yaml", "db:\n  password: "+helmPassword+"\n"))
	first := e.push(files, nil, "encrypted secrets")
	for _, name := range []string{"web", "chart"} {
		path := map[string]string{"web": "deploy", "chart": "chart"}[name]
		e.createApp(name, path, kv1.MinInterval)
		app := e.app(name)
		patch := client.MergeFrom(app.DeepCopy())
		app.Spec.Decryption = &kv1.Decryption{Provider: kv1.DecryptionProviderSOPS, SecretRef: kv1.LocalObjectReference{Name: "sops-age"}}
		if name == "chart" {
			app.Spec.Source.Helm = &kv1.HelmSource{ValueFiles: []string{"secrets.yaml"}}
		}
		if err := e.admin.Patch(ctx, app, patch); err != nil {
			t.Fatal(err)
		}
	}
	e.waitApp("web", "Ready at the encrypted commit", 60*time.Second, func(a *kv1.Application) bool { return ready(a) && a.Status.LastAppliedRevision == first })
	e.waitApp("chart", "Ready at the encrypted commit", 60*time.Second, func(a *kv1.Application) bool { return ready(a) && a.Status.LastAppliedRevision == first })
	if got := e.secretValue("db"); got != dbPassword {
		t.Fatalf("Secret db in the cluster holds %q, want the decrypted value", got)
	}
	if got := e.secretValue("from-values"); got != helmPassword {
		t.Fatalf("Secret from-values (Helm values file) holds %q, want the decrypted value", got)
	}

	t.Log("keyless diff masks the values, and marks the changed one")
	tree := filepath.Join(work, "tree")
	for name, content := range files {
		if strings.HasPrefix(name, "deploy/") {
			writeTestFile(t, filepath.Join(tree, name), content)
		}
	}
	writeTestFile(t, filepath.Join(tree, "deploy/secret.yaml"), string(sopstest.Encrypt(t, key, "secret.yaml", secretManifest(rotatedValue))))
	code, diffOut, errOut := e.keyless("", "diff", filepath.Join(tree, "deploy"), "--root", tree, "-n", appNS, "--name", "web", "--decryption-key-file", keyFile)
	if strings.Contains(diffOut+errOut, dbPassword) || strings.Contains(diffOut+errOut, rotatedValue) || !strings.Contains(diffOut, "*** (changed)") {
		t.Errorf("keyless diff: exit %d, want the change masked:\n%s\n%s", code, diffOut, errOut)
	}

	t.Log("a file for another team's key: stalled naming the file and both recipients; the last good Secret keeps running")
	other := sopstest.NewKey(t)
	wrong := e.push(map[string]string{"deploy/secret.yaml": string(sopstest.Encrypt(t, other, "secret.yaml", secretManifest(rotatedValue)))}, nil, "secret for another key")
	got := e.waitApp("web", "Stalled on the key", 30*time.Second, func(a *kv1.Application) bool {
		return apimeta.IsStatusConditionTrue(a.Status.Conditions, kv1.StalledCondition) && a.Status.LastAttemptedRevision == wrong
	})
	msg := condition(got, kv1.StalledCondition)
	for _, want := range []string{kv1.ReasonDecryptionFailed, "deploy/secret.yaml", other.Recipient, key.Recipient} {
		if !strings.Contains(msg, want) {
			t.Errorf("Stalled %q does not name %s", msg, want)
		}
	}
	if v := e.secretValue("db"); v != dbPassword {
		t.Errorf("after the refused commit the Secret holds %q, want the last good value", v)
	}

	t.Log("a tampered file: refused for its MAC")
	tampered := strings.Replace(encrypted, "name: db", "name: dc", 1)
	mac := e.push(map[string]string{"deploy/secret.yaml": tampered}, nil, "tampered secret")
	got = e.waitApp("web", "Stalled on the MAC", 30*time.Second, func(a *kv1.Application) bool {
		return apimeta.IsStatusConditionTrue(a.Status.Conditions, kv1.StalledCondition) && a.Status.LastAttemptedRevision == mac
	})
	if msg := condition(got, kv1.StalledCondition); !strings.Contains(msg, "MAC") || !strings.Contains(msg, "deploy/secret.yaml") {
		t.Errorf("Stalled %q: want the MAC mismatch of deploy/secret.yaml", msg)
	}

	t.Log("key rotation: the new key in the Secret, the file re-encrypted for it")
	rotated := sopstest.NewKey(t)
	s := &corev1.Secret{}
	if err := e.admin.Get(ctx, client.ObjectKey{Namespace: appNS, Name: "sops-age"}, s); err != nil {
		t.Fatal(err)
	}
	s.Data = map[string][]byte{"rotated.agekey": rotated.File}
	if err := e.admin.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	next := e.push(map[string]string{"deploy/secret.yaml": string(sopstest.Encrypt(t, rotated, "secret.yaml", secretManifest(rotatedValue)))}, nil, "rotate the key")
	e.waitApp("web", "Ready after the rotation", 30*time.Second, func(a *kv1.Application) bool { return ready(a) && a.Status.LastAppliedRevision == next })
	if v := e.secretValue("db"); v != rotatedValue {
		t.Errorf("after the rotation the Secret holds %q", v)
	}

	t.Log("the key Secret deleted: stalled naming it; the last good Secret keeps running")
	if err := e.admin.Delete(ctx, s); err != nil {
		t.Fatal(err)
	}
	missing := e.push(map[string]string{"deploy/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  greeting: bye\n"}, nil, "a change while the key is gone")
	got = e.waitApp("web", "Stalled on the missing key Secret", 30*time.Second, func(a *kv1.Application) bool {
		return apimeta.IsStatusConditionTrue(a.Status.Conditions, kv1.StalledCondition) && a.Status.LastAttemptedRevision == missing
	})
	if msg := condition(got, kv1.StalledCondition); !strings.Contains(msg, kv1.ReasonDecryptionFailed) || !strings.Contains(msg, "sops-age") {
		t.Errorf("Stalled %q: want DecryptionFailed naming the Secret sops-age", msg)
	}
	if v := e.secretValue("db"); v != rotatedValue {
		t.Errorf("with the key gone the Secret holds %q, want the last good value", v)
	}

	t.Log("no plaintext anywhere but the cluster's Secrets")
	needles := []string{dbPassword, helmPassword, rotatedValue}
	for _, n := range append([]string(nil), needles...) {
		needles = append(needles, base64.StdEncoding.EncodeToString([]byte(n)))
	}
	assertNoneOnDisk(t, e.cacheDir, needles)
	var where []string
	for _, name := range []string{"web", "chart"} {
		st, err := json.Marshal(e.app(name).Status)
		if err != nil {
			t.Fatal(err)
		}
		where = append(where, "status of "+name+": "+string(st))
	}
	where = append(where, e.eventTexts()...)
	for _, line := range strings.Split(e.logs.String(), "\n") {
		where = append(where, "controller log line: "+line)
	}
	where = append(where, "audit lines: "+e.audit.String())
	for _, w := range where {
		for _, n := range needles {
			if strings.Contains(w, n) {
				i := strings.Index(w, n)
				t.Errorf("plaintext %q found in %.120s … %s", n, w, w[max(0, i-300):i])
			}
		}
	}
	if len(e.audit.records(t)) == 0 || e.logs.String() == "" {
		t.Fatal("no audit line or log captured: the search above proves nothing")
	}
}

// Plaintexts of the status.sync.diff test, decrypted into kinds other
// than Secret.
const (
	configMapPlaintext = "cm-dsn-3e9b17-plaintext"
	envPlaintext       = "env-pass-c04d58-plaintext"
)

const sopsChartDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: 1
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: api
        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
        image: registry.example.com/api:1.0
        env:
        - name: DB_PASSWORD
          value: {{ .Values.db.password | quote }}
`

// TestSOPSPlaintextNotInStatusDiff: with selfHeal off, a drifted object is
// reported in status.sync.diff, which whoever may get the Application
// reads. A ConfigMap from an encrypted file and a Deployment whose env
// comes from encrypted Helm values are edited in the cluster (as kubectl
// edit would): the Applications turn OutOfSync naming them, and the
// decrypted values are in no status and no Event — the diff of an
// Application with spec.decryption is withheld, whatever the kind.
func TestSOPSPlaintextNotInStatusDiff(t *testing.T) {
	e := newEnv(t)
	e.startController(time.Hour)
	ctx := t.Context()
	key := sopstest.NewKey(t)
	if err := e.admin.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sops-age", Namespace: appNS},
		Data: map[string][]byte{"team.agekey": key.File}}); err != nil {
		t.Fatal(err)
	}
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  dsn: " + configMapPlaintext + "\n"
	first := e.push(map[string]string{
		"deploy/cm.yaml":                  string(sopstest.Encrypt(t, key, "cm.yaml", cm)),
		"chart/Chart.yaml":                sopsChart,
		"chart/templates/deployment.yaml": sopsChartDeployment,
		"chart/secrets.yaml":              string(sopstest.EncryptAll(t, key, "secrets.yaml", "db:\n  password: "+envPlaintext+"\n")),
	}, nil, "encrypted ConfigMap and Helm values")
	for name, path := range map[string]string{"web": "deploy", "chart": "chart"} {
		app := &kv1.Application{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: appNS},
			Spec: kv1.ApplicationSpec{
				Source: kv1.ApplicationSource{RepoURL: e.git.RepoURL(repoName), TargetRevision: "main", Path: path,
					SecretRef: &kv1.LocalObjectReference{Name: "myapp-git"}},
				SyncPolicy: &kv1.SyncPolicy{Automated: &kv1.AutomatedSyncPolicy{Prune: true, SelfHeal: false}},
				Decryption: &kv1.Decryption{Provider: kv1.DecryptionProviderSOPS, SecretRef: kv1.LocalObjectReference{Name: "sops-age"}},
			},
		}
		if name == "chart" {
			app.Spec.Source.Helm = &kv1.HelmSource{ValueFiles: []string{"secrets.yaml"}}
		}
		if err := e.admin.Create(ctx, app); err != nil {
			t.Fatal(err)
		}
		e.waitApp(name, "applied the encrypted commit", 60*time.Second, func(a *kv1.Application) bool { return a.Status.LastAppliedRevision == first })
	}

	t.Log("the admin edits both objects in the cluster; selfHeal is off")
	settings, err := e.cs.CoreV1().ConfigMaps(appNS).Get(ctx, "settings", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if settings.Data["dsn"] != configMapPlaintext {
		t.Fatalf("ConfigMap settings holds %q, want the decrypted value", settings.Data["dsn"])
	}
	dep, err := e.cs.AppsV1().Deployments(appNS).Get(ctx, "api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if env := dep.Spec.Template.Spec.Containers[0].Env; len(env) != 1 || env[0].Value != envPlaintext {
		t.Fatalf("Deployment api's env is %v, want the decrypted value", env)
	}
	// As kubectl edit would; each edit writes a new value.
	edits := map[string]func(value string) error{
		"web": func(value string) error {
			cm, err := e.cs.CoreV1().ConfigMaps(appNS).Get(ctx, "settings", metav1.GetOptions{})
			if err != nil {
				return err
			}
			cm.Data["dsn"] = value
			_, err = e.cs.CoreV1().ConfigMaps(appNS).Update(ctx, cm, metav1.UpdateOptions{FieldManager: "kubectl-edit"})
			return err
		},
		"chart": func(value string) error {
			d, err := e.cs.AppsV1().Deployments(appNS).Get(ctx, "api", metav1.GetOptions{})
			if err != nil {
				return err
			}
			d.Spec.Template.Spec.Containers[0].Env[0].Value = value
			_, err = e.cs.AppsV1().Deployments(appNS).Update(ctx, d, metav1.UpdateOptions{FieldManager: "kubectl-edit"})
			return err
		},
	}

	var where []string
	for name, drifted := range map[string]string{"web": "ConfigMap/settings configured", "chart": "Deployment/api configured"} {
		// A watch started by the first sync lists the object before it
		// reports edits, and no test can see when it has (editUntilReverted):
		// the edit is repeated every 3 s until the drift is reported.
		var edited time.Time
		n := 0
		got := e.waitApp(name, name+" OutOfSync", 40*time.Second, func(a *kv1.Application) bool {
			if a.Status.Sync.Status == kv1.SyncStatusOutOfSync {
				return true
			}
			if time.Since(edited) > 3*time.Second {
				n++
				if err := edits[name](fmt.Sprintf("edited-in-the-cluster-%d", n)); err != nil {
					t.Logf("editing %s's object: %v", name, err)
				}
				edited = time.Now()
			}
			return false
		})
		if fmt.Sprint(got.Status.Sync.Drifted) != "["+drifted+"]" {
			t.Errorf("%s: status.sync.drifted %v, want [%s]", name, got.Status.Sync.Drifted, drifted)
		}
		if !strings.Contains(got.Status.Sync.Diff, "diff withheld") || !strings.Contains(got.Status.Sync.Diff, "spec.decryption") {
			t.Errorf("%s: status.sync.diff does not say why it is withheld:\n%s", name, got.Status.Sync.Diff)
		}
		st, err := json.Marshal(got.Status)
		if err != nil {
			t.Fatal(err)
		}
		where = append(where, "status of "+name+": "+string(st))
	}
	where = append(where, e.eventTexts()...)
	for _, w := range where {
		for _, n := range []string{configMapPlaintext, envPlaintext} {
			if i := strings.Index(w, n); i >= 0 {
				t.Errorf("plaintext %q found in %.120s … %s", n, w, w[max(0, i-300):i])
			}
		}
	}
	if d, _ := e.cs.AppsV1().Deployments(appNS).Get(ctx, "api", metav1.GetOptions{}); d == nil || !strings.HasPrefix(d.Spec.Template.Spec.Containers[0].Env[0].Value, "edited-in-the-cluster-") {
		t.Error("drift was reverted although selfHeal is off")
	}
}

// grantRole adds rule to the Role name of the app namespace.
func (e *env) grantRole(name string, rule rbacv1.PolicyRule) {
	e.t.Helper()
	role := &rbacv1.Role{}
	if err := e.admin.Get(e.t.Context(), client.ObjectKey{Namespace: appNS, Name: name}, role); err != nil {
		e.t.Fatal(err)
	}
	role.Rules = append(role.Rules, rule)
	if err := e.admin.Update(e.t.Context(), role); err != nil {
		e.t.Fatal(err)
	}
}

// secretValue is the password of Secret name in the app namespace.
func (e *env) secretValue(name string) string {
	e.t.Helper()
	s := &corev1.Secret{}
	if err := e.admin.Get(e.t.Context(), client.ObjectKey{Namespace: appNS, Name: name}, s); err != nil {
		e.t.Fatal(err)
	}
	return string(s.Data["password"])
}

// assertNoneOnDisk fails for every file under root holding one of needles.
func assertNoneOnDisk(t *testing.T, root string, needles []string) {
	t.Helper()
	files := 0
	_ = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil //nolint:nilerr // a file gone while walking (cache GC) holds nothing
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		files++
		data, _ := os.ReadFile(p)
		for _, n := range needles {
			if strings.Contains(string(data), n) {
				t.Errorf("%s holds plaintext %q", p, n)
			}
		}
		return nil
	})
	if files == 0 {
		t.Fatalf("no file under %s: the cache search proves nothing", root)
	}
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// eventTexts are appNS's Events as "Event REASON: MESSAGE", for checking
// that nothing secret reached one.
func (e *env) eventTexts() []string {
	e.t.Helper()
	evs, err := e.cs.CoreV1().Events(appNS).List(e.t.Context(), metav1.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]string, 0, len(evs.Items))
	for _, ev := range evs.Items {
		out = append(out, "Event "+ev.Reason+": "+ev.Message)
	}
	return out
}
