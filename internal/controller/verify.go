package controller

import (
	"context"
	"errors"
	"fmt"

	"github.com/sigstore/sigstore-go/pkg/root"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/artifactsign"
	"github.com/keyless-cd/keyless/internal/credential"
	"github.com/keyless-cd/keyless/internal/gitsource"
)

// verify checks the commit's signature against the keys in the verify
// Secret (OpenPGP, SSH) or, for a commit signed with gitsign, against
// spec.source.verify.matchIdentities under the trusted root
// (trusted_root.json in the Secret, else --trusted-root), and returns the
// signer: a key fingerprint or the certified identity.
func (r *ApplicationReconciler) verify(ctx context.Context, app *kv1.Application, commit *gitsource.Commit) (string, error) {
	v := app.Spec.Source.Verify
	keys := &gitsource.TrustedKeys{}
	tr := r.trustedRoot
	if v.SecretRef != nil {
		s := &corev1.Secret{}
		if err := r.apiReader.Get(ctx, client.ObjectKey{Namespace: app.Namespace, Name: v.SecretRef.Name}, s); err != nil {
			return "", fmt.Errorf("reading trusted keys %s/%s (spec.source.verify.secretRef): %w", app.Namespace, v.SecretRef.Name, err)
		}
		if err := credential.Readable(s, "spec.source.verify.secretRef"); err != nil {
			return "", err
		}
		var err error
		keys, err = gitsource.ParseTrustedKeys(s.Data)
		switch {
		case errors.Is(err, gitsource.ErrNoTrustedKeys) && len(v.MatchIdentities) > 0:
			keys = &gitsource.TrustedKeys{}
		case err != nil:
			return "", fmt.Errorf("trusted keys %s/%s: %w", app.Namespace, v.SecretRef.Name, err)
		}
		if raw, ok := s.Data[trustedRootFile]; ok {
			if tr, err = root.NewTrustedRootFromJSON(raw); err != nil {
				return "", fmt.Errorf("trusted keys %s/%s, %s: %w", app.Namespace, v.SecretRef.Name, trustedRootFile, err)
			}
		}
	}
	if len(v.MatchIdentities) > 0 {
		if tr == nil {
			return "", fmt.Errorf("spec.source.verify.matchIdentities need a Sigstore trusted root: put %s in the verify Secret, or start the controller with --trusted-root", trustedRootFile)
		}
		keys.Sigstore = &artifactsign.Policy{TrustedRoot: tr, Identities: identitiesOf(v), SkipTransparencyLog: true}
	}
	return commit.Verify(keys)
}
