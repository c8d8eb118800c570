package preview_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/keyless-cd/keyless/internal/engine"
	"github.com/keyless-cd/keyless/internal/gitsource"
	"github.com/keyless-cd/keyless/internal/preview"
	"github.com/keyless-cd/keyless/internal/sopsfile/sopstest"
)

// apiApp is an Argo CD Application (Helm chart, a parameter, SSH URL of
// the same repository) as Argo CD users keep them.
func apiApp(tag string) string {
	return `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: api
  namespace: argocd
spec:
  project: default
  source:
    repoURL: git@git.example.com:team/apps.git
    targetRevision: main
    path: deploy/chart
    helm:
      parameters:
      - name: image.tag
        value: "` + tag + `"
  destination:
    server: https://kubernetes.default.svc
    namespace: team-b
`
}

const chartYAML = `apiVersion: v2
name: api
version: 0.1.0
`

const chartDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  namespace: {{ .Release.Namespace }}
spec:
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api}
    spec:
      containers:
      - name: api
        image: "registry.example.com/api:{{ .Values.image.tag }}"
`

// otherApp deploys from another repository: not this checkout's to preview.
const otherApp = `apiVersion: keyless.dev/v1alpha1
kind: Application
metadata:
  name: billing
  namespace: team-c
spec:
  source:
    repoURL: https://git.example.com/team/billing.git
    path: deploy
