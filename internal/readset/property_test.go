package readset_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/keyless-cd/keyless/internal/readset"
	"github.com/keyless-cd/keyless/internal/render"
)

// fixtureApp is one Application of the fixture monorepo.
type fixtureApp struct {
	name string
	opts render.Options
}

// fixtureApps read the monorepo in every way a render can: a plain folder
// with a symlink to a shared file, a recursive one, kustomizations sharing
// a base (one through a symlinked folder), a chart with a file://
// dependency and a values file outside it, Jsonnet importing a library.
var fixtureApps = []fixtureApp{
	{name: "plain-a", opts: render.Options{Path: "apps/plain-a"}},
	{name: "plain-g", opts: render.Options{Path: "apps/plain-g", Directory: render.DirectoryOptions{Recurse: true}}},
	{name: "kust-b", opts: render.Options{Path: "apps/kust-b"}},
	{name: "kust-c", opts: render.Options{Path: "apps/kust-c"}},
	{name: "link-e", opts: render.Options{Path: "apps/link-e"}},
	{name: "chart-d", opts: render.Options{Path: "apps/chart-d", Helm: render.HelmOptions{ReleaseName: "d", ValueFiles: []string{"../../values/d.yaml"}}}},
	{name: "jsonnet-f", opts: render.Options{Path: "apps/jsonnet-f"}},
}

// monorepo is the fixture's files: path → content; a content starting
// with "->" is a symlink to the rest.
type monorepo map[string]string

func cm(name string, n int) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  count: %q\n", name, fmt.Sprint(n))
}

func initialRepo() monorepo {
	return monorepo{
		"README.md":                              "# fixture\n",
		"shared/cm-shared.yaml":                  cm("shared", 0),
		"apps/plain-a/cm.yaml":                   cm("a", 0),
		"apps/plain-a/link.yaml":                 "->../../shared/cm-shared.yaml",
		"apps/plain-a/sub/extra.yaml":            cm("a-sub", 0),
		"apps/plain-g/top.yaml":                  cm("g-top", 0),
		"apps/plain-g/x/nested.yaml":             cm("g-nested", 0),
		"bases/web/kustomization.yaml":           "resources:\n- cm.yaml\n",
		"bases/web/cm.yaml":                      cm("web", 0),
		"bases/web2/kustomization.yaml":          "resources:\n- cm.yaml\n",
		"bases/web2/cm.yaml":                     cm("web2", 0),
		"apps/kust-b/kustomization.yaml":         "namePrefix: b-\nresources:\n- ../../bases/web\nconfigMapGenerator:\n- name: props\n  files:\n  - config.properties\n",
		"apps/kust-b/config.properties":          "n=0\n",
		"apps/kust-c/kustomization.yaml":         "namePrefix: c-\nresources:\n- ../../bases/web\n- extra.yaml\n",
		"apps/kust-c/extra.yaml":                 cm("c-extra", 0),
		"apps/link-e/kustomization.yaml":         "namePrefix: e-\nresources:\n- base\n",
		"apps/link-e/base":                       "->../../bases/web",
		"apps/chart-d/Chart.yaml":                "apiVersion: v2\nname: d\nversion: 0.1.0\ndependencies:\n- name: lib\n  version: 0.1.0\n  repository: file://../../charts/lib\n",
		"apps/chart-d/values.yaml":               "n: 0\n",
		"apps/chart-d/templates/cm.yaml":         "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: d-{{ .Values.n }}\ndata:\n  m: {{ .Values.m | default \"none\" | quote }}\n",
		"values/d.yaml":                          "m: zero\n",
		"charts/lib/Chart.yaml":                  "apiVersion: v2\nname: lib\nversion: 0.1.0\n",
		"charts/lib/templates/lib.yaml":          cm("lib", 0),
		"apps/jsonnet-f/main.jsonnet":            "local u = import '../../lib/util.libsonnet';\n{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'f' }, data: { n: u.n } }\n",
		"lib/util.libsonnet":                     "{ n: '0' }\n",
		"docs/guide.md":                          "guide\n",
		"apps/kust-c/notes/unreferenced.yaml":    cm("unreferenced", 0),
		"bases/web/unlisted.yaml":                cm("unlisted", 0),
		"charts/lib/README.md":                   "lib\n",
		"apps/jsonnet-f/README.md":               "f\n",
		"apps/plain-g/x/y/deeper.yaml":           cm("g-deeper", 0),
		"apps/chart-d/templates/NOTES.txt":       "notes\n",
		"apps/plain-a/.hidden/ignored.yaml":      cm("hidden", 0),
		"apps/kust-b/unused/unused.yaml":         cm("unused", 0),
		"shared/other.yaml":                      cm("other", 0),
		"lib/unused.libsonnet":                   "{}\n",
		"values/other.yaml":                      "m: other\n",
		"bases/web2/extra/ignored.yaml":          cm("ignored", 0),
		"apps/link-e/README.md":                  "e\n",
		"apps/plain-g/.sops.yaml.disabled/x.txt": "x\n",
	}
}

