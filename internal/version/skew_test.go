package version

import (
	"strings"
	"testing"
)

func TestSkew(t *testing.T) {
	for _, tc := range []struct {
		client, other string
		want          string // "" or a part of the warning
	}{
		{"v1.2.3", "v1.2.3", ""},
		{"v1.2.3", "v1.2.0", ""}, // patch releases mix
		{"v1.2.3", "", ""},       // unknown: nothing to compare
		{"v1.3.0", "v1.2.9", "the client is newer"},
		{"v1.2.0", "v1.3.0", "the controller is newer: use the CLI of version v1.3.0"},
		{"v2.0.0", "v1.9.0", "different minor releases"},
		{"devel", "v1.2.3", "the client is a development build"},
		{"v1.2.3", "devel", "the controller is a development build"},
		{"devel", "abc123-dirty", "development builds of different versions"},
		{"devel", "devel", ""},
	} {
		got := Skew(tc.client, "controller", tc.other)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("Skew(%q, %q) = %q, want %q", tc.client, tc.other, got, tc.want)
		}
	}
}
