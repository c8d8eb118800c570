package forge

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/egress"
)

const sha = "0123456789abcdef0123456789abcdef01234567"

// recorded is one request as a forge's API would receive it.
type recorded struct {
	method, path, rawPath string
	header                http.Header
	body                  map[string]any
}

// forgeAPI answers like the documented endpoints: 201 with the status
// object (GitHub and Gitea "Create a commit status", GitLab "Set the
// pipeline status of a commit").
func forgeAPI(t *testing.T, code int) (*httptest.Server, *[]recorded) {
	t.Helper()
	var got []recorded
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec := recorded{method: r.Method, path: r.URL.Path, rawPath: r.URL.EscapedPath(), header: r.Header.Clone()}
		_ = json.Unmarshal(b, &rec.body)
		got = append(got, rec)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(`{"id":1,"message":"token has no permission"}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

func newClient(t *testing.T, provider, repoURL, apiURL string) *Client {
	t.Helper()
	c, err := New(Options{Provider: provider, RepoURL: repoURL, APIURL: apiURL, Token: "s3cr3t",
		AllowInsecureHTTP: true, HTTP: egress.NewClient(egress.Options{AllowLoopback: true})})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSetStatusRequestShapes(t *testing.T) {
	long := strings.Repeat("é", 200)
	cases := map[string]struct {
		provider, repo, apiPath string
		wantRawPath             string
		wantHeader              map[string]string
		wantBody                map[string]any
	}{
		// https://docs.gitea.com/api/1.26/#tag/repository/operation/repoCreateStatus
		"gitea": {kv1.ForgeGitea, "/team-a/web.git", "/api/v1", "/api/v1/repos/team-a/web/statuses/" + sha,
			map[string]string{"Authorization": "token s3cr3t"},
			map[string]any{"state": "failure", "context": "keyless/team-a/web", "target_url": "https://ui.example/app", "description": strings.Repeat("é", 139) + "…"}},
		"forgejo": {kv1.ForgeForgejo, "/team-a/web", "/api/v1", "/api/v1/repos/team-a/web/statuses/" + sha,
			map[string]string{"Authorization": "token s3cr3t"},
			map[string]any{"state": "failure", "context": "keyless/team-a/web"}},
		// https://docs.github.com/en/rest/commits/statuses#create-a-commit-status
		"github enterprise": {kv1.ForgeGitHub, "/team-a/web.git", "/api/v3", "/api/v3/repos/team-a/web/statuses/" + sha,
			map[string]string{"Authorization": "Bearer s3cr3t", "Accept": "application/vnd.github+json", "X-Github-Api-Version": "2022-11-28"},
			map[string]any{"state": "failure", "context": "keyless/team-a/web"}},
		// https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit
		"gitlab subgroup": {kv1.ForgeGitLab, "/group/sub/web.git", "/api/v4", "/api/v4/projects/group%2Fsub%2Fweb/statuses/" + sha,
			map[string]string{"Private-Token": "s3cr3t"},
			map[string]any{"state": "failed", "name": "keyless/team-a/web"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv, got := forgeAPI(t, http.StatusCreated)
			c := newClient(t, tc.provider, srv.URL+tc.repo, srv.URL+tc.apiPath)
			err := c.Set(t.Context(), Status{SHA: sha, State: StateFailure, Context: "keyless/team-a/web", Description: long, TargetURL: "https://ui.example/app"})
			if err != nil {
				t.Fatal(err)
			}
			if len(*got) != 1 {
				t.Fatalf("%d requests, want 1", len(*got))
			}
			r := (*got)[0]
			if r.method != http.MethodPost || r.rawPath != tc.wantRawPath {
				t.Errorf("request %s %s, want POST %s", r.method, r.rawPath, tc.wantRawPath)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			for k, v := range tc.wantHeader {
				if r.header.Get(k) != v {
					t.Errorf("header %s = %q, want %q", k, r.header.Get(k), v)
				}
			}
			for k, v := range tc.wantBody {
				if r.body[k] != v {
					t.Errorf("body %s = %v, want %v", k, r.body[k], v)
				}
			}
			if d, _ := r.body["description"].(string); len([]rune(d)) > MaxDescription {
				t.Errorf("description has %d characters, the limit is %d", len([]rune(d)), MaxDescription)
			}
		})
	}
}

func TestSetStatusStates(t *testing.T) {
	want := map[string]map[State]string{
		kv1.ForgeGitea:  {StatePending: "pending", StateSuccess: "success", StateFailure: "failure"},
		kv1.ForgeGitHub: {StatePending: "pending", StateSuccess: "success", StateFailure: "failure"},
		kv1.ForgeGitLab: {StatePending: "pending", StateSuccess: "success", StateFailure: "failed"},
	}
	for provider, states := range want {
		for st, w := range states {
			srv, got := forgeAPI(t, http.StatusCreated)
			c := newClient(t, provider, srv.URL+"/o/r", srv.URL+"/api")
			if err := c.Set(t.Context(), Status{SHA: sha, State: st, Context: "c"}); err != nil {
				t.Fatal(err)
			}
			if g := (*got)[0].body["state"]; g != w {
				t.Errorf("%s %s: state %v, want %s", provider, st, g, w)
			}
		}
	}
}

func TestSetStatusRefused(t *testing.T) {
	srv, _ := forgeAPI(t, http.StatusForbidden)
	c := newClient(t, kv1.ForgeGitea, srv.URL+"/o/r", "")
	err := c.Set(t.Context(), Status{SHA: sha, State: StateSuccess, Context: "c"})
	var se *egress.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusForbidden || !se.Permanent() {
		t.Fatalf("err = %v, want a permanent HTTP 403", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("the token leaked into %q", err)
	}
	// The server's answer is a tenant-chosen host's words: it never reaches
	// the Application's Events.
	if strings.Contains(err.Error(), "permission") || se.Body != "" {
		t.Errorf("the forge's answer body is echoed in %q", err)
	}
	if err := c.Set(t.Context(), Status{SHA: "../../admin", State: StateSuccess}); !errors.Is(err, ErrConfig) {
		t.Errorf("a non-SHA revision: err = %v, want ErrConfig", err)
	}
}

func TestNewConfinesTheAPIToTheRepositoryHost(t *testing.T) {
	cases := []struct {
		provider, repo, api string
		ok                  bool
	}{
		{kv1.ForgeGitHub, "https://github.com/o/r.git", "", true},
		{kv1.ForgeGitHub, "git@github.com:o/r.git", "https://api.github.com", true},
		{kv1.ForgeGitea, "ssh://git@gitea.example:2222/o/r.git", "https://gitea.example/api/v1", true},
		{kv1.ForgeGitLab, "https://gitlab.example/g/s/r.git", "", true},
		{kv1.ForgeGitea, "https://gitea.example/o/r.git", "https://evil.example/api/v1", false},
		{kv1.ForgeGitea, "https://gitea.example/o/r.git", "https://gitea.example:8443/api/v1", false},
		{kv1.ForgeGitea, "https://gitea.example:8443/o/r.git", "https://gitea.example/api/v1", false},
		{kv1.ForgeGitea, "https://gitea.example:443/o/r.git", "https://gitea.example/api/v1", true},
		{kv1.ForgeGitea, "https://gitea.example:8443/o/r.git", "https://gitea.example:8443/api/v1", true},
		{kv1.ForgeGitLab, "https://gitlab.example/o/r.git", "https://api.github.com", false},
		{kv1.ForgeGitea, "https://gitea.example/o/r.git", "http://gitea.example/api/v1", false},
		{kv1.ForgeGitea, "https://gitea.example/o/r.git", "https://user:pw@gitea.example/api/v1", false},
		{kv1.ForgeGitea, "https://gitea.example/only-one", "", false},
		{kv1.ForgeGitea, "https://gitea.example/o/../r", "", false},
		{"bitbucket", "https://gitea.example/o/r", "", false},
	}
	for _, tc := range cases {
		_, err := New(Options{Provider: tc.provider, RepoURL: tc.repo, APIURL: tc.api, HTTP: http.DefaultClient})
		if (err == nil) != tc.ok {
			t.Errorf("%s %s api %q: err = %v, want ok=%v", tc.provider, tc.repo, tc.api, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v is not ErrConfig", tc.repo, err)
		}
	}
}

func TestDefaultAPIURL(t *testing.T) {
	cases := map[string]string{
		kv1.ForgeGitHub + " https://github.com/o/r":       "https://api.github.com",
		kv1.ForgeGitHub + " https://ghe.corp/o/r":         "https://ghe.corp/api/v3",
		kv1.ForgeGitLab + " git@gitlab.corp:g/r.git":      "https://gitlab.corp/api/v4",
		kv1.ForgeGitea + " http://127.0.0.1:3000/o/r.git": "http://127.0.0.1:3000/api/v1",
		kv1.ForgeGitea + " ssh://git@gitea:2222/o/r.git":  "https://gitea/api/v1",
	}
	for in, want := range cases {
		provider, repo, _ := strings.Cut(in, " ")
		r, err := parseRepoURL(repo)
		if err != nil {
			t.Fatal(err)
		}
		got, err := defaultAPIURL(provider, r)
		if err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", in, got, err, want)
		}
	}
}

func FuzzParseRepoURL(f *testing.F) {
	for _, s := range []string{"https://h/o/r.git", "git@h:o/r", "ssh://git@h:22/g/s/r", "https://h/o/../r", "x@y:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r, err := parseRepoURL(raw)
		if err != nil {
			return
		}
		for _, s := range strings.Split(r.path, "/") {
			if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "?#%\\ ") {
				t.Fatalf("%q: unsafe path element %q in %q", raw, s, r.path)
			}
		}
	})
}