// mutate applies one random change of the kinds a monorepo sees: edits,
// additions, removals, moves and renames, a retargeted symlink, docs.
func mutate(rng *rand.Rand, repo monorepo, step int) string {
	files := slices.Sorted(func(yield func(string) bool) {
		for p := range repo {
			if !yield(p) {
				return
			}
		}
	})
	dirs := []string{"apps/plain-a", "apps/plain-a/sub", "apps/plain-g/x", "apps/plain-g", "bases/web", "bases/web2", "apps/kust-c",
		"apps/kust-c/notes", "charts/lib/templates", "apps/chart-d/templates", "docs", "shared", "apps/kust-b", "apps/link-e"}
	switch rng.IntN(9) {
	case 0, 1: // edit a file (a symlink's target is edited through it)
		p := files[rng.IntN(len(files))]
		if strings.HasPrefix(repo[p], "->") {
			return "skip"
		}
		repo[p] = editContent(p, repo[p], step)
		return "edit " + p
	case 2: // add a manifest
		p := fmt.Sprintf("%s/new-%d.yaml", dirs[rng.IntN(len(dirs))], step)
		repo[p] = cm(fmt.Sprintf("new-%d", step), step)
		return "add " + p
	case 3: // remove a file added before
		for _, p := range files {
			if strings.Contains(p, "/new-") {
				delete(repo, p)
				return "remove " + p
			}
		}
	case 4: // move (rename) a file added before to another folder
		for _, p := range files {
			if strings.Contains(p, "/new-") {
				to := fmt.Sprintf("%s/%s", dirs[rng.IntN(len(dirs))], filepath.Base(p))
				if _, taken := repo[to]; taken {
					return "skip"
				}
				repo[to] = repo[p]
				delete(repo, p)
				return "move " + p + " " + to
			}
		}
	case 5: // retarget the symlinked base
		if repo["apps/link-e/base"] == "->../../bases/web" {
			repo["apps/link-e/base"] = "->../../bases/web2"
		} else {
			repo["apps/link-e/base"] = "->../../bases/web"
		}
		return "retarget apps/link-e/base"
	case 6: // swap the plain folder's symlink target
		if repo["apps/plain-a/link.yaml"] == "->../../shared/cm-shared.yaml" {
			repo["apps/plain-a/link.yaml"] = "->../../shared/other.yaml"
		} else {
			repo["apps/plain-a/link.yaml"] = "->../../shared/cm-shared.yaml"
		}
		return "relink apps/plain-a/link.yaml"
	case 7: // a shared input
		p := []string{"bases/web/cm.yaml", "values/d.yaml", "lib/util.libsonnet", "charts/lib/templates/lib.yaml", "shared/cm-shared.yaml"}[rng.IntN(5)]
		repo[p] = editContent(p, repo[p], step)
		return "edit shared " + p
	case 8: // documentation only
		repo["README.md"] += fmt.Sprintf("line %d\n", step)
		return "edit README.md"
	}
	return "skip"
}

// editContent changes a file so that it stays valid for what reads it.
func editContent(p, old string, step int) string {
	switch {
	case strings.HasSuffix(p, ".yaml") && strings.Contains(old, "kind: ConfigMap"):
		name := strings.TrimSpace(strings.SplitN(strings.SplitN(old, "name: ", 2)[1], "\n", 2)[0])
		return cm(name, step)
	case p == "apps/chart-d/values.yaml":
		return fmt.Sprintf("n: %d\n", step)
	case p == "values/d.yaml" || p == "values/other.yaml":
		return fmt.Sprintf("m: v%d\n", step)
	case p == "lib/util.libsonnet":
		return fmt.Sprintf("{ n: '%d' }\n", step)
	case strings.HasSuffix(p, ".properties"):
		return fmt.Sprintf("n=%d\n", step)
	case strings.HasSuffix(p, ".md") || strings.HasSuffix(p, ".txt") || strings.HasSuffix(p, ".libsonnet"):
		return old + fmt.Sprintf("// %d\n", step)
	}
	return old // kustomizations, charts, jsonnet: kept valid as they are
}

