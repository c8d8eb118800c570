// Command release builds a keyless release into dist/ and, as a separate
// step, publishes its image and chart, so CI can build (a dry run) without
// pushing anything:
//
//	go run ./hack/release --version v1.2.3                # make release VERSION=v1.2.3
//	go run ./hack/release --version v1.2.3 --publish      # make release-publish VERSION=v1.2.3
//
// The build writes, for each platform (linux and darwin on amd64 and arm64
// unless --platforms says otherwise), keyless-OS-ARCH.tar.gz (one file,
// keyless, compiled with CGO_ENABLED=0 -trimpath -buildvcs=false and
// -ldflags "-s -w -buildid= -X …version.version=VERSION") and its CycloneDX
// SBOM keyless-OS-ARCH.cdx.json (cyclonedx-gomod, from the binary's build
// information); the controller image of the linux binaries as an OCI layout
// in image/ (hack/image, with these very binaries) and its reference by
// digest in image.txt; the Helm chart charts/keyless packaged as
// keyless-X.Y.Z.tgz when that folder exists; and checksums.txt (sha256sum
// -c reads it) over every file beside it. Timestamps come from the commit
// (SOURCE_DATE_EPOCH when set), so two builds of one commit are identical.
//
// Publishing pushes image/ to REGISTRY/keyless:VERSION (checking the
// registry then serves the digest image.txt recorded) and the chart to
// oci://REGISTRY/charts, and records the chart's digest in chart.txt.
// Uploading the archives is the CI platform's own step (gh release, GitLab
// releases): see .github/workflows/release.yml and .gitlab-ci.yml.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	o := Options{Progress: os.Stderr}
	var platforms string
	var publish bool
	flag.StringVar(&o.Version, "version", "", "the release version, a tag vX.Y.Z[-pre] (required)")
	flag.StringVar(&o.Dist, "dist", "dist", "the folder the release is written to (emptied first) and published from")
	flag.StringVar(&platforms, "platforms", strings.Join(DefaultPlatforms, ","), "comma-separated os/arch list (the image holds the linux ones)")
	flag.StringVar(&o.Registry, "registry", DefaultRegistry, "where the image (REGISTRY/keyless) and the chart (oci://REGISTRY/charts) are published")
	flag.StringVar(&o.Chart, "chart", DefaultChart, "the Helm chart's folder, relative to --dir; packaged when it exists")
	flag.StringVar(&o.SBOMTool, "sbom-tool", "bin/tools/cyclonedx-gomod", "the cyclonedx-gomod binary (make builds it from hack/sbom/go.mod)")
	flag.StringVar(&o.Revision, "revision", "", "source revision for the image annotations (default: git rev-parse HEAD)")
	flag.StringVar(&o.Module, "dir", ".", "the keyless module's folder")
	flag.BoolVar(&publish, "publish", false, "publish the release in --dist (push the image and the chart) instead of building it")
	flag.Parse()
	o.Platforms = strings.Split(platforms, ",")
	o.Username, o.Password = os.Getenv(UserEnv), os.Getenv(PasswordEnv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM) //nolint:forbidigo // the process entry point
	defer stop()
	var err error
	if publish {
		var p *Published
		if p, err = Publish(ctx, o); err == nil {
			fmt.Println(p.Image)
			if p.Chart != "" {
				fmt.Println(p.Chart)
			}
		}
	} else {
		var m *Manifest
		if m, err = Build(ctx, o); err == nil {
			fmt.Printf("%s\nrelease %s written to %s (checksums.txt)\n", m.Image, o.Version, o.Dist)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}
