package controller_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

func configMapYAML(name, value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  v: %q\n", name, value)
}

// configMapRequests counts the requests (writes and dry runs) made for the
// ConfigMaps of the app namespace named in names.
func (e *env) configMapRequests(names ...string) int {
	e.t.Helper()
	n := 0
	for _, ev := range e.cluster.AuditEvents(e.t, appNS) {
		if ev.ObjectRef.Resource == "configmaps" && slices.Contains(names, ev.ObjectRef.Name) && ev.Verb != "get" && ev.Verb != "list" && ev.Verb != "watch" {
			n++
		}
	}
	return n
}

// TestUntouchedApplicationsAreNotRendered: four Applications read one
// repository (two plain folders, two kustomizations sharing a base). A
// commit to the README moves all four to it with no render, no dry run
// and no write, and status.render says their inputs did not change; a
// commit to one folder renders and applies that Application only, naming
// the changed file; a commit to the shared base renders exactly the two
// that read it.
func TestUntouchedApplicationsAreNotRendered(t *testing.T) {
	e := newEnv(t)
	e.startController(time.Hour)
	e.push(map[string]string{
		"README.md":                       "# monorepo\n",
		"apps/a/cm.yaml":                  configMapYAML("a", "1"),
		"apps/b/cm.yaml":                  configMapYAML("b", "1"),
		"bases/shared/kustomization.yaml": "resources:\n- cm.yaml\n",
		"bases/shared/cm.yaml":            configMapYAML("shared", "1"),
		"apps/c/kustomization.yaml":       "namePrefix: c-\nresources:\n- ../../bases/shared\n",
		"apps/d/kustomization.yaml":       "namePrefix: d-\nresources:\n- ../../bases/shared\n",
	}, nil, "a monorepo")
	apps := []string{"a", "b", "c", "d"}
	objects := map[string]string{"a": "a", "b": "b", "c": "c-shared", "d": "d-shared"}
	for _, name := range apps {
		e.createApp(name, "apps/"+name, time.Hour)
	}
	for _, name := range apps {
		app := e.waitApp(name, "Ready", 60*time.Second, ready)
		if app.Status.Render == nil || app.Status.Render.Inputs == 0 {
			t.Fatalf("%s: status.render %+v, want the render's inputs counted", name, app.Status.Render)
		}
	}

	// pushAndWait pushes files, pokes the webhook and waits for every
	// Application to show the commit; it returns their status.render.
	pushAndWait := func(files map[string]string, msg string) (string, map[string]*kv1.RenderStatus) {
		t.Helper()
		sha := e.push(files, nil, msg)
		if code := e.gitlabHook(hookSecret); code != http.StatusOK {
			t.Fatalf("gitlab hook: %d", code)
		}
		out := map[string]*kv1.RenderStatus{}
		for _, name := range apps {
			app := e.waitApp(name, "at "+msg, 30*time.Second, func(a *kv1.Application) bool {
				return ready(a) && a.Status.LastAppliedRevision == sha && a.Status.Sync.Revision == sha
			})
			out[name] = app.Status.Render
		}
		return sha, out
	}
	rerendered := func(st map[string]*kv1.RenderStatus, sha string) []string {
		var out []string
		for _, name := range apps {
			if st[name].Revision == sha {
				out = append(out, name)
			}
		}
		return out
	}

	before := e.configMapRequests(slices.Collect(mapValues(objects))...)
	docs, st := pushAndWait(map[string]string{"README.md": "# monorepo\n\nnow with docs\n"}, "docs only")
	if got := rerendered(st, docs); len(got) != 0 {
		t.Fatalf("a README-only commit rendered %v", got)
	}
	for _, name := range apps {
		if !strings.HasPrefix(st[name].Reason, "inputs unchanged since ") {
			t.Fatalf("%s: status.render.reason %q, want inputs unchanged", name, st[name].Reason)
		}
	}
	if after := e.configMapRequests(slices.Collect(mapValues(objects))...); after != before {
		t.Fatalf("a README-only commit made %d requests (writes or dry runs) for the Applications' objects", after-before)
	}

	before = e.configMapRequests("b", "c-shared", "d-shared")
	one, st := pushAndWait(map[string]string{"apps/a/cm.yaml": configMapYAML("a", "2")}, "change a")
	if got := rerendered(st, one); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("a commit to apps/a rendered %v, want [a]", got)
	}
	if !slices.Contains(st["a"].Changed, "apps/a/cm.yaml") || !strings.Contains(st["a"].Reason, "apps/a/cm.yaml") {
		t.Fatalf("a's status.render %+v does not name the changed file", st["a"])
	}
	if v := e.configMapValue("a"); v != "2" {
		t.Fatalf("ConfigMap a holds %q, want the pushed 2", v)
	}
	if after := e.configMapRequests("b", "c-shared", "d-shared"); after != before {
		t.Fatalf("a commit to apps/a made %d requests for the other Applications' objects", after-before)
	}

	base, st := pushAndWait(map[string]string{"bases/shared/cm.yaml": configMapYAML("shared", "2")}, "change the shared base")
	if got := rerendered(st, base); !slices.Equal(got, []string{"c", "d"}) {
		t.Fatalf("a commit to the shared base rendered %v, want [c d]", got)
	}
	for _, name := range []string{"c", "d"} {
		if !slices.Contains(st[name].Changed, "bases/shared/cm.yaml") {
			t.Fatalf("%s: status.render %+v does not name bases/shared/cm.yaml", name, st[name])
		}
		if v := e.configMapValue(objects[name]); v != "2" {
			t.Fatalf("ConfigMap %s holds %q, want 2", objects[name], v)
		}
	}
	if st["a"].Revision != one || st["b"].Revision == base {
		t.Fatalf("a and b moved their render: %+v %+v", st["a"], st["b"])
	}
}

func mapValues(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}