`

func baseFiles() map[string]string {
	return map[string]string{
		"apps/web.yaml":                      webApp,
		"apps/api.yaml":                      apiApp("1.0"),
		"apps/billing.yaml":                  otherApp,
		"deploy/web/settings.yaml":           configMap("settings", "blue"),
		"deploy/web/secret.yaml":             secret("hunter2"),
		"deploy/web/old.yaml":                configMap("old", "red"),
		"deploy/chart/Chart.yaml":            chartYAML,
		"deploy/chart/templates/deploy.yaml": chartDeployment,
		"deploy/chart/values.yaml":           "image:\n  tag: latest\n",
		"README.md":                          "not a manifest\n",
	}
}

func TestPreviewReportsEachChange(t *testing.T) {
	r := newRepo(t, baseFiles())
	r.commit("change", map[string]string{
		"deploy/web/settings.yaml": configMap("settings", "green"),
		"deploy/web/extra.yaml":    configMap("extra", "white"),
		"deploy/web/old.yaml":      "",
		"deploy/web/secret.yaml":   secret("correct-horse"),
		"apps/api.yaml":            apiApp("2.0"),
	})
	rep := r.run("main~1")

	web := app(t, rep, "team-a/web")
	if web.State != preview.AppChanged || web.Source != "apps/web.yaml:1" || web.Path != "deploy/web" {
		t.Errorf("web = %s at %s path %s, want changed at apps/web.yaml:1 path deploy/web", web.State, web.Source, web.Path)
	}
	if got := [3]int{web.Count(preview.Added), web.Count(preview.Changed), web.Count(preview.Removed)}; got != [3]int{1, 2, 1} {
		t.Errorf("web added/changed/removed = %v, want [1 2 1]", got)
	}
	settings := changeOf(t, web, "ConfigMap", "settings")
	if settings.Action != preview.Changed || !strings.Contains(settings.Diff, "-  color: blue") || !strings.Contains(settings.Diff, "+  color: green") {
		t.Errorf("settings change = %s, diff:\n%s", settings.Action, settings.Diff)
	}
	if c := changeOf(t, web, "ConfigMap", "extra"); c.Action != preview.Added || c.Source != "deploy/web/extra.yaml:1" {
		t.Errorf("extra = %s from %q, want added from deploy/web/extra.yaml:1", c.Action, c.Source)
	}
	if c := changeOf(t, web, "ConfigMap", "old"); c.Action != preview.Removed {
		t.Errorf("old = %s, want removed", c.Action)
	}
	sec := changeOf(t, web, "Secret", "db")
	if !strings.Contains(sec.Diff, "password: '*** (changed)'") || strings.Contains(sec.Diff, "user:") && !strings.Contains(sec.Diff, "user: '***'") {
		t.Errorf("secret diff does not mark the changed value and mask the rest:\n%s", sec.Diff)
	}

	// The Argo CD Application: its own manifest changed the Helm parameter,
	// rendered with the controller's options (release name, namespace).
	api := app(t, rep, "team-b/api")
	if api.State != preview.AppChanged {
		t.Fatalf("api = %s, want changed", api.State)
	}
	if !api.Changes[0].Manifest || !strings.Contains(api.Changes[0].Diff, `+        value: "2.0"`) {
		t.Errorf("first change of api is not its manifest's: %+v", api.Changes[0])
	}
	dep := changeOf(t, api, "Deployment", "api")
	if !strings.Contains(dep.Diff, "-      - image: registry.example.com/api:1.0") || !strings.Contains(dep.Diff, "+      - image: registry.example.com/api:2.0") || dep.Namespace != "team-b" {
		t.Errorf("Deployment diff does not show the parameter's image tag in team-b:\n%s", dep.Diff)
	}

	if len(rep.Skipped) != 1 || rep.Skipped[0].Application != "team-c/billing" {
		t.Errorf("skipped = %+v, want team-c/billing (another repository)", rep.Skipped)
	}
	if !rep.Changed() || rep.Err() != nil {
		t.Errorf("Changed = %v, Err = %v; want true, nil", rep.Changed(), rep.Err())
	}
	for _, format := range preview.Formats {
		var out bytes.Buffer
		if err := preview.WriteReport(&out, rep, format); err != nil {
			t.Fatal(err)
		}
		for _, plain := range []string{"hunter2", "correct-horse", "aHVudGVyMg"} {
			if strings.Contains(out.String(), plain) {
				t.Errorf("--format %s shows the Secret's value %q:\n%s", format, plain, out.String())
			}
		}
	}
}

func TestPreviewNoChange(t *testing.T) {
	r := newRepo(t, baseFiles())
	r.commit("docs only", map[string]string{"README.md": "still not a manifest\n"})
	rep := r.run("HEAD~1")
	if rep.Changed() {
		t.Fatalf("a commit changing no manifest reports changes: %+v", rep)
	}
	if a := app(t, rep, "team-a/web"); a.State != preview.AppUnchanged {
		t.Errorf("web = %s, want unchanged", a.State)
	}
}

func TestPreviewRenderErrorAtHead(t *testing.T) {
	r := newRepo(t, baseFiles())
	r.commit("break", map[string]string{"deploy/web/settings.yaml": configMap("settings", "green") + "  broken: [unclosed\n"})
	rep := r.run("HEAD~1")
	web := app(t, rep, "team-a/web")
	if web.State != preview.AppFailed || !strings.Contains(web.HeadError, "deploy/web/settings.yaml:") {
		t.Fatalf("web = %s, head error %q; want failed naming deploy/web/settings.yaml:line", web.State, web.HeadError)
	}
	if err := rep.Err(); !errors.Is(err, preview.ErrRenderFailed) {
		t.Errorf("Err = %v, want ErrRenderFailed", err)
	}
	// A base that did not render and a head that does: the fix shows as added.
	r.commit("fix", map[string]string{"deploy/web/settings.yaml": configMap("settings", "green")})
	rep = r.run("HEAD~1")
	web = app(t, rep, "team-a/web")
	if web.State != preview.AppChanged || web.BaseError == "" || changeOf(t, web, "ConfigMap", "settings").Action != preview.Added {
		t.Errorf("fixing commit: %+v", web)
	}
}

func TestPreviewApplicationAddedAndExplicitFile(t *testing.T) {
	r := newRepo(t, baseFiles())
	r.commit("billing lives here now", map[string]string{
		"deploy/billing/cm.yaml": configMap("billing", "gold"),
		"apps/billing.yaml":      strings.Replace(otherApp, "path: deploy", "path: deploy/billing", 1),
		"apps/new.yaml":          strings.NewReplacer("name: web", "name: new", "team-a", "team-n").Replace(webApp),
	})
	rep := r.run("HEAD~1")
	if a := app(t, rep, "team-n/new"); a.State != preview.AppAdded || a.Count(preview.Added) != 3 {
		t.Errorf("new Application = %s with %d added, want added with the 3 objects of deploy/web", a.State, a.Count(preview.Added))
	}
	// Given as an argument, an Application is previewed against this
	// checkout whatever its repoURL; the others are not looked at.
	rep = r.run("HEAD~1", r.dir+"/apps/billing.yaml")
	if len(rep.Applications) != 1 || len(rep.Skipped) != 0 {
		t.Fatalf("explicit file: applications %+v, skipped %+v", rep.Applications, rep.Skipped)
	}
	if c := changeOf(t, rep.Applications[0], "ConfigMap", "billing"); c.Action != preview.Added {
		t.Errorf("billing cm = %s, want added", c.Action)
	}
	if _, err := r.tryRun("HEAD~1", r.dir+"/deploy/web/settings.yaml"); err == nil || !strings.Contains(err.Error(), "deploy/web/settings.yaml holds no Application") {
		t.Errorf("a file holding no Application: err = %v", err)
	}
	if _, err := r.tryRun("HEAD~1", r.dir+"/README.md"); err == nil || !strings.Contains(err.Error(), "README.md:1") {
		t.Errorf("a file that is no manifest: err = %v, want it named with its line", err)
	}
	if _, err := r.tryRun("HEAD~1", "/etc/passwd"); err == nil {
		t.Error("a file outside the repository was accepted")
	}
}

func TestPreviewHookPhaseShown(t *testing.T) {
	r := newRepo(t, baseFiles())
	r.commit("migration", map[string]string{"deploy/web/migrate.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  annotations:
    argocd.argoproj.io/hook: PreSync
    argocd.argoproj.io/sync-wave: "-2"
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: m, image: migrate:1}]
`})
	rep := r.run("HEAD~1")
	if c := changeOf(t, app(t, rep, "team-a/web"), "Job", "migrate"); c.Sync != "PreSync hook, wave -2" {
		t.Errorf("hook shown as %q, want PreSync hook, wave -2", c.Sync)
	}
}

