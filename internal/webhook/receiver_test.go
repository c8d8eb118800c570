package webhook

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestReceiverServeHTTP drives the receiver as a forge would: only a signed
// POST of a push to a known forge and managed namespace reaches Trigger,
// once per delivery; everything else gets the status a forge shows its user.
func TestReceiverServeHTTP(t *testing.T) {
	var triggered []string
	var keyCalls atomic.Int64
	r := attackReceiver(&triggered, &keyCalls)
	push := `{"ref":"refs/heads/main","repository":{"clone_url":"https://github.com/team-a/web.git"}}`
	do := func(method, path, body string, headers map[string]string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		return rec
	}
	github := func(body, sig, event, delivery string) map[string]string {
		return map[string]string{"X-Hub-Signature-256": sig, "X-GitHub-Event": event, "X-GitHub-Delivery": delivery}
	}

	large := string(bytes.Repeat([]byte("x"), MaxBody+1))
	for name, tc := range map[string]struct {
		method, path, body string
		headers            map[string]string
		want               int
	}{
		"GET":                       {http.MethodGet, "/hooks/github", "", nil, http.StatusMethodNotAllowed},
		"unknown forge":             {http.MethodPost, "/hooks/bitbucket", push, nil, http.StatusNotFound},
		"unmanaged namespace":       {http.MethodPost, "/hooks/github/kube-system", push, github(push, signGitHub(push), "push", "1"), http.StatusUnauthorized},
		"a namespace without a key": {http.MethodPost, "/hooks/gitlab/team-b", push, nil, http.StatusUnauthorized},
		"no signature":              {http.MethodPost, "/hooks/github", push, nil, http.StatusUnauthorized},
		"bad signature":             {http.MethodPost, "/hooks/github", push, github(push, signGitHub(push+" "), "push", "2"), http.StatusUnauthorized},
		"bad GitLab token":          {http.MethodPost, "/hooks/gitlab", push, map[string]string{"X-Gitlab-Token": "wrong", "X-Gitlab-Event": "Push Hook"}, http.StatusUnauthorized},
		"body too large":            {http.MethodPost, "/hooks/github", large, github(large, signGitHub(large), "push", "6"), http.StatusRequestEntityTooLarge},
		"malformed push":            {http.MethodPost, "/hooks/github", `{"ref":`, github(`{"ref":`, signGitHub(`{"ref":`), "push", "3"), http.StatusBadRequest},
		"ping":                      {http.MethodPost, "/hooks/github", `{"zen":"x"}`, github(`{"zen":"x"}`, signGitHub(`{"zen":"x"}`), "ping", "4"), http.StatusNoContent},
	} {
		if got := do(tc.method, tc.path, tc.body, tc.headers).Code; got != tc.want {
			t.Errorf("%s: status %d, want %d", name, got, tc.want)
		}
	}
	if len(triggered) != 0 {
		t.Fatalf("refused requests triggered: %v", triggered)
	}

	rec := do(http.MethodPost, "/hooks/github/team-a", push, github(push, signGitHub(push), "push", "5"))
	if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != `{"triggered":1}` {
		t.Fatalf("signed push: %d %s", rec.Code, rec.Body.String())
	}
	rec = do(http.MethodPost, "/hooks/github/team-a", push, github(push, signGitHub(push), "push", "5"))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"duplicate":true`) {
		t.Fatalf("redelivered push: %d %s", rec.Code, rec.Body.String())
	}
	gl := `{"object_kind":"push","ref":"refs/heads/main","project":{"git_http_url":"https://gitlab.com/team-a/web.git"}}`
	if rec := do(http.MethodPost, "/hooks/gitlab", gl, map[string]string{"X-Gitlab-Token": attackGitLabToken, "X-Gitlab-Event": "Push Hook"}); rec.Code != http.StatusOK {
		t.Fatalf("GitLab push: %d %s", rec.Code, rec.Body.String())
	}
	if want := []string{"team-a refs/heads/main", " refs/heads/main"}; strings.Join(triggered, "|") != strings.Join(want, "|") {
		t.Errorf("triggered %q, want %q", triggered, want)
	}
}
