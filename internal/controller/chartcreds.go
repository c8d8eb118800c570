package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/credential"
	"github.com/keyless-cd/keyless/internal/helmrepo"
)

// repositoryCredentials reads the Secrets of spec.source.helm.repositorySecretRefs
// (and, for a chart source, its own secretRef) and returns, for a
// repository URL, the first of them meant for it (labelled for Helm, bound
// to its host; helmrepo.CredentialsFromSecret decides), or nil: anonymous.
// A Secret that cannot be read fails the render, naming it.
func (r *ApplicationReconciler) repositoryCredentials(ctx context.Context, app *kv1.Application) (func(string) *helmrepo.Credentials, error) {
	src := app.Spec.Source
	var refs []string
	if h := src.Helm; h != nil {
		for _, ref := range h.RepositorySecretRefs {
			refs = append(refs, ref.Name)
		}
	}
	if (src.Chart != "" || src.IsArtifact()) && src.SecretRef != nil {
		refs = append(refs, src.SecretRef.Name)
	}
	if len(refs) == 0 {
		return nil, nil
	}
	secrets := make([]*corev1.Secret, 0, len(refs))
	for _, name := range refs {
		s := &corev1.Secret{}
		if err := r.apiReader.Get(ctx, client.ObjectKey{Namespace: app.Namespace, Name: name}, s); err != nil {
			return nil, fmt.Errorf("reading repository credential %s/%s (spec.source.helm.repositorySecretRefs): %w", app.Namespace, name, err)
		}
		if err := credential.Readable(s, "spec.source.helm.repositorySecretRefs"); err != nil {
			return nil, err
		}
		secrets = append(secrets, s)
	}
	return func(repoURL string) *helmrepo.Credentials {
		for _, s := range secrets {
			if c, err := helmrepo.CredentialsFromSecret(repoURL, s); err == nil {
				return c
			}
		}
		return nil
	}, nil
}
