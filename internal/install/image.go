package install

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/keyless-cd/keyless/internal/version"
)

// ErrImageUnresolved is returned (wrapped in an *ImageError) when the image
// of a released keyless cannot be resolved to a digest at its registry.
var ErrImageUnresolved = errors.New("the controller image could not be resolved to a digest")

// ImageError says which image could not be resolved, and what to do.
type ImageError struct {
	// Ref is the tag that was looked up (ImageRepository:VERSION).
	Ref string
	// Err is the registry's answer.
	Err error
}

func (e *ImageError) Error() string {
	return fmt.Sprintf("resolving %s to a digest: %v; pass --image %s@sha256:… (the release's image.txt has it, see docs/install.md) to install without asking the registry",
		e.Ref, e.Err, ImageRepository)
}

// Unwrap makes errors.Is(err, ErrImageUnresolved) and the registry's error
// both match.
func (e *ImageError) Unwrap() []error { return []error{ErrImageUnresolved, e.Err} }

// DigestResolver returns the digest (sha256:…) a registry serves for ref.
type DigestResolver func(ctx context.Context, ref string) (string, error)

// resolveTimeout bounds RegistryDigest.
const resolveTimeout = 30 * time.Second

// RegistryDigest asks ref's registry for the digest of ref (a HEAD of the
// manifest: the multi-arch index's digest), with the Docker credential
// helpers' credentials, within 30 s. A loopback registry is spoken to over
// plain HTTP.
func RegistryDigest(ctx context.Context, ref string) (string, error) {
	var opts []name.Option
	if host := strings.SplitN(ref, "/", 2)[0]; strings.HasPrefix(host, "127.0.0.1:") || strings.HasPrefix(host, "localhost:") {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	desc, err := remote.Head(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return "", err
	}
	return desc.Digest.String(), nil
}

// ControllerImage returns the controller image keyless install deploys and
// says on w what it chose:
//   - image, when given (--image), as given; a warning when it names no digest;
//   - for a released binary (version.IsRelease(binaryVersion)), the image of
//     its own version, ImageRepository:VERSION, resolved to its digest with
//     resolve (ImageRepository:VERSION@sha256:…); an *ImageError when it
//     cannot be, rather than an image that may not be the one released;
//   - for a development build, ImageRepository:latest with a warning: it is
//     not pinned and need not match this binary.
func ControllerImage(ctx context.Context, image, binaryVersion string, resolve DigestResolver, w io.Writer) (string, error) {
	switch {
	case image != "":
		if !strings.Contains(image, "@sha256:") {
			_, _ = fmt.Fprintf(w, "warning: the controller image %s is not pinned by digest; pass --image %s@sha256:…\n", image, ImageRepository)
		}
		return image, nil
	case version.IsRelease(binaryVersion):
		tag := ImageRepository + ":" + binaryVersion
		digest, err := resolve(ctx, tag)
		if err != nil {
			return "", &ImageError{Ref: tag, Err: err}
		}
		ref := tag + "@" + digest
		_, _ = fmt.Fprintf(w, "controller image %s (this keyless's release, resolved at the registry)\n", ref)
		return ref, nil
	default:
		ref := ImageRepository + ":latest"
		_, _ = fmt.Fprintf(w, "warning: keyless %s is a development build: installing %s, which is not pinned by digest and need not be this version; pass --image REF@sha256:… (make image prints it) or install with a released keyless (docs/install.md)\n", binaryVersion, ref)
		return ref, nil
	}
}
