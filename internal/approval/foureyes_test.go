package approval

import "testing"

func TestIsAuthor(t *testing.T) {
	for _, tc := range []struct {
		user, author string
		want         bool
	}{
		{"alice@example.com", "Alice Doe <alice@example.com>", true},
		{"ALICE@example.com", "Alice Doe <alice@Example.com>", true},
		{"oidc:alice@example.com", "Alice Doe <alice@example.com>", true},
		{"alice", "Alice Doe <alice@example.com>", true},
		{"alice doe", "Alice Doe <alice@example.com>", true},
		{"bob@example.com", "Alice Doe <alice@example.com>", false},
		{"bob", "Alice Doe <alice@example.com>", false},
		{"alice", "", false},
		{"", "Alice <alice@example.com>", false},
		{"system:serviceaccount:team:alice", "Alice <alice@example.com>", false},
		{"ci", "ci <ci@keyless.local>", true},
		{"alice", "alice <not an address", true},
	} {
		if got := IsAuthor(tc.user, tc.author); got != tc.want {
			t.Errorf("IsAuthor(%q, %q) = %v, want %v", tc.user, tc.author, got, tc.want)
		}
	}
}
