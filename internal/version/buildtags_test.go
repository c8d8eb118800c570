package version

import (
	"os"
	"regexp"
	"testing"
)

// TestMakefileBuildTags: make build compiles with the tags the release and
// the benchmarks use.
func TestMakefileBuildTags(t *testing.T) {
	b, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^BUILD_TAGS\s*:?=\s*(\S+)\s*$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("the Makefile sets no BUILD_TAGS")
	}
	if string(m[1]) != BuildTags {
		t.Errorf("Makefile BUILD_TAGS = %s, want %s", m[1], BuildTags)
	}
	if !regexp.MustCompile(`go build -tags \$\(BUILD_TAGS\) -ldflags "\$\(LDFLAGS\)" -o \$\(KEYLESS\) ./cmd/keyless`).Match(b) {
		t.Error("make build does not build bin/keyless with -tags $(BUILD_TAGS)")
	}
}
