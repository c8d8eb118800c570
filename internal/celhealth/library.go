package celhealth

import (
	"strings"
	"sync"
)

// The built-in library (#37): expressions for the custom resources
// platform teams deploy most, in Flux's healthCheckExprs format, each
// tested on objects as their operators write them
// (testdata/library/<kind>.<group>/) and listed in docs/health.md. An
// Application's spec.healthCheckExprs and the controller's
// --health-check-exprs override them per kind (Merge).
//
// Every expression reads the status through optional access
// (status.?conditions.orValue([])) and `exists`, never `all`: an object
// the operator has not reconciled yet has no status, and `all` over an
// empty list is true. Such an object is InProgress, never an error.

// conditions is the object's status.conditions, empty when absent.
const conditions = "status.?conditions.orValue([])"

// cond is true when a condition of type t has status s.
func cond(t, s string) string {
	return conditions + ".exists(c, c.type == '" + t + "' && c.status == '" + s + "')"
}

// condObserved is cond for a condition that also reports the generation
// it was computed for (metav1.Condition's observedGeneration, when set).
func condObserved(t, s string) string {
	return conditions + ".exists(c, c.type == '" + t + "' && c.status == '" + s +
		"' && (!has(c.observedGeneration) || c.observedGeneration == metadata.generation))"
}

// condReason is true when a condition of type t has status s and one of
// reasons.
func condReason(t, s string, reasons ...string) string {
	return conditions + ".exists(c, c.type == '" + t + "' && c.status == '" + s +
		"' && c.?reason.orValue('') in " + list(reasons) + ")"
}

// condNotReason is true when a condition of type t has status s and none
// of reasons.
func condNotReason(t, s string, reasons ...string) string {
	return conditions + ".exists(c, c.type == '" + t + "' && c.status == '" + s +
		"' && !(c.?reason.orValue('') in " + list(reasons) + "))"
}

func list(items []string) string {
	return "['" + strings.Join(items, "', '") + "']"
}

// readyCondition: Ready=True is Current, Ready=False is Failed.
func readyCondition(apiVersion, kind string) Expressions {
	return Expressions{APIVersion: apiVersion, Kind: kind,
		Failed:  cond("Ready", "False"),
		Current: cond("Ready", "True"),
	}
}

// readyObserved is readyCondition for conditions with observedGeneration.
func readyObserved(apiVersion, kind string) Expressions {
	return Expressions{APIVersion: apiVersion, Kind: kind,
		Failed:  condObserved("Ready", "False"),
		Current: condObserved("Ready", "True"),
	}
}

// flux is Flux's own Kustomization and HelmRelease: Ready=True for this
// generation is Current; a reconciliation under way (Reconciling=True,
// Ready=Unknown) or waiting on a dependency is InProgress; Stalled=True
// or Ready=False is Failed. Flux moves status.observedGeneration only
// when Ready is True, so a new generation that fails stays InProgress
// (Flux retries it) until the wait's timeout, as in Flux.
func flux(apiVersion, kind string) Expressions {
	return Expressions{APIVersion: apiVersion, Kind: kind,
		InProgress: cond("Ready", "Unknown") + " || " +
			condNotReason("Reconciling", "True", "ProgressingWithRetry") + " || " +
			condReason("Ready", "False", "DependencyNotReady"),
		Failed:  cond("Stalled", "True") + " || " + condObserved("Ready", "False"),
		Current: condObserved("Ready", "True"),
	}
}

// rolloutObserved: Argo Rollouts writes status.observedGeneration as a
// string (so the numeric check before the expressions skips it) and, for
// a Rollout with workloadRef, the referenced workload's generation it
// observed.
const rolloutObserved = "string(status.?observedGeneration.orValue('')) == string(metadata.generation)" +
	" && (!has(spec.workloadRef) || metadata.?annotations[?'rollout.argoproj.io/workload-generation'].orValue('') == status.?workloadObservedGeneration.orValue(''))"

// cnpgFailed are the CloudNativePG phases that need a person (the
// operator stops reconciling); every other phase but the healthy one is
// a step under way. The unrecoverable phase was reworded in 1.22.
var cnpgFailed = []string{
	"Cluster is unrecoverable and needs manual intervention",
	"Cluster is in an unrecoverable state, needs manual intervention",
	"Unable to create required cluster objects",
	"Cluster cannot proceed to reconciliation due to an unknown plugin being required",
	"Cluster cannot proceed to reconciliation due to an error while interacting with plugins",
	"Cluster has incomplete or invalid image catalog",
	"Cluster cannot execute instance online upgrade due to missing architecture binary",
}

