package preview

import "testing"

func TestSameRepository(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"https://git.example.com/team/apps.git", "https://git.example.com/team/apps", true},
		{"https://git.example.com/team/apps.git", "https://ci-token:secret@git.example.com/team/apps.git", true},
		{"https://git.example.com/team/apps.git", "git@git.example.com:team/apps.git", true},
		{"ssh://git@git.example.com:2222/team/apps.git", "https://GIT.example.com/team/apps/", true},
		{"https://git.example.com/team/apps.git", "https://git.example.com/team/apps2.git", false},
		{"https://git.example.com/team/apps.git", "https://git.example.com/Team/apps.git", false},
		{"https://git.example.com/team/apps.git", "https://evil.example.com/team/apps.git", false},
		{"https://git.example.com/team/apps.git", "https://git.example.com.evil.net/team/apps.git", false},
		{"", "", false},
		{"/srv/git/apps.git", "/srv/git/apps.git", false},
		{"https://git.example.com/", "https://git.example.com/", false},
	} {
		if got := SameRepository(tc.a, tc.b); got != tc.same {
			t.Errorf("SameRepository(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}
