package forge

import (
	"testing"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

func TestCommitURL(t *testing.T) {
	sha := "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct{ provider, repo, want string }{
		{kv1.ForgeGitHub, "https://github.com/o/r.git", "https://github.com/o/r/commit/" + sha},
		{kv1.ForgeGitLab, "git@gitlab.com:g/sub/r.git", "https://gitlab.com/g/sub/r/-/commit/" + sha},
		{kv1.ForgeGitea, "http://127.0.0.1:3000/o/r", "http://127.0.0.1:3000/o/r/commit/" + sha},
		{kv1.ForgeForgejo, "ssh://git@codeberg.org:2222/o/r.git", "https://codeberg.org/o/r/commit/" + sha},
		{"", "https://git.example.com/o/r", ""},
		{kv1.ForgeGitHub, "https://github.com/o/\"><script>", ""},
		{kv1.ForgeGitHub, "javascript:alert(1)//github.com/o/r", ""},
	} {
		if got := CommitURL(tc.provider, tc.repo, sha); got != tc.want {
			t.Errorf("CommitURL(%q, %q) = %q, want %q", tc.provider, tc.repo, got, tc.want)
		}
	}
	if got := CommitURL(kv1.ForgeGitHub, "https://github.com/o/r", "main"); got != "" {
		t.Errorf("a branch name got a commit link: %q", got)
	}
}

func TestProviderOf(t *testing.T) {
	app := &kv1.Application{Spec: kv1.ApplicationSpec{Source: kv1.ApplicationSource{RepoURL: "https://GitHub.com/o/r"}}}
	if got := ProviderOf(app); got != kv1.ForgeGitHub {
		t.Errorf("github.com: %q", got)
	}
	app.Spec.Source.RepoURL = "https://git.example.com/o/r"
	if got := ProviderOf(app); got != "" {
		t.Errorf("unknown host: %q", got)
	}
	app.Spec.CommitStatus = &kv1.CommitStatus{Provider: kv1.ForgeGitea}
	if got := ProviderOf(app); got != kv1.ForgeGitea {
		t.Errorf("commitStatus.provider: %q", got)
	}
}
