// Package gobuild builds the keyless binary reproducibly, for hack/image
// and hack/release: one definition of the release's build flags and of the
// time stamped into archives, images and charts.
package gobuild

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	kversion "github.com/keyless-cd/keyless/internal/version"
)

// VersionVar is the linker variable `keyless version` prints.
const VersionVar = "github.com/keyless-cd/keyless/internal/version.version"

// Keyless compiles ./cmd/keyless of the module in dir for goos/goarch into
// out: with version.BuildTags, static (CGO_ENABLED=0), without file paths (-trimpath), VCS stamp
// (-buildvcs=false) or build ID, stripped (-s -w), version stamped — the
// same bytes from the same tree.
func Keyless(ctx context.Context, dir, goos, goarch, version, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-tags", kversion.BuildTags,
		"-ldflags", "-s -w -buildid= -X "+VersionVar+"="+version, "-o", out, "./cmd/keyless")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build for %s/%s: %w\n%s", goos, goarch, err, b)
	}
	return nil
}

// SourceDate is SOURCE_DATE_EPOCH, else the time of dir's commit, else the
// epoch: the time on every file of a release.
func SourceDate(ctx context.Context, dir string) time.Time {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		s = Git(ctx, dir, "log", "-1", "--format=%ct")
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC()
	}
	return time.Unix(0, 0).UTC()
}

// Git runs git with args in dir and returns its output trimmed, "" when it
// fails.
func Git(ctx context.Context, dir string, args ...string) string {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	b, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
