package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"testing"
)

func TestNormalizeRepoURL(t *testing.T) {
	const want = "github.com/team-a/web"
	for _, u := range []string{
		"https://github.com/team-a/web.git",
		"https://github.com/team-a/web",
		"https://GitHub.com/team-a/web/",
		"https://ci:token@github.com/team-a/web.git",
		"ssh://git@github.com/team-a/web.git",
		"ssh://git@github.com:22/team-a/web",
		"git@github.com:team-a/web.git",
		"  git@github.com:team-a/web  ",
		"git://github.com/team-a/web.git",
	} {
		if got := NormalizeRepoURL(u); got != want {
			t.Errorf("NormalizeRepoURL(%q) = %q, want %q", u, got, want)
		}
	}
	for _, u := range []string{
		"https://github.com/team-a/web-other.git",
		"https://github.com/team-b/web.git",
		"https://gitlab.com/team-a/web.git",
		"https://github.com/team-a/Web.git", // paths are case-sensitive on most forges
	} {
		if got := NormalizeRepoURL(u); got == want {
			t.Errorf("NormalizeRepoURL(%q) = %q: another repository compares equal", u, got)
		}
	}
}

func TestRefMatches(t *testing.T) {
	for _, tc := range []struct {
		target, ref string
		want        bool
	}{
		{"", "refs/heads/anything", true},
		{"HEAD", "refs/heads/main", true},
		{"main", "refs/heads/main", true},
		{"main", "refs/heads/main2", false},
		{"v1.2.0", "refs/tags/v1.2.0", true},
		{"refs/heads/release", "refs/heads/release", true},
		{"release", "refs/heads/main", false},
	} {
		if got := RefMatches(tc.target, tc.ref); got != tc.want {
			t.Errorf("RefMatches(%q, %q) = %v, want %v", tc.target, tc.ref, got, tc.want)
		}
	}
}

// TestParseGitHub reads the documented push payload (docs.github.com,
// "Webhook events and payloads", push) and ignores other events.
func TestParseGitHub(t *testing.T) {
	body := []byte(`{"ref":"refs/heads/main","before":"0","after":"1","repository":{"clone_url":"https://github.com/team-a/web.git","html_url":"https://github.com/team-a/web","ssh_url":"git@github.com:team-a/web.git","git_url":"git://github.com/team-a/web.git"}}`)
	ev, err := parseGitHub("push", body)
	if err != nil || !ev.IsPush || ev.Ref != "refs/heads/main" || !slices.Contains(ev.RepoURLs, "git@github.com:team-a/web.git") {
		t.Fatalf("push: %+v, %v", ev, err)
	}
	if ev, err := parseGitHub("ping", []byte(`{"zen":"x"}`)); err != nil || ev.IsPush {
		t.Errorf("ping: %+v, %v; want no push and no error", ev, err)
	}
	for name, bad := range map[string]string{"no repository": `{"ref":"refs/heads/main"}`, "no ref": `{"repository":{}}`, "not JSON": `{`} {
		if _, err := parseGitHub("push", []byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestParseGitLab reads the documented push and tag push payloads
// (docs.gitlab.com, "Webhook events": push events, tag events).
func TestParseGitLab(t *testing.T) {
	body := []byte(`{"object_kind":"push","ref":"refs/heads/main","project":{"git_http_url":"https://gitlab.com/team-a/web.git","git_ssh_url":"git@gitlab.com:team-a/web.git","web_url":"https://gitlab.com/team-a/web"}}`)
	ev, err := parseGitLab("Push Hook", body)
	if err != nil || !ev.IsPush || ev.Ref != "refs/heads/main" || !slices.Contains(ev.RepoURLs, "https://gitlab.com/team-a/web.git") {
		t.Fatalf("push: %+v, %v", ev, err)
	}
	tag := []byte(`{"object_kind":"tag_push","ref":"refs/tags/v1","project":{"git_http_url":"https://gitlab.com/team-a/web.git"}}`)
	if ev, err := parseGitLab("Tag Push Hook", tag); err != nil || !ev.IsPush || ev.Ref != "refs/tags/v1" {
		t.Errorf("tag push: %+v, %v", ev, err)
	}
	if ev, err := parseGitLab("Merge Request Hook", []byte(`{"object_kind":"merge_request"}`)); err != nil || ev.IsPush {
		t.Errorf("merge request: %+v, %v; want no push and no error", ev, err)
	}
	if _, err := parseGitLab("Push Hook", []byte(`{"object_kind":"push","ref":"refs/heads/main"}`)); err == nil {
		t.Error("a push without a project was accepted")
	}
}

func TestValidGitHub(t *testing.T) {
	key, body := []byte("0f3c9a1e7b2d4c6a8e0f1b3d5c7a9e2f"), []byte(`{"ref":"refs/heads/main"}`)
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	sig := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if !validGitHub(key, sig, body) {
		t.Fatal("a correct signature was refused")
	}
	for name, tc := range map[string]struct {
		key    []byte
		header string
		body   []byte
	}{
		"other body":      {key, sig, []byte(`{"ref":"refs/heads/evil"}`)},
		"other key":       {[]byte("another-secret-of-enough-length!"), sig, body},
		"sha1 prefix":     {key, "sha1=" + sig[len("sha256="):], body},
		"no key":          {nil, sig, body},
		"not hex":         {key, "sha256=zz", body},
		"empty signature": {key, "", body},
	} {
		if validGitHub(tc.key, tc.header, tc.body) {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzWebhookPayloads feeds crafted bodies to both forges' parsers and the
// URL normaliser: no panic, and a push always carries its ref.
func FuzzWebhookPayloads(f *testing.F) {
	f.Add("push", []byte(`{"ref":"refs/heads/main","repository":{"clone_url":"https://github.com/a/b.git"}}`))
	f.Add("Push Hook", []byte(`{"object_kind":"push","ref":"refs/heads/main","project":{"git_ssh_url":"git@h:a/b.git"}}`))
	f.Add("push", []byte(`{"ref":"x","repository":{"clone_url":"%zz@:/\u0000"}}`))
	f.Fuzz(func(t *testing.T, kind string, body []byte) {
		for _, parse := range []func(string, []byte) (PushEvent, error){parseGitHub, parseGitLab} {
			ev, err := parse(kind, body)
			if err != nil {
				continue
			}
			if ev.IsPush && ev.Ref == "" {
				t.Fatalf("a push without a ref: %+v", ev)
			}
			for _, u := range ev.RepoURLs {
				_ = NormalizeRepoURL(u)
			}
		}
	})
}

func TestCheckSecret(t *testing.T) {
	for secret, ok := range map[string]bool{
		PlaceholderSecret: false,
		"":                false,
		"short":           false,
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": false,
		"abababababababababababababababab":         false,
		"0f3c9a1e7b2d4c6a8e0f1b3d5c7a9e2f":         true,
		"a-webhook-secret-of-some-length":          true,
	} {
		err := CheckSecret([]byte(secret))
		if ok != (err == nil) || (!ok && !errors.Is(err, ErrWeakSecret)) {
			t.Errorf("CheckSecret(%q) = %v, want ok=%v", secret, err, ok)
		}
	}
}

// TestWebhookListenerServesTLS starts the listener with a certificate and
// talks HTTPS to it.
