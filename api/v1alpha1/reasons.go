package v1alpha1

// Condition reasons the controller sets on an Application, read by keyless
// sync, get and the demo.
const (
	ReasonSucceeded   = "ReconciliationSucceeded"
	ReasonProgressing = "Progressing"
	ReasonGitFailed   = "GitOperationFailed"
	// ReasonChartFailed: a chart could not be resolved or fetched from its
	// Helm repository or OCI registry (spec.source.chart).
	ReasonChartFailed = "ChartOperationFailed"
	// ReasonArtifactFailed: an OCI artifact (spec.source.repoURL oci://
	// without chart) could not be resolved, fetched or unpacked.
	ReasonArtifactFailed = "ArtifactOperationFailed"
	ReasonRenderFailed   = "RenderFailed"
	ReasonRefused        = "ObjectsRefused"
	ReasonApplyFailed    = "ApplyFailed"
	// ReasonHookFailed: a hook of the sync failed or timed out; later phases were not applied.
	ReasonHookFailed = "HookFailed"
	// ReasonImmutable: the API server refused a change to an immutable field.
	ReasonImmutable          = "ImmutableFieldChange"
	ReasonVerificationFailed = "VerificationFailed"
	// ReasonDecryptionFailed: a SOPS file of the source could not be
	// decrypted (no spec.decryption, no matching key, a bad MAC), or the
	// decryption Secret could not be read.
	ReasonDecryptionFailed = "DecryptionFailed"
	ReasonInvalidSpec      = "InvalidSpec"
	ReasonOutOfSync        = "OutOfSync"
	ReasonSuspended        = "Suspended"
	// ReasonAwaitingApproval: the revision's out-of-namespace objects
	// wait for a person's approval (spec.syncPolicy.outOfNamespace:
	// approve, `keyless approve`); the last approved state runs.
	ReasonAwaitingApproval = "AwaitingApproval"
	// ReasonDependencyNotReady: an Application of spec.dependsOn is not
	// ready (or not found, not allowed, or in a cycle); the sync waits.
	ReasonDependencyNotReady = "DependencyNotReady"
	// ReasonSyncWindowClosed: a sync window blocks syncs now; the message
	// says which and until when.
	ReasonSyncWindowClosed = "SyncWindowClosed"
	// ReasonApprovalMissing: spec.source.verify.approvals is not met by
	// the revision (a direct push, too few approvals by people other than
	// its authors and merger, approvals of an older head); the last good
	// state runs. The message names what is missing.
	ReasonApprovalMissing = "ApprovalMissing"
	// ReasonApprovalCheckFailed: the forge could not be asked about the
	// revision's approvals (an outage, a refused token); retried, never
	// taken for an approval.
	ReasonApprovalCheckFailed = "ApprovalCheckFailed"
)

// Event reasons of a finished sync (a failed one's Event carries its
// condition reason).
const (
	// ReasonSynced: a sync applied a new revision, spec or requested sync.
	ReasonSynced = "Synced"
	// ReasonDriftReverted: a sync put back objects changed in the cluster
	// (selfHeal), at the revision already applied.
	ReasonDriftReverted = "DriftReverted"
	// ReasonApproved: an approval of the out-of-namespace objects was
	// recorded (the Event names the approver and the digest).
	ReasonApproved = "Approved"
	// ReasonSyncAbandoned: a sync's wait was given up for a newer revision.
	ReasonSyncAbandoned = "SyncAbandoned"
	// ReasonWindowOverridden: a person synced through a closed window.
	ReasonWindowOverridden = "WindowOverridden"
	// ReasonChangeApproved: the forge showed a revision approved as
	// spec.source.verify.approvals asks (the Event names the approvers
	// and the pull/merge request).
	ReasonChangeApproved = "ChangeApproved"
	// ReasonPaused: self-heal was paused (keyless pause), with who, why
	// and until when.
	ReasonPaused = "Paused"
)

// Outcomes of a sync's server-side dry run (status.history[].dryRun).
const (
	DryRunPassed = "Passed"
	DryRunFailed = "Failed"
)

// Results of a sync, in status.history and the audit line.
const (
	SyncResultSucceeded = "Succeeded"
	SyncResultFailed    = "Failed"
	// SyncResultAbandoned: a new revision arrived while the sync waited
	// on health, a hook or a wave; the wait was given up and the new
	// revision synced at once.
	SyncResultAbandoned = "Abandoned"
)
