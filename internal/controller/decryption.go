package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/credential"
	"github.com/keyless-cd/keyless/internal/render"
	"github.com/keyless-cd/keyless/internal/sopsfile"
)

// decryptionKeys reads the key entries of app's spec.decryption Secret, in
// the Application's own namespace (nil when the Application decrypts
// nothing). The keys go to the render process in memory and are kept
// nowhere; errors name the Secret, never a key.
func (r *ApplicationReconciler) decryptionKeys(ctx context.Context, app *kv1.Application) (*render.Decryption, error) {
	d := app.Spec.Decryption
	if d == nil {
		return nil, nil
	}
	field := "spec.decryption.secretRef"
	s := &corev1.Secret{}
	if err := r.apiReader.Get(ctx, client.ObjectKey{Namespace: app.Namespace, Name: d.SecretRef.Name}, s); err != nil {
		return nil, &decryptionSecretError{fmt.Errorf("reading decryption Secret %s/%s (%s): %w", app.Namespace, d.SecretRef.Name, field, err)}
	}
	if err := credential.Readable(s, field); err != nil {
		return nil, &decryptionSecretError{err}
	}
	keys := map[string][]byte{}
	for name, v := range s.Data {
		if strings.HasSuffix(name, sopsfile.AgeKeySuffix) || strings.HasSuffix(name, sopsfile.PGPKeySuffix) {
			keys[name] = v
		}
	}
	if len(keys) == 0 {
		return nil, &decryptionSecretError{fmt.Errorf("decryption Secret %s/%s (%s) has no key ending in %s or %s: %w",
			app.Namespace, d.SecretRef.Name, field, sopsfile.AgeKeySuffix, sopsfile.PGPKeySuffix, sopsfile.ErrKeys)}
	}
	return &render.Decryption{Keys: keys}, nil
}

// decryptionSecretError: the decryption Secret could not be read; it
// counts as a decryption failure (errors.Is render.ErrDecryption).
type decryptionSecretError struct{ err error }

func (e *decryptionSecretError) Error() string   { return e.err.Error() }
func (e *decryptionSecretError) Unwrap() []error { return []error{e.err, render.ErrDecryption} }

// renderFailureReason is DecryptionFailed for a decryption error, else
// RenderFailed.
func renderFailureReason(err error) string {
	if errors.Is(err, render.ErrDecryption) {
		return ReasonDecryptionFailed
	}
	return ReasonRenderFailed
}