// write makes dir hold exactly repo (besides .git).
func write(t *testing.T, dir string, repo monorepo) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != ".git" {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	for p, content := range repo {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			err = os.Symlink(target, full)
		} else {
			err = os.WriteFile(full, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// outcome is a render's observable result: its objects and warnings, or
// its error.
func outcome(res *render.Result, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	data, jerr := json.Marshal(struct {
		Objects  any
		Warnings []string
	}{res.Objects, res.Warnings})
	if jerr != nil {
		return "error: " + jerr.Error()
	}
	return string(data)
}

// keyed is what the controller keeps of an Application's last render.
type keyed struct {
	inputs  []readset.Input
	values  []string
	outcome string
}

// TestSkippingIsExact: on a fixture monorepo given random commits (edits,
// additions, removals, moves, symlinks retargeted, shared bases, a Helm
// file:// dependency, Jsonnet imports, docs), reusing an Application's
// last render whenever the values of the inputs it read are unchanged
// gives, at every commit, exactly what a full render gives: the same
// objects byte for byte, the same warnings, the same error.
func TestSkippingIsExact(t *testing.T) {
	dir := t.TempDir()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	model := initialRepo()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("READSET_SEED"); s != "" {
		_, _ = fmt.Sscan(s, &seed)
	}
	t.Logf("seed %d (READSET_SEED=%d reproduces)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	last := map[string]keyed{}
	var reused, rendered, changedRenders int
	for step := range 80 {
		change := "initial"
		if step > 0 {
			change = mutate(rng, model, step)
			if rng.IntN(3) == 0 {
				change += "; " + mutate(rng, model, step)
			}
		}
		write(t, dir, model)
		if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
			t.Fatal(err)
		}
		hash, err := wt.Commit(fmt.Sprintf("step %d: %s", step, change), &git.CommitOptions{All: true, AllowEmptyCommits: true,
			Author: &object.Signature{Name: "Dana", Email: "dana@example.com", When: time.Unix(int64(step), 0)}})
		if err != nil {
			t.Fatal(err)
		}
		if st, err := wt.Status(); err != nil || !st.IsClean() {
			t.Fatalf("step %d: the worktree is not the commit: %v %v", step, st, err)
		}
		commit, err := repo.CommitObject(hash)
		if err != nil {
			t.Fatal(err)
		}
		for _, app := range fixtureApps {
			opts := app.opts
			opts.Root = dir
			res, rerr := render.Render(t.Context(), opts)
			full := outcome(res, rerr)
			prev, had := last[app.name]
			if had && prev.inputs != nil {
				values, err := readset.Values(repo.Storer, commit, prev.inputs)
				if err == nil && slices.Equal(values, prev.values) {
					reused++
					if prev.outcome != full {
						t.Fatalf("step %d (%s): %s reused its render (inputs %v unchanged) but a full render differs:\nreused: %s\nfull:   %s",
							step, change, app.name, paths(prev.inputs), prev.outcome, full)
					}
					continue
				}
			}
			rendered++
			if had && prev.outcome != full {
				changedRenders++
			}
			if rerr != nil {
				delete(last, app.name) // a failed render is not kept
				continue
			}
			if res.Inputs == nil {
				t.Fatalf("step %d: %s: the render reported no inputs", step, app.name)
			}
			values, err := readset.Values(repo.Storer, commit, res.Inputs)
			if err != nil {
				t.Fatalf("step %d: %s: %v", step, app.name, err)
			}
			last[app.name] = keyed{inputs: res.Inputs, values: values, outcome: full}
		}
	}
	t.Logf("%d renders reused, %d rendered (%d with a different result)", reused, rendered, changedRenders)
	if reused < 200 || changedRenders < 20 {
		t.Fatalf("the random commits exercised too little: %d reused, %d changed renders", reused, changedRenders)
	}
}

func paths(inputs []readset.Input) []string {
	out := make([]string, 0, len(inputs))
	for _, in := range inputs {
		out = append(out, in.Path+"("+string(in.Access)+")")
	}
	sort.Strings(out)
	return out
}