// CrossplaneReadySynced are the expressions for Crossplane claims and
// composite resources (and managed resources): Ready=True and
// Synced=True is Current; Synced=False (the composition or the external
// API refused) or LastAsyncOperation=False is Failed; anything else,
// Ready=False while resources are created included, is InProgress.
// Claims and composites have the kinds and groups of their
// CompositeResourceDefinition, so the library cannot name them: add an
// entry with these expressions and your XRD's apiVersion, without kind to
// cover every claim and composite of its group (docs/health.md).
var CrossplaneReadySynced = Expressions{
	Failed:  condObserved("Synced", "False") + " || " + condObserved("LastAsyncOperation", "False"),
	Current: condObserved("Ready", "True") + " && " + condObserved("Synced", "True"),
}

// Library returns the built-in entries, a new copy each call.
func Library() []Expressions {
	return []Expressions{
		// cert-manager: Issuing=True while a certificate is requested; a
		// failed request sets Issuing=False (reason Failed or Denied) and is
		// retried with backoff; Ready=False alone is the moment before
		// Issuing is set, and a renewal that fails while the old
		// certificate is still valid leaves Ready=True (Current).
		{APIVersion: "cert-manager.io/v1", Kind: "Certificate",
			Failed:  condObserved("Ready", "False") + " && " + condObserved("Issuing", "False"),
			Current: condObserved("Ready", "True"),
		},
		readyObserved("cert-manager.io/v1", "Issuer"),
		readyObserved("cert-manager.io/v1", "ClusterIssuer"),
		// Argo Rollouts: status.phase (v1.0+) is Healthy, Progressing,
		// Paused or Degraded (aborted, timed out, invalid spec). Paused waits
		// for a promotion: InProgress.
		{APIVersion: "argoproj.io/v1alpha1", Kind: "Rollout",
			Failed:  "status.?phase.orValue('') == 'Degraded' && " + rolloutObserved,
			Current: "status.?phase.orValue('') == 'Healthy' && " + rolloutObserved,
		},
		// CloudNativePG: the phase, with the Ready condition it derives; a
		// hibernated cluster (cnpg.io/hibernation=True) is where it was asked
		// to be.
		{APIVersion: "postgresql.cnpg.io/v1", Kind: "Cluster",
			Failed: "status.?phase.orValue('') in " + list(cnpgFailed),
			Current: "(status.?phase.orValue('') == 'Cluster in healthy state' && " + cond("Ready", "True") + ") || " +
				cond("cnpg.io/hibernation", "True"),
		},
		// Strimzi: Ready=True, or NotReady=True with the exception's class
		// as reason; reason Creating is the initial status of a new cluster.
		{APIVersion: "kafka.strimzi.io/v1beta2", Kind: "Kafka",
			Failed:  condNotReason("NotReady", "True", "Creating"),
			Current: cond("Ready", "True"),
		},
		// KEDA: Ready (Active only says whether triggers fire).
		readyCondition("keda.sh/v1alpha1", "ScaledObject"),
		readyCondition("keda.sh/v1alpha1", "ScaledJob"),
		// External Secrets: Ready with reason SecretSynced or
		// SecretSyncedError; stores are Ready once validated.
		readyCondition("external-secrets.io/v1", "ExternalSecret"),
		readyCondition("external-secrets.io/v1", "SecretStore"),
		readyCondition("external-secrets.io/v1", "ClusterSecretStore"),
		// Sealed Secrets: Synced (False: the controller cannot decrypt).
		{APIVersion: "bitnami.com/v1alpha1", Kind: "SealedSecret",
			Failed:  cond("Synced", "False"),
			Current: cond("Synced", "True"),
		},
		flux("kustomize.toolkit.fluxcd.io/v1", "Kustomization"),
		flux("helm.toolkit.fluxcd.io/v2", "HelmRelease"),
		// Gateway API: Accepted and Programmed by the implementation for
		// this generation; the CRD's default status is both Unknown with
		// reason Pending.
		{APIVersion: "gateway.networking.k8s.io/v1", Kind: "Gateway",
			Failed: condNotReason("Accepted", "False", "Pending") + " || " +
				condReason("Programmed", "False", "Invalid"),
			Current: condObserved("Accepted", "True") + " && " + condObserved("Programmed", "True"),
		},
	}
}

var defaultChecker = sync.OnceValues(func() (*Checker, error) { return Compile(Library()) })

// DefaultChecker is the library compiled, once per process: the defaults
// under the controller-wide entries (Checker.Merge).
func DefaultChecker() (*Checker, error) {
	return defaultChecker()
}
