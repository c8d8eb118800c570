package engine

import (
	"errors"

	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// ErrDryRun is returned (wrapped) when the server-side dry-run of a set
// fails: nothing was or would be applied.
var ErrDryRun = errors.New("dry-run failed")

// IsPermanent reports errors that retrying cannot fix without a new commit:
// refused or empty sets, objects the API server finds invalid, a failed
// dry-run. A 403 is not one: its fix (granting the deployer's Role a kind)
// happens in the cluster, so it is retried with backoff, as are RBAC changes
// still propagating.
func IsPermanent(err error) bool {
	if err == nil || apierrors.IsForbidden(err) {
		return false
	}
	var dryRun *ssaerrors.DryRunErr
	return errors.Is(err, ErrRefused) || errors.Is(err, ErrEmpty) || errors.Is(err, ErrDryRun) ||
		apierrors.IsInvalid(err) || errors.As(err, &dryRun)
}
