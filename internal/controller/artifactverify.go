package controller

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	corev1 "k8s.io/api/core/v1"
	"oras.land/oras-go/v2/registry/remote"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/artifactsign"
	"github.com/keyless-cd/keyless/internal/credential"
	"github.com/keyless-cd/keyless/internal/ociartifact"
	"github.com/keyless-cd/keyless/internal/oidc"
)

// verificationError is an artifact refused by its signature rule: the
// Application fails with reason VerificationFailed, not as a registry
// failure, and is not retried until the revision or the rule changes.
type verificationError struct{ err error }

func (e *verificationError) Error() string { return e.err.Error() }
func (e *verificationError) Unwrap() error { return e.err }

// trustedRootFile is the key of a verify Secret holding a Sigstore trusted
// root (trusted_root.json, as cosign and Flux name it).
const trustedRootFile = "trusted_root.json"

// artifactRule is the signature rule of an artifact deployed into app's
// namespace and what it comes from (for messages): the controller's trust
// policy when it names pipelines for the namespace (required whatever the
// Application says), else spec.source.verify, else none (nil).
func (r *ApplicationReconciler) artifactRule(ctx context.Context, app *kv1.Application) (*artifactsign.Policy, string, error) {
	if r.trustPolicy != nil {
		ids, _, err := r.trustPolicy.ArtifactIdentities(app.Namespace)
		switch {
		case err == nil:
			if r.trustedRoot == nil {
				return nil, "", errors.New("the trust policy names pipelines for this namespace, but the controller has no --trusted-root to check their certificates against")
			}
			return &artifactsign.Policy{TrustedRoot: r.trustedRoot, Identities: ids, SkipTransparencyLog: r.trustPolicy.SkipTransparencyLog()}, "the trust policy's pipelines for namespace " + app.Namespace, nil
		case !errors.Is(err, oidc.ErrNoArtifactRule) || hasPipelineFor(r.trustPolicy, app.Namespace):
			return nil, "", fmt.Errorf("trust policy: %w", err)
		}
	}
	v := app.Spec.Source.Verify
	if v == nil {
		return nil, "", nil
	}
	p := &artifactsign.Policy{TrustedRoot: r.trustedRoot, SkipTransparencyLog: v.TransparencyLog == kv1.TransparencyLogSkip}
	if v.SecretRef != nil {
		keys, tr, err := r.verifySecret(ctx, app.Namespace, v.SecretRef.Name)
		if err != nil {
			return nil, "", err
		}
		p.Keys = keys
		if tr != nil {
			p.TrustedRoot = tr
		}
	}
	p.Identities = identitiesOf(v)
	if len(p.Identities) == 0 {
		p.TrustedRoot = nil // keys only: a certificate is no key of the Secret
	} else if p.TrustedRoot == nil {
		return nil, "", fmt.Errorf("spec.source.verify.matchIdentities need a Sigstore trusted root: put %s in the verify Secret, or start the controller with --trusted-root", trustedRootFile)
	}
	if len(p.Keys) == 0 && len(p.Identities) == 0 {
		return nil, "", fmt.Errorf("spec.source.verify: the Secret %s/%s holds no *.pub key and there are no matchIdentities", app.Namespace, v.SecretRef.Name)
	}
	return p, "spec.source.verify", nil
}

func hasPipelineFor(p *oidc.FederationPolicy, ns string) bool {
	for _, pl := range p.Pipelines {
		if pl.Namespace == ns {
			return true
		}
	}
	return false
}

// verifySecret reads the trusted keys (*.pub) and trusted root of a verify
// Secret.
func (r *ApplicationReconciler) verifySecret(ctx context.Context, ns, name string) ([]crypto.PublicKey, *root.TrustedRoot, error) {
	s := &corev1.Secret{}
	if err := r.apiReader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		return nil, nil, fmt.Errorf("reading trusted keys %s/%s (spec.source.verify.secretRef): %w", ns, name, err)
	}
	if err := credential.Readable(s, "spec.source.verify.secretRef"); err != nil {
		return nil, nil, err
	}
	names := make([]string, 0, len(s.Data))
	for k := range s.Data {
		names = append(names, k)
	}
	sort.Strings(names)
	var keys []crypto.PublicKey
	for _, k := range names {
		if !strings.HasSuffix(k, ".pub") {
			continue
		}
		pub, err := artifactsign.LoadPublicKey(s.Data[k])
		if err != nil {
			return nil, nil, fmt.Errorf("trusted keys %s/%s, %s: %w", ns, name, k, err)
		}
		keys = append(keys, pub)
	}
	var tr *root.TrustedRoot
	if raw, ok := s.Data[trustedRootFile]; ok {
		var err error
		if tr, err = root.NewTrustedRootFromJSON(raw); err != nil {
			return nil, nil, fmt.Errorf("trusted keys %s/%s, %s: %w", ns, name, trustedRootFile, err)
		}
	}
	return keys, tr, nil
}

// verifyArtifact checks res's signatures against rule before anything of
// it is downloaded, returning the verified signer for history.
func verifyArtifact(ctx context.Context, repo *remote.Repository, res ociartifact.Resolved, rule *artifactsign.Policy, from string) (string, error) {
	subject := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.Digest(res.Digest), Size: res.Size}
	v, err := artifactsign.Verify(ctx, repo, subject, *rule)
	if err != nil {
		return "", &verificationError{fmt.Errorf("artifact %s refused by %s: %w", kv1.ShortSHA(res.Revision()), from, err)}
	}
	return v.String(), nil
}

// identitiesOf are spec.source.verify.matchIdentities as certificate
// identities.
func identitiesOf(v *kv1.VerifySource) []artifactsign.Identity {
	out := make([]artifactsign.Identity, 0, len(v.MatchIdentities))
	for _, id := range v.MatchIdentities {
		out = append(out, artifactsign.Identity{Issuer: id.Issuer, SubjectRegexp: id.Subject,
			SourceRepositoryURI: id.Repository, SourceRepositoryIdentifier: id.RepositoryID, SourceRepositoryRef: id.Ref})
	}
	return out
}
