package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/keyless-cd/keyless/internal/version"
)

// TestProductBinaryLinksNoDevMachinery: the keyless binary (and so the
// controller image) carries no local control plane runner, Git test server,
// CI token minter or demo; those are keyless-dev's. Built with its tags,
// it links no Go plugin loader (the standard "plugin" package exports every
// symbol dynamically: version.BuildTags).
func TestProductBinaryLinksNoDevMachinery(t *testing.T) {
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", "-tags", version.BuildTags, ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 {
		t.Fatalf("go list -deps listed only %d packages", len(deps))
	}
	for _, d := range deps {
		if d == "plugin" {
			t.Errorf("cmd/keyless links the standard plugin package (through %s's build tags)", version.BuildTags)
		}
	}
	for _, dev := range []string{"internal/localcluster", "internal/gitserver", "internal/ciissuer", "internal/demo", "internal/devcli"} {
		for _, d := range deps {
			if d == dev || strings.HasSuffix(d, "/keyless/"+dev) || strings.Contains(d, "/keyless/"+dev+"/") {
				t.Errorf("cmd/keyless links %s", d)
			}
		}
	}
}
