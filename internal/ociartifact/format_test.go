package ociartifact

import (
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestConfigIsFluxs(t *testing.T) {
	// The digest of the config blob flux push artifact writes (flux2 with
	// go-containerregistry v0.21.6).
	const want = "sha256:5b943e2b943f6c81dbbd4e2eca5121f4fcc39139e3d1219d6d89bd925b77d9fe"
	if got := digest.FromBytes(emptyConfig).String(); got != want || len(emptyConfig) != 115 {
		t.Errorf("config %s (%d bytes), want Flux's %s (115 bytes)", got, len(emptyConfig), want)
	}
}

func TestParseRevisionAndRanges(t *testing.T) {
	d := "sha256:" + "ab0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"[:64]
	for rev, want := range map[string]string{"latest@" + d: "latest", d: "", "v1@" + d: "v1"} {
		tag, got, err := ParseRevision(rev)
		if err != nil || tag != want || got != d {
			t.Errorf("ParseRevision(%q) = %q %q %v", rev, tag, got, err)
		}
	}
	for _, bad := range []string{"latest", "latest@sha256:abc", "@", ""} {
		if _, _, err := ParseRevision(bad); err == nil {
			t.Errorf("ParseRevision(%q) accepted", bad)
		}
	}
	for target, want := range map[string]bool{"1.x": true, "^1.2": true, ">=1 <2": true, "1.2.*": true, "~1.2.3": true,
		"1.2.3": false, "v1": false, "latest": false, "main": false, "x": false} {
		if got := IsRange(target); got != want {
			t.Errorf("IsRange(%q) = %v, want %v", target, got, want)
		}
	}
}
