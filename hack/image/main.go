// Command image builds keyless's controller image without a container
// engine: a static keyless binary per platform (CGO_ENABLED=0, -trimpath),
// one layer holding it, a non-root numeric user, no shell; an OCI image
// index for linux/amd64 and linux/arm64, written as an OCI layout or pushed
// to a registry. It uses go-containerregistry (the library under crane and
// ko) rather than ko itself, so the image's exact contents — one file, an
// /etc/passwd line, fixed timestamps — are written here, and two builds of
// one commit give the same digest.
//
//	go run ./hack/image --out bin/image                      # OCI layout
//	go run ./hack/image --push 127.0.0.1:5000/keyless:dev     # to a registry
//	go run ./hack/image --out dist/image --binaries linux/amd64=dist/keyless  # prebuilt (make release)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	var o Options
	var platforms, binaries string
	flag.StringVar(&o.Out, "out", "", "write an OCI image layout to this folder")
	flag.StringVar(&o.Push, "push", "", "push to this reference (host:port/name[:tag]); plain HTTP only for loopback registries")
	flag.StringVar(&platforms, "platforms", "linux/amd64,linux/arm64", "comma-separated os/arch list")
	flag.StringVar(&o.Version, "version", "", "version stamped into the binary and the image (default: git describe)")
	flag.StringVar(&o.Revision, "revision", "", "source revision for the image annotations (default: git rev-parse HEAD)")
	flag.StringVar(&o.Source, "source", "https://github.com/keyless-cd/keyless", "source repository for the image annotations")
	flag.StringVar(&o.Module, "dir", ".", "the keyless module's folder")
	flag.StringVar(&binaries, "binaries", "", "prebuilt binaries instead of compiling: comma-separated os/arch=PATH (make release passes its own)")
	flag.Parse()
	o.Platforms = strings.Split(platforms, ",")
	if binaries != "" {
		o.Binaries = map[string]string{}
		for _, kv := range strings.Split(binaries, ",") {
			p, path, ok := strings.Cut(kv, "=")
			if !ok {
				fmt.Fprintf(os.Stderr, "image: --binaries %s: want os/arch=PATH\n", kv)
				os.Exit(2)
			}
			o.Binaries[p] = path
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM) //nolint:forbidigo // the process entry point
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o Options) error {
	if o.Out == "" && o.Push == "" {
		return errors.New("give --out DIR (an OCI layout) or --push REF")
	}
	idx, err := Build(ctx, o, os.Stderr)
	if err != nil {
		return err
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	if o.Out != "" {
		if err := WriteLayout(o.Out, idx); err != nil {
			return err
		}
		fmt.Printf("%s@%s\n", o.Out, digest)
	}
	if o.Push != "" {
		ref, err := Push(ctx, o.Push, idx)
		if err != nil {
			return err
		}
		fmt.Println(ref)
	}
	return nil
}
