package render

import (
	"errors"
	"strings"
	"testing"
)

// TestGenerateNameOnlyOnHooks: a hook may use generateName (it is created
// anew for each sync); any other object still needs a name.
func TestGenerateNameOnlyOnHooks(t *testing.T) {
	hook := "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: smoke-\n  annotations:\n    argocd.argoproj.io/hook: PostSync\nspec: {}\n"
	res, err := Render(t.Context(), Options{Root: writeTree(t, map[string]string{"post.yaml": hook})})
	if err != nil || len(res.Objects) != 1 || res.Objects[0].GetGenerateName() != "smoke-" {
		t.Fatalf("a generateName hook: %v, %v", res, err)
	}
	plain := "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: smoke-\nspec: {}\n"
	_, err = Render(t.Context(), Options{Root: writeTree(t, map[string]string{"job.yaml": plain})})
	if err == nil || !strings.Contains(err.Error(), "job.yaml") || !strings.Contains(err.Error(), "generateName is allowed on hooks only") {
		t.Fatalf("generateName without a hook annotation: err = %v", err)
	}
	skip := strings.Replace(hook, "PostSync", "Skip", 1)
	if _, err := Render(t.Context(), Options{Root: writeTree(t, map[string]string{"skip.yaml": skip})}); err == nil {
		t.Fatal("a Skip object with only generateName was accepted")
	}
}

// TestUnrenderedFilesAreNamed: a directory of CUE renders nothing and
// says why; a CUE file beside YAML is named in a warning; a Jsonnet library
// beside its Jsonnet file is not.
func TestUnrenderedFilesAreNamed(t *testing.T) {
	_, err := Render(t.Context(), Options{Root: writeTree(t, map[string]string{"app.cue": "{}", "deploy.j2": "{}"})})
	if !errors.Is(err, ErrNothingRendered) || !strings.Contains(err.Error(), "app.cue (CUE is not rendered") || !strings.Contains(err.Error(), "deploy.j2") {
		t.Fatalf("only CUE and Jinja: err = %v, want ErrNothingRendered naming both files and why", err)
	}
	res, err := Render(t.Context(), Options{Root: writeTree(t, map[string]string{
		"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n", "extra.cue": "{}", "README.md": "docs", "k.libsonnet": "{}",
	})})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "extra.cue") || strings.Contains(res.Warnings[0], "README.md") || strings.Contains(res.Warnings[0], "libsonnet") {
		t.Errorf("warnings = %q, want extra.cue named (and README.md, k.libsonnet not)", res.Warnings)
	}
	// Only docs: an empty render, which the engine refuses unless allowEmpty.
	if res, err := Render(t.Context(), Options{Root: writeTree(t, map[string]string{"README.md": "docs"})}); err != nil || len(res.Objects) != 0 {
		t.Errorf("only a README: %v, %v; want an empty render", res, err)
	}
}

// TestKustomizeGenerateNameHooks: Argo CD style generateName hooks work in a
// kustomization (which kustomize alone refuses), keep their namePrefix, and
// a generateName object that is not a hook is still refused.
func TestKustomizeGenerateNameHooks(t *testing.T) {
	hook := func(phase, prefix string) string {
		return "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: " + prefix + "\n  annotations:\n    argocd.argoproj.io/hook: " + phase + "\n    argocd.argoproj.io/hook-delete-policy: HookSucceeded\nspec: {}\n"
	}
	root := writeTree(t, map[string]string{
		"kustomization.yaml": "namePrefix: prod-\nresources: [hooks.yaml, cm.yaml]\n",
		"hooks.yaml":         hook("PreSync", "db-check-") + "---\n" + hook("PostSync", "smoke-"),
		"cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n",
	})
	res, err := Render(t.Context(), Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, o := range res.Objects {
		got[o.GetKind()+":"+o.GetName()+":"+o.GetGenerateName()] = o.GetAnnotations()["argocd.argoproj.io/hook"]
		if _, ok := o.GetAnnotations()[generateNameAnnotation]; ok {
			t.Errorf("%s keeps keyless's marker annotation", o.GetGenerateName())
		}
	}
	want := map[string]string{"Job::prod-db-check-": "PreSync", "Job::prod-smoke-": "PostSync", "ConfigMap:prod-app:": ""}
	if len(got) != len(want) {
		t.Fatalf("objects = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("objects = %v, want %v", got, want)
		}
	}
	plain := writeTree(t, map[string]string{
		"kustomization.yaml": "resources: [job.yaml]\n",
		"job.yaml":           "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: x-\nspec: {}\n",
	})
	if _, err := Render(t.Context(), Options{Root: plain}); err == nil {
		t.Error("a generateName object that is not a hook rendered through kustomize")
	}
}