func TestPreviewUnknownBase(t *testing.T) {
	r := newRepo(t, baseFiles())
	_, err := r.tryRun("0123456789abcdef0123456789abcdef01234567")
	if !errors.Is(err, gitsource.ErrRevisionNotFound) || !strings.Contains(err.Error(), "fetch-depth: 0") {
		t.Errorf("err = %v, want ErrRevisionNotFound saying how to fetch the base", err)
	}
}

// TestPreviewOfASOPSFileNeedsNoKey: CI holds no decryption key; a
// re-encrypted Secret previews as changed (masked), never refused.
func TestPreviewOfASOPSFileNeedsNoKey(t *testing.T) {
	k := sopstest.NewKey(t)
	files := baseFiles()
	files["deploy/web/secret.yaml"] = string(sopstest.Encrypt(t, k, "secret.yaml", secret("hunter2")))
	r := newRepo(t, files)
	r.commit("rotate the password", map[string]string{"deploy/web/secret.yaml": string(sopstest.Encrypt(t, k, "secret.yaml", secret("correct-horse")))})
	web := app(t, r.run("main~1"), "team-a/web")
	sec := changeOf(t, web, "Secret", "db")
	if sec.Action != preview.Changed || !strings.Contains(sec.Diff, "password: '*** (changed)'") || strings.Contains(sec.Diff, "sops") {
		t.Errorf("encrypted Secret change = %s, diff:\n%s", sec.Action, sec.Diff)
	}
}

// TestPreviewListsRefusedObjects: a change that adds objects the
// controller refuses shows each of them, named with its source, in every
// format, and breaks the head like a failed render (Report.Err).
func TestPreviewListsRefusedObjects(t *testing.T) {
	r := newRepo(t, baseFiles())
	r.commit("cluster-wide", map[string]string{
		"deploy/web/cr.yaml":    "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: everything\nrules: []\n",
		"deploy/web/other.yaml": configMap("fine", "blue") + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sneaky\n  namespace: kube-system\n",
	})
	rep := r.run("HEAD~1")
	web := app(t, rep, "team-a/web")
	var got []string
	for _, ref := range web.Refused {
		got = append(got, ref.Object.String()+" "+ref.Source)
	}
	if want := []string{"ClusterRole/everything deploy/web/cr.yaml:1", "ConfigMap/sneaky deploy/web/other.yaml:8"}; !slices.Equal(got, want) {
		t.Errorf("refused = %q, want %q", got, want)
	}
	if a := app(t, rep, "team-b/api"); len(a.Refused) != 0 {
		t.Errorf("api refused = %v, want none", a.Refused)
	}
	if err := rep.Err(); !errors.Is(err, engine.ErrRefused) || !strings.Contains(err.Error(), "team-a/web: 2") {
		t.Errorf("Err = %v, want ErrRefused naming team-a/web", err)
	}
	for format, want := range map[string][]string{
		preview.FormatText: {"refused: 2 objects the controller would refuse",
			"! ClusterRole/everything — cluster-scoped objects are not allowed", "— deploy/web/cr.yaml:1",
			`! ConfigMap/sneaky (namespace kube-system) — names namespace "kube-system"`, "1 with objects the controller would refuse"},
		preview.FormatMarkdown: {"| changed, **2 refused** |", "- <code>ClusterRole/everything</code>: cluster-scoped", "(deploy/web/cr.yaml:1)",
			"- <code>ConfigMap/sneaky</code>  (namespace kube-system): names namespace"},
		preview.FormatJSON: {`"refused": [`, `"source": "deploy/web/other.yaml:8"`, `"guard": "namespace"`},
	} {
		var out bytes.Buffer
		if err := preview.WriteReport(&out, rep, format); err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("--format %s lacks %q:\n%s", format, w, out.String())
			}
		}
	}
}

