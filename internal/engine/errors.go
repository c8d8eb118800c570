package engine

import (
	"errors"
	"fmt"
	"strings"

	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"

	"github.com/keyless-cd/keyless/internal/lifecycle"
)

// ErrDryRun is returned (wrapped) when the server-side dry-run of a set
// fails: nothing was or would be applied.
var ErrDryRun = errors.New("dry-run failed")

// ErrNoNamespace is returned when an apply, diff or guard is given no
// target namespace: keyless writes into exactly one namespace, never a
// default one.
var ErrNoNamespace = errors.New("a target namespace is required (-n/--namespace)")

// IsPermanent reports errors that retrying cannot fix without a new commit:
// refused or empty sets, objects the API server finds invalid, a failed
// dry-run, an immutable change, a failed hook or wave, a bad lifecycle
// annotation. A 403 is not one: its fix (granting the deployer's Role a kind)
// happens in the cluster, so it is retried with backoff, as are RBAC changes
// still propagating.
func IsPermanent(err error) bool {
	if err == nil || apierrors.IsForbidden(err) {
		return false
	}
	var (
		dryRun    *ssaerrors.DryRunErr
		hook      *HookError
		step      *StepError
		immutable *ImmutableError
		annot     *lifecycle.Error
	)
	return errors.Is(err, ErrRefused) || errors.Is(err, ErrEmpty) || errors.Is(err, ErrDryRun) ||
		apierrors.IsInvalid(err) || errors.As(err, &dryRun) || errors.As(err, &hook) || errors.As(err, &step) ||
		errors.As(err, &immutable) || errors.As(err, &annot)
}

// HookError is a hook that failed or did not finish in time: the sync
// stopped there, nothing of later steps was applied, and the SyncFail hooks
// (if any) ran.
type HookError struct {
	Hook  ObjectRef
	Phase lifecycle.Phase
	// Status is the hook's last kstatus and its message.
	Status string
	// SyncFail lists the SyncFail hook runs made after the failure.
	SyncFail []HookRun
}

func (e *HookError) Error() string {
	msg := fmt.Sprintf("%s hook %s failed: %s; later phases were not applied, the last good state keeps running", e.Phase, e.Hook, e.Status)
	if len(e.SyncFail) > 0 {
		ran := make([]string, len(e.SyncFail))
		for i, h := range e.SyncFail {
			ran[i] = h.Ref.String() + " " + string(h.Result)
		}
		msg += "; SyncFail hooks ran: " + strings.Join(ran, ", ")
	}
	return msg
}

// StepError is a wave whose objects did not become healthy: later waves and
// phases were not applied.
type StepError struct {
	Phase lifecycle.Phase
	Wave  int
	Err   error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("%s wave %d did not become healthy, later waves were not applied: %v", e.Phase, e.Wave, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// ImmutableError is a change the API server refused because it touches an
// immutable field (a Job's template, a StatefulSet's selector, …) of an
// object that does not opt into being recreated.
type ImmutableError struct {
	Ref ObjectRef
	Err error
}

func (e *ImmutableError) Error() string {
	return fmt.Sprintf("%s: the change touches an immutable field and the API server refused it: %v; nothing was applied. "+
		"To let keyless delete and recreate this object when that happens, annotate it %s: Replace=true (or %s: Replace=true)",
		e.Ref, e.Err, lifecycle.ArgoSyncOptionsAnnotation, lifecycle.SyncOptionsAnnotation)
}

func (e *ImmutableError) Unwrap() error { return e.Err }

// isImmutable reports an API server refusal of an immutable field change.
func isImmutable(err error) bool {
	if !ssaerrors.IsImmutableError(err) {
		return false
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil {
		return false
	}
	for _, c := range status.Status().Details.Causes {
		if strings.Contains(c.Message, apivalidation.FieldImmutableErrorMsg) {
			return true
		}
	}
	return false
}

// IsDryRunFailure reports whether err is the API server's dry run refusing
// the objects (nothing of them was written).
func IsDryRunFailure(err error) bool {
	var dryRun *ssaerrors.DryRunErr
	return errors.Is(err, ErrDryRun) || errors.As(err, &dryRun)
}
