package preview_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyless-cd/keyless/internal/preview"
	"github.com/keyless-cd/keyless/internal/renderproc"
)

// repoURL is the origin remote of every test repository.
const repoURL = "https://git.example.com/team/apps.git"

// testRepo is a Git checkout made with the git CLI, as a CI job has one.
type testRepo struct {
	t   *testing.T
	dir string
}

func newRepo(t *testing.T, files map[string]string) *testRepo {
	t.Helper()
	r := &testRepo{t: t, dir: t.TempDir()}
	r.git("init", "-q", "-b", "main")
	r.git("remote", "add", "origin", "https://ci-token:secret@git.example.com/team/apps")
	r.commit("base", files)
	return r
}

func (r *testRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Ada", "GIT_AUTHOR_EMAIL=ada@example.com",
		"GIT_COMMITTER_NAME=Ada", "GIT_COMMITTER_EMAIL=ada@example.com", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files ("" deletes one) and commits them.
func (r *testRepo) commit(msg string, files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.dir, name)
		if content == "" {
			if err := os.Remove(p); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.git("add", "-A")
	r.git("commit", "-q", "--allow-empty", "-m", msg)
	return r.git("rev-parse", "HEAD")
}

// run previews base → HEAD with the controller's renderer.
func (r *testRepo) run(base string, files ...string) *preview.Report {
	r.t.Helper()
	rep, err := r.tryRun(base, files...)
	if err != nil {
		r.t.Fatal(err)
	}
	return rep
}

func (r *testRepo) tryRun(base string, files ...string) (*preview.Report, error) {
	runner, err := renderproc.New(renderproc.Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	return preview.Run(r.t.Context(), preview.Options{Dir: r.dir, Base: base, Files: files, Renderer: runner})
}

func app(t *testing.T, rep *preview.Report, key string) preview.AppReport {
	t.Helper()
	for _, a := range rep.Applications {
		if a.Application == key {
			return a
		}
	}
	t.Fatalf("Application %s not previewed; report: %+v", key, rep)
	return preview.AppReport{}
}

func changeOf(t *testing.T, a preview.AppReport, kind, name string) preview.Change {
	t.Helper()
	for _, c := range a.Changes {
		if c.Kind == kind && c.Name == name && !c.Manifest {
			return c
		}
	}
	t.Fatalf("no change of %s/%s in %s: %+v", kind, name, a.Application, a.Changes)
	return preview.Change{}
}

// webApp is a keyless Application deploying deploy/web from the test
// repository into team-a.
const webApp = `apiVersion: keyless.dev/v1alpha1
kind: Application
metadata:
  name: web
  namespace: team-a
spec:
  source:
    repoURL: ` + repoURL + `
    targetRevision: main
    path: deploy/web
  syncPolicy:
    automated:
      prune: true
`

func configMap(name, color string) string {
	return `apiVersion: v1
kind: ConfigMap
metadata:
  name: ` + name + `
data:
  color: ` + color + `
`
}

func secret(password string) string {
	return `apiVersion: v1
kind: Secret
metadata:
  name: db
stringData:
  password: ` + password + `
  user: admin
`
}