// A chart from a repository is not in the checkout: given as a file, its
// Application is reported as not previewable, not rendered from the root.
func TestPreviewChartApplicationIsNotPreviewable(t *testing.T) {
	r := newRepo(t, baseFiles())
	chartApp := `apiVersion: keyless.dev/v1alpha1
kind: Application
metadata: {name: nginx, namespace: team-c}
spec:
  source: {repoURL: "https://charts.example.com", chart: nginx, targetRevision: 1.x}
`
	r.commit("nginx from a chart repository", map[string]string{"apps/nginx.yaml": chartApp})
	rep := r.run("HEAD~1", r.dir+"/apps/nginx.yaml")
	if len(rep.Applications) != 1 || rep.Applications[0].State != preview.AppFailed || !strings.Contains(rep.Applications[0].HeadError, "does not fetch") {
		t.Fatalf("chart Application: %+v", rep.Applications)
	}
	if !errors.Is(rep.Err(), preview.ErrRenderFailed) {
		t.Errorf("Err = %v, want ErrRenderFailed", rep.Err())
	}
}

// TestPreviewHealthCheckExprs: an Application whose spec.healthCheckExprs
// does not compile fails the preview naming the entry (the controller would
// refuse it, InvalidSpec, at its next sync); one that compiles passes.
func TestPreviewHealthCheckExprs(t *testing.T) {
	withExprs := func(current string) string {
		return webApp + `  healthCheckExprs:
  - apiVersion: cert-manager.io/v1
    kind: Certificate
    failed: status.?conditions.orValue([]).exists(c, c.type == 'Ready' && c.status == 'False')
    current: ` + current + "\n"
	}
	r := newRepo(t, baseFiles())
	r.commit("good expression", map[string]string{"apps/web.yaml": withExprs(`"status.?conditions.orValue([]).exists(c, c.type == 'Ready' && c.status == 'True')"`)})
	rep := r.run("HEAD~1")
	if web := app(t, rep, "team-a/web"); web.InvalidSpec != "" || web.State != preview.AppChanged {
		t.Errorf("a good expression: %s, invalid spec %q", web.State, web.InvalidSpec)
	}
	if err := rep.Err(); err != nil {
		t.Errorf("a good expression: Err = %v", err)
	}

	r.commit("broken expression", map[string]string{"apps/web.yaml": withExprs(`"status.conditions.exists(c, c.type == 'Ready' &&)"`)})
	rep = r.run("HEAD~1")
	web := app(t, rep, "team-a/web")
	for _, want := range []string{"apps/web.yaml:1", "spec.healthCheckExprs", "healthCheckExprs[0] (cert-manager.io/v1 Certificate).current"} {
		if !strings.Contains(web.InvalidSpec, want) {
			t.Errorf("invalid spec %q does not name %q", web.InvalidSpec, want)
		}
	}
	if err := rep.Err(); !errors.Is(err, preview.ErrInvalidSpec) || !strings.Contains(err.Error(), "team-a/web") {
		t.Errorf("Err = %v, want ErrInvalidSpec naming team-a/web", err)
	}
	for _, format := range []string{preview.FormatText, preview.FormatMarkdown} {
		var out bytes.Buffer
		if err := preview.WriteReport(&out, rep, format); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "InvalidSpec") || !strings.Contains(out.String(), "healthCheckExprs[0]") {
			t.Errorf("%s report does not show the invalid entry:\n%s", format, out.String())
		}
	}
}
