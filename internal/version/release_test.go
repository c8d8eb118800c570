package version

import "testing"

func TestIsRelease(t *testing.T) {
	for v, want := range map[string]bool{
		"v1.2.3":                               true,
		"v0.1.0":                               true,
		"v1.2.3-rc.1":                          true,
		"v10.20.30-beta2":                      true,
		"1.2.3":                                false, // no v: not a tag make release accepts
		"v1.2":                                 false,
		"v01.2.3":                              false,
		"v1.2.3-4-gabcdef0":                    false, // git describe after a tag
		"v1.2.3-4-gabcdef0-dirty":              false,
		"v0.0.0-20260101000000-abcdef012345":   false, // Go pseudo-version
		"v1.2.4-0.20260101000000-abcdef012345": false,
		"v1.2.3+dirty":                         false,
		"1d9788d-dirty":                        false,
		"devel":                                false,
		"":                                     false,
	} {
		if got := IsRelease(v); got != want {
			t.Errorf("IsRelease(%q) = %v, want %v", v, got, want)
		}
	}
}
