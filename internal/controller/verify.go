package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/credential"
	"github.com/keyless-cd/keyless/internal/gitsource"
)

// verify checks the commit's signature against the keys in the verify
// Secret and returns the signer's key fingerprint.
func (r *ApplicationReconciler) verify(ctx context.Context, app *kv1.Application, commit *gitsource.Commit) (string, error) {
	v := app.Spec.Source.Verify
	s := &corev1.Secret{}
	if err := r.apiReader.Get(ctx, client.ObjectKey{Namespace: app.Namespace, Name: v.SecretRef.Name}, s); err != nil {
		return "", fmt.Errorf("reading trusted keys %s/%s (spec.source.verify.secretRef): %w", app.Namespace, v.SecretRef.Name, err)
	}
	if err := credential.Readable(s, "spec.source.verify.secretRef"); err != nil {
		return "", err
	}
	keys, err := gitsource.ParseTrustedKeys(s.Data)
	if err != nil {
		return "", fmt.Errorf("trusted keys %s/%s: %w", app.Namespace, v.SecretRef.Name, err)
	}
	return commit.Verify(keys)
}
