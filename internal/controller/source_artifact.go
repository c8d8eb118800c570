package controller

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"oras.land/oras-go/v2/registry/remote"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/credential"
	"github.com/keyless-cd/keyless/internal/helmrepo"
	"github.com/keyless-cd/keyless/internal/ociartifact"
	"github.com/keyless-cd/keyless/internal/readset"
)

// artifactsDir is the folder of unpacked artifacts (by digest) under the
// chart cache.
const artifactsDir = "artifacts"

// artifactSource is a folder from an OCI artifact in Flux's format
// (spec.source.repoURL oci://registry/path without chart), at
// spec.source.targetRevision: a tag, a semver range or a sha256 digest. Its
// revision is tag@sha256:digest (the digest alone when asked by digest),
// as Flux's OCIRepository records it: pinned once resolved, a new digest
// under the tag is a new revision.
type artifactSource struct {
	r     *ApplicationReconciler
	src   kv1.ApplicationSource
	creds *helmrepo.Credentials
	// resolved is the last resolve's answer (its annotations for the
	// provenance of a fetch).
	resolved ociartifact.Resolved
	// root is the unpacked artifact (after fetch).
	root string
	// app is the Application, for its signature rule, read at the first
	// fetch (a pass that fetches nothing reads no verify Secret).
	app *kv1.Application
}

// openArtifact reads the registry credential: a Secret labelled
// keyless.dev/credential: helm (the label of every registry credential) or a
// kubernetes.io/dockerconfigjson Secret, bound to the registry's host.
func (r *ApplicationReconciler) openArtifact(ctx context.Context, app *kv1.Application, src kv1.ApplicationSource, field string) (openSource, error) {
	if r.charts == nil {
		return nil, errors.New("this controller reads no registries")
	}
	a := &artifactSource{r: r, src: src, app: app}
	if ref := src.SecretRef; ref != nil {
		s, err := credential.Get(ctx, r.apiReader, app.Namespace, ref.Name, credential.Helm, field+".secretRef", src.RepoURL, r.allowInsecureHTTP)
		if err != nil {
			return nil, err
		}
		if a.creds, err = helmrepo.CredentialsFromSecret(src.RepoURL, s); err != nil {
			return nil, fmt.Errorf("registry credential %s/%s: %w", app.Namespace, ref.Name, err)
		}
	}
	return a, nil
}

func (a *artifactSource) reason() string { return ReasonArtifactFailed }

// registry runs fn against the artifact's repository under the registry
// client's rules (host-bound credential, egress policy, TLS).
func (a *artifactSource) registry(ctx context.Context, fn func(context.Context, *remote.Repository) error) error {
	return a.r.charts.Registry(ctx, a.src.RepoURL, a.creds, fn)
}

func (a *artifactSource) resolve(ctx context.Context, _ time.Duration) (string, error) {
	err := a.registry(ctx, func(ctx context.Context, repo *remote.Repository) error {
		res, err := ociartifact.Resolve(ctx, repo, a.src.TargetRevision, a.r.artifactLimits)
		a.resolved = res
		return err
	})
	if err != nil {
		return "", err
	}
	return a.resolved.Revision(), nil
}

func (a *artifactSource) fetch(ctx context.Context, revision string) (*provenance, error) {
	_, digest, err := ociartifact.ParseRevision(revision)
	if err != nil {
		return nil, err
	}
	rule, ruleFrom, err := a.r.artifactRule(ctx, a.app)
	if err != nil {
		return nil, &verificationError{err}
	}
	var signer string
	err = a.registry(ctx, func(ctx context.Context, repo *remote.Repository) error {
		if a.resolved.Digest != digest {
			// Another revision than the last resolve's (a revert to the last
			// applied one): its manifest again, by digest.
			res, err := ociartifact.Resolve(ctx, repo, digest, a.r.artifactLimits)
			if err != nil {
				return err
			}
			a.resolved = res
		}
		if rule != nil {
			var err error
			if signer, err = verifyArtifact(ctx, repo, a.resolved, rule, ruleFrom); err != nil {
				return err
			}
		}
		root, err := ociartifact.Fetch(ctx, repo, digest, filepath.Join(a.r.chartCacheDir, artifactsDir), a.r.artifactLimits)
		a.root = root
		return err
	})
	if err != nil {
		return nil, err
	}
	prov := artifactProvenance(a.src.RepoURL, revision, a.resolved.Annotations)
	prov.signer = signer
	return prov, nil
}

// artifactProvenance says where an artifact came from, by its annotations
// (claims of the publisher, shown as such).
func artifactProvenance(repoURL, revision string, ann map[string]string) *provenance {
	msg := fmt.Sprintf("artifact %s %s", repoURL, kv1.ShortSHA(revision))
	if src, rev := ann[ociartifact.AnnotationSource], ann[ociartifact.AnnotationRevision]; src != "" || rev != "" {
		msg += fmt.Sprintf(" (published from %s %s)", src, rev)
	}
	if p := ann[ociartifact.AnnotationPipeline]; p != "" {
		msg += " by " + p
	}
	return &provenance{Message: msg}
}

func (a *artifactSource) checkout(ctx context.Context, revision string) (*checkout, error) {
	if a.root == "" {
		if _, err := a.fetch(ctx, revision); err != nil {
			return nil, err
		}
	}
	return &checkout{Root: a.root, Path: a.src.Path, Release: func() {}}, nil
}

func (*artifactSource) inputValues(string, []readset.Input) ([]string, error) {
	return nil, fmt.Errorf("an artifact is keyed by its digest: %w", readset.ErrNotKeyable)
}

func (*artifactSource) inputValuesOf(string, map[string][]readset.Input) (map[string][]string, error) {
	return nil, fmt.Errorf("an artifact is keyed by its digest: %w", readset.ErrNotKeyable)
}
