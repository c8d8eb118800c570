package v1alpha1

import (
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Condition types and reasons of an Application (kstatus-compatible).
const (
	// ReadyCondition is True when the last sync of the target revision succeeded and all objects are healthy.
	ReadyCondition = "Ready"
	// ReconcilingCondition is True while a sync is in progress.
	ReconcilingCondition = "Reconciling"
	// StalledCondition is True when the controller cannot progress without a change (bad render, refused object, verification failure).
	StalledCondition = "Stalled"
)

// Sync statuses.
const (
	SyncStatusSynced    = "Synced"
	SyncStatusOutOfSync = "OutOfSync"
	SyncStatusUnknown   = "Unknown"
)

// Health statuses.
const (
	HealthHealthy     = "Healthy"
	HealthProgressing = "Progressing"
	HealthDegraded    = "Degraded"
	HealthMissing     = "Missing"
	HealthUnknown     = "Unknown"
)

// Annotations users set on an Application.
const (
	// SyncRequestedAnnotation, set to any new value (keyless sync uses a timestamp), requests one sync now.
	SyncRequestedAnnotation = "keyless.dev/sync-requested-at"
	// DeletionPolicyAnnotation set to "orphan" keeps the deployed objects when the Application is deleted.
	DeletionPolicyAnnotation = "keyless.dev/deletion-policy"
	// DeletionPolicyOrphan is the value of DeletionPolicyAnnotation that keeps objects.
	DeletionPolicyOrphan = "orphan"
)

// ShardLabel on an Application names the controller shard that owns it
// (`keyless controller --shard KEY`); a controller started without --shard
// owns the Applications without it. Flux's sharding convention.
const ShardLabel = "sharding.keyless.dev/key"

// A Secret named by spec.source.secretRef must be meant as a Git credential
// for the repository's host: labelled CredentialLabel=CredentialGit, and
// annotated GitHostAnnotation with the host (host[:port], comma-separated
// for several) it may be sent to.
//
// A forge token (spec.commitStatus.secretRef) is bound the same way with
// CredentialForge and GitHostAnnotation naming the repository's host; a
// notification Secret (spec.notifications[].secretRef) is labelled
// CredentialNotification (its address is in the Secret itself). A Helm
// repository or OCI registry credential (basic auth or token, or a
// kubernetes.io/dockerconfigjson Secret) is labelled CredentialHelm and bound
// with GitHostAnnotation to the repository's or registry's host.
const (
	CredentialLabel        = "keyless.dev/credential"
	CredentialGit          = "git"
	CredentialForge        = "forge"
	CredentialNotification = "notification"
	CredentialHelm         = "helm"
	GitHostAnnotation      = "keyless.dev/git-host"
)

// DefaultServiceAccountName is impersonated for every write when spec.serviceAccountName is empty.
const DefaultServiceAccountName = "keyless-deployer"

// InClusterServer is the only destination.server an in-cluster controller accepts.
const InClusterServer = "https://kubernetes.default.svc"

// ApplicationSpec says what to deploy from where. Field names follow Argo CD's.
// +kubebuilder:validation:XValidation:rule="has(self.source) != has(self.sources)",message="set exactly one of spec.source and spec.sources"
type ApplicationSpec struct {
	// Source is the Git repository, revision and path to deploy, or a chart
	// from a Helm repository or OCI registry. Exactly one of source and
	// sources is set.
	// +optional
	Source ApplicationSource `json:"source,omitzero"`

	// Sources is Argo CD's multi-source form, kept to what values from Git
	// beside a chart need: exactly one source without ref is rendered; each
	// other source names a Git repository with a ref, whose files the
	// rendered source's helm.valueFiles read as $ref/path.
	// +optional
	// +kubebuilder:validation:MaxItems=8
	Sources []ApplicationSource `json:"sources,omitempty"`

	// Destination is optional: namespace must equal metadata.namespace and
	// server, when given, must be the in-cluster address.
	// +optional
	Destination *ApplicationDestination `json:"destination,omitempty"`

	// ServiceAccountName in the Application's namespace is impersonated for
	// every write. Default keyless-deployer.
	// +optional
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// SyncPolicy: with automated, every new revision and drift is synced;
	// without, the controller only reports OutOfSync (sync on demand).
	// +optional
	SyncPolicy *SyncPolicy `json:"syncPolicy,omitempty"`

	// Interval between checks of the target revision (an ls-remote), a
	// duration such as 30s, 5m or 1h30m. Webhooks trigger at once. Minimum
	// 5s (MinInterval), refused below it at admission. Default: the
	// controller's --default-interval.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ms|s|m|h))+$')",messageExpression="'spec.interval ' + self + ' is not a duration: write it as 30s, 5m or 1h30m (units ms, s, m, h)'"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ms|s|m|h))+$') || duration(self) >= duration('5s')",messageExpression="'spec.interval must be at least 5s, not ' + self + ': the target revision is checked at most every 5s (a webhook triggers a sync at once)'"
	Interval *metav1.Duration `json:"interval,omitempty"`

	// Suspend stops syncing until unset.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// CommitStatus reports each sync's result on its commit at the forge
	// (pending while syncing, success when Synced and Healthy, failure with
	// the reason), under the context keyless/<namespace>/<name>.
	// +optional
	CommitStatus *CommitStatus `json:"commitStatus,omitempty"`

	// Notifications are sent when a sync succeeds or fails, health degrades
	// or drift is reverted. Deliveries retry with backoff and never block a sync.
	// +optional
	// +kubebuilder:validation:MaxItems=8
	Notifications []Notification `json:"notifications,omitempty"`

	// Decryption decrypts SOPS-encrypted manifests, kustomize generator
	// sources and helm.valueFiles in memory before the apply, with the keys
	// of a Secret in the Application's own namespace (Flux's field names).
	// Without it a SOPS-encrypted file is refused, never applied encrypted.
	// +optional
	Decryption *Decryption `json:"decryption,omitempty"`

	// RBAC limits what the Roles and RoleBindings of the render may grant.
	// Whoever can push could otherwise bind rights to themselves outside
	// Git: a RoleBinding from the render names only the namespace's own
	// ServiceAccounts and the subjects listed here, never binds or is one of
	// keyless's own Roles (keyless-deployer, keyless-controller,
	// keyless-ci-*), and a Role never grants bind, escalate or impersonate.
	// +optional
	RBAC *RBACPolicy `json:"rbac,omitempty"`

	// HealthCheckExprs decide the health of custom resources with CEL, in
	// Flux's healthCheckExprs format (configurations port over unchanged):
	// for objects of apiVersion and kind, `inProgress`, `failed` and
	// `current` are evaluated in that order against the object and the
	// first true decides (none true: InProgress); an object whose
	// status.observedGeneration is behind is InProgress. They override the
	// controller-wide entries and keyless's built-in library
	// (docs/health.md) for the same kind; kstatus decides the rest.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	HealthCheckExprs []HealthCheckExpr `json:"healthCheckExprs,omitempty"`

	// DependsOn are Applications that must be Ready at their current
	// revision (or whose readyExpr must hold) before this one syncs
	// (Flux's shape). Same namespace by default; another namespace only
	// when the dependency's Application allows this one's namespace in
	// its annotation keyless.dev/allow-dependents-from. While one is not
	// ready the Application says DependencyNotReady, naming it and why;
	// the last synced state keeps running. Waves order objects within an
	// Application, dependsOn orders Applications.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	DependsOn []Dependency `json:"dependsOn,omitempty"`

	// SyncWindows say when this Application may sync, in Argo CD's shape:
	// during an active deny window, or outside every allow window when
	// there are any, nothing is applied (drift included unless the window
	// says selfHeal) and the Application says SyncWindowClosed until when;
	// `keyless sync --override-window --reason TEXT` by a person syncs
	// anyway and is recorded. The cluster admin's windows for the
	// namespace (the controller namespace's keyless-sync-windows
	// ConfigMap) apply as well.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	SyncWindows []SyncWindow `json:"syncWindows,omitempty"`
}

// Kinds of a sync window.
const (
	SyncWindowAllow = "allow"
	SyncWindowDeny  = "deny"
)

// SyncWindow is one window of time (Argo CD's SyncWindow).
type SyncWindow struct {
	// Kind is allow or deny.
	// +kubebuilder:validation:Enum=allow;deny
	Kind string `json:"kind"`
	// Schedule is when the window opens: a five-field cron expression
	// ("0 22 * * 5": Fridays at 22:00).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Schedule string `json:"schedule"`
	// Duration the window stays open, e.g. 1h or 60h.
	// +kubebuilder:validation:Pattern=`^([0-9]+([.][0-9]+)?(ms|s|m|h))+$`
	Duration string `json:"duration"`
	// TimeZone of the schedule (IANA name, e.g. Europe/Stockholm).
	// Default UTC.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	TimeZone string `json:"timeZone,omitempty"`
	// ManualSync lets `keyless sync` (without an override) sync while
	// the window blocks automatic ones.
	// +optional
	ManualSync bool `json:"manualSync,omitempty"`
	// SelfHeal keeps reverting drift while the window blocks syncs of
	// new revisions (default: drift waits too).
	// +optional
	SelfHeal bool `json:"selfHeal,omitempty"`
}

// PauseAnnotation is the annotation `keyless pause` sets: a break-glass
// pause of self-heal (JSON: until, who as the API server named them, and
// why). It has an expiry, always: at it the controller reverts the drift
// made meanwhile to Git.
const PauseAnnotation = "keyless.dev/pause"

// MaxPause bounds a pause: longer is refused (a break-glass pause is not
// a way to stop GitOps).
const MaxPause = 24 * time.Hour

// OverrideWindowAnnotation is the annotation that `keyless sync --override-window` sets:
// the override of the sync request it comes with (JSON: the
// request token, who asked as the API server named them, and why).
const OverrideWindowAnnotation = "keyless.dev/override-window"

// AllowDependentsFromAnnotation is the annotation that, on an Application, lists the namespaces
// (comma-separated, or "*") whose Applications may depend on it: reading
// its readiness is an information flow its namespace's admin agrees to.
const AllowDependentsFromAnnotation = "keyless.dev/allow-dependents-from"

// Dependency is one entry of spec.dependsOn.
type Dependency struct {
	// Name of the Application depended on.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Namespace of the Application depended on. Default: this one's.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`
	// ReadyExpr, a CEL expression over `self` (this Application) and
	// `dep` (the dependency), replaces the default readiness check
	// (Ready True at its current revision and generation), e.g.
	// "dep.status.lastAppliedRevision == self.status.lastAppliedRevision".
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	ReadyExpr string `json:"readyExpr,omitempty"`
}

// HealthCheckExpr is one entry of spec.healthCheckExprs (Flux's
// CustomHealthCheck).
type HealthCheckExpr struct {
	// APIVersion of the objects, e.g. cert-manager.io/v1.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	APIVersion string `json:"apiVersion"`
	// Kind of the objects, e.g. Certificate. Without it the entry covers
	// every kind of apiVersion's group (not the core group), and an entry
	// naming the kind wins over it (Flux's rule, for Crossplane's claims
	// and composites).
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Kind string `json:"kind,omitempty"`
	// Current is true when the object reached its desired state.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Current string `json:"current"`
	// InProgress is true while it has not yet.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	InProgress string `json:"inProgress,omitempty"`
	// Failed is true when it failed to.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Failed string `json:"failed,omitempty"`
}

// RBACPolicy is set by whoever may edit the Application (the namespace
// admin), not by whoever may push.
type RBACPolicy struct {
	// AllowedSubjects are the Users, Groups and ServiceAccounts of other
	// namespaces a RoleBinding of the render may name (kind, name, and
	// namespace for a ServiceAccount).
	// +optional
	// +kubebuilder:validation:MaxItems=64
	AllowedSubjects []rbacv1.Subject `json:"allowedSubjects,omitempty"`
}

// AllowedSubjects returns spec.rbac.allowedSubjects (nil when unset).
func (s *ApplicationSpec) AllowedSubjects() []rbacv1.Subject {
	if s.RBAC == nil {
		return nil
	}
	return s.RBAC.AllowedSubjects
}

// DecryptionProviderSOPS is the one provider of spec.decryption.
const DecryptionProviderSOPS = "sops"

// Decryption configures how encrypted files of the source are decrypted.
type Decryption struct {
	// Provider is sops (the only one).
	// +kubebuilder:validation:Enum=sops
	Provider string `json:"provider"`
	// SecretRef names a Secret in the Application's namespace whose keys
	// ending in .agekey hold age identities and in .asc armored OpenPGP
	// private keys, as Flux's kustomize-controller reads them.
	SecretRef LocalObjectReference `json:"secretRef"`
}

// Forge providers of spec.commitStatus.provider.
const (
	ForgeGitea   = "gitea"
	ForgeForgejo = "forgejo"
	ForgeGitHub  = "github"
	ForgeGitLab  = "gitlab"
)

// CommitStatusTokenKey is the key of spec.commitStatus.secretRef's Secret
// that holds the forge API token.
const CommitStatusTokenKey = "token"

// CommitStatus configures reporting sync results to the forge.
type CommitStatus struct {
	// Provider is the forge's API: gitea, forgejo, github or gitlab.
	// +kubebuilder:validation:Enum=gitea;forgejo;github;gitlab
	Provider string `json:"provider"`
	// SecretRef names a Secret in the Application's namespace whose key
	// "token" is an API token allowed to set commit statuses.
	SecretRef LocalObjectReference `json:"secretRef"`
	// APIURL is the forge's API base, e.g. https://gitea.example.com/api/v1.
	// Default: derived from spec.source.repoURL (api.github.com for
	// github.com, /api/v3 for GitHub Enterprise, /api/v4 for GitLab, /api/v1
	// for Gitea and Forgejo). It must be on the repository's host, over https.
	// +optional
	APIURL string `json:"apiURL,omitempty"`
	// TargetURL is the link the forge shows beside the status (a dashboard, say).
	// +optional
	// +kubebuilder:validation:Pattern=`^https?://`
	TargetURL string `json:"targetURL,omitempty"`
}

// Notification types of spec.notifications[].type.
const (
	// NotifyWebhook posts the JSON audit record, HMAC-signed.
	NotifyWebhook = "webhook"
	// NotifySlack posts a Slack-compatible incoming-webhook message.
	NotifySlack = "slack"
)

// Keys of spec.notifications[].secretRef's Secret.
const (
	// NotificationAddressKey is the URL deliveries are posted to.
	NotificationAddressKey = "address"
	// NotificationHMACKey signs a webhook's body (X-Keyless-Signature-256).
	NotificationHMACKey = "hmacKey"
)

// Notification events of spec.notifications[].events.
const (
	EventSynced         = "Synced"
	EventSyncFailed     = "SyncFailed"
	EventHealthDegraded = "HealthDegraded"
	EventDriftReverted  = "DriftReverted"
	// EventAwaitingApproval: a revision waits for the approval of its
	// out-of-namespace objects by a cluster admin.
	EventAwaitingApproval = "AwaitingApproval"
)

// NotificationEvents are every event a notification can be sent for.
var NotificationEvents = []string{EventSynced, EventSyncFailed, EventHealthDegraded, EventDriftReverted, EventAwaitingApproval}

// Notification is one receiver of sync events.
type Notification struct {
	// Type is webhook (the JSON audit record, HMAC-SHA256-signed) or slack
	// (an incoming-webhook message; Mattermost and others accept it too).
	// +kubebuilder:validation:Enum=webhook;slack
	Type string `json:"type"`
	// SecretRef names a Secret in the Application's namespace with the key
	// "address" (the URL) and, for type webhook, "hmacKey".
	SecretRef LocalObjectReference `json:"secretRef"`
	// Events to send: Synced, SyncFailed, HealthDegraded, DriftReverted,
	// AwaitingApproval. Default: all.
	// +optional
	// +kubebuilder:validation:MaxItems=5
	// +kubebuilder:validation:items:Enum=Synced;SyncFailed;HealthDegraded;DriftReverted;AwaitingApproval
	Events []string `json:"events,omitempty"`
}

// ApplicationSource is where the manifests come from.
type ApplicationSource struct {
	// RepoURL is the Git repository (https:// or ssh://, or scp-like
	// git@host:path); with chart, a Helm repository (https://) or an OCI
	// registry path (oci://registry/path); without chart, oci://registry/repo
	// is an OCI artifact in Flux's format (`keyless publish`, `flux push
	// artifact`) whose folder is rendered.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:Pattern=`^(https?://|ssh://|oci://|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:)`
	RepoURL string `json:"repoURL"`

	// TargetRevision is a branch, a tag or a full commit SHA; with chart, an
	// exact chart version or a semver range ("1.2.x", ">=1.2 <2"); for an
	// OCI artifact, a tag, a semver range over its tags or a digest
	// (sha256:…). Default: the repository's default branch (HEAD); with
	// chart, the latest version; for an artifact, the tag latest.
	// +optional
	TargetRevision string `json:"targetRevision,omitempty"`

	// Path inside the repository (or the OCI artifact): a Helm chart, a
	// kustomization or a plain folder of manifests (auto-detected as Argo
	// CD does). Default: the root. Not used with chart.
	// +optional
	Path string `json:"path,omitempty"`

	// Chart is the name of a chart in the Helm repository or under the OCI
	// path of repoURL (Argo CD's field): the source is that chart, not Git.
	// +optional
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9._-]*$`
	Chart string `json:"chart,omitempty"`

	// Ref names this source in spec.sources so that the rendered source's
	// helm.valueFiles can read its files as $ref/path (Argo CD's field). A
	// source with a ref is only read for values, never rendered.
	// +optional
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_-]+$`
	Ref string `json:"ref,omitempty"`

	// Helm configures chart rendering.
	// +optional
	Helm *HelmSource `json:"helm,omitempty"`

	// Directory configures a plain folder of manifests (Argo CD's field).
	// +optional
	Directory *DirectorySource `json:"directory,omitempty"`

	// SecretRef names a Secret in the Application's namespace with the Git
	// credential: username/password, bearerToken, or identity/known_hosts (ssh).
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`

	// Verify requires signed commits.
	// +optional
	Verify *VerifySource `json:"verify,omitempty"`
}

// HelmSource configures a Helm render (template only, no release).
type HelmSource struct {
	// ValueFiles are relative to the chart and may point elsewhere inside the repository.
	// +optional
	ValueFiles []string `json:"valueFiles,omitempty"`
	// ReleaseName is .Release.Name. Default: the Application's name.
	// +optional
	ReleaseName string `json:"releaseName,omitempty"`
	// Values are inline values as a YAML string, merged after the files
	// (Argo CD's helm.values). Ignored when valuesObject is set.
	// +optional
	// +kubebuilder:validation:MaxLength=262144
	Values string `json:"values,omitempty"`
	// ValuesObject are inline values as an object, merged after the files
	// (Argo CD's helm.valuesObject); they replace values when both are set.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	ValuesObject *runtime.RawExtension `json:"valuesObject,omitempty"`
	// Parameters are inline values (name is a dot path), applied after the
	// files and the inline values, as helm --set.
	// +optional
	Parameters []HelmParameter `json:"parameters,omitempty"`
	// KubeVersion is .Capabilities.KubeVersion (as `helm template
	// --kube-version`). Default: the cluster's version.
	// +optional
	KubeVersion string `json:"kubeVersion,omitempty"`
	// APIVersions are added to .Capabilities.APIVersions (as `helm template
	// --api-versions`), e.g. monitoring.coreos.com/v1 or
	// monitoring.coreos.com/v1/ServiceMonitor. Default: the cluster's.
	// +optional
	APIVersions []string `json:"apiVersions,omitempty"`
	// RepositorySecretRefs name Secrets in the Application's namespace with
	// the credentials of the Helm repositories and OCI registries the
	// chart's dependencies (and a kustomization's helmCharts) come from:
	// each labelled keyless.dev/credential: helm and annotated
	// keyless.dev/git-host with its host (or a kubernetes.io/dockerconfigjson
	// Secret), and sent only to that host. Default: anonymous.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	RepositorySecretRefs []LocalObjectReference `json:"repositorySecretRefs,omitempty"`
}

// DirectorySource configures a plain folder of manifests, with Argo CD's
// semantics.
type DirectorySource struct {
	// Recurse renders the manifests of subfolders too. Default false, as
	// in Argo CD.
	// +optional
	Recurse bool `json:"recurse,omitempty"`
	// Include is a glob of the paths (relative to the folder) to render,
	// e.g. "*.yaml" or "{config.yaml,deploy.yaml}". Default: every manifest.
	// +optional
	Include string `json:"include,omitempty"`
	// Exclude is a glob of the paths (relative to the folder) not to render.
	// +optional
	Exclude string `json:"exclude,omitempty"`
	// Jsonnet configures the rendering of *.jsonnet files.
	// +optional
	Jsonnet *JsonnetSource `json:"jsonnet,omitempty"`
}

// JsonnetSource configures jsonnet evaluation (Argo CD's field).
type JsonnetSource struct {
	// ExtVars are std.extVar() values.
	// +optional
	ExtVars []JsonnetVar `json:"extVars,omitempty"`
	// TLAs are top-level arguments.
	// +optional
	TLAs []JsonnetVar `json:"tlas,omitempty"`
	// Libs are library folders (relative to the repository root) searched by
	// import; they must stay inside the repository.
	// +optional
	Libs []string `json:"libs,omitempty"`
}

// JsonnetVar is one external variable or top-level argument.
type JsonnetVar struct {
	// +kubebuilder:validation:MinLength=1
	Name  string `json:"name"`
	Value string `json:"value"`
	// Code evaluates Value as jsonnet code instead of a string.
	// +optional
	Code bool `json:"code,omitempty"`
}

// HelmParameter is one inline Helm value.
type HelmParameter struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// VerifySource configures commit signature verification.
type VerifySource struct {
	// Mode "head" (a Git source): the target commit must carry a valid
	// signature by a trusted key.
	// +optional
	// +kubebuilder:validation:Enum=head
	Mode string `json:"mode,omitempty"`
	// Provider "cosign" (an OCI artifact source): the artifact must carry a
	// Sigstore signature in cosign's format, by a key of secretRef or
	// keylessly by one of matchIdentities, checked before anything is
	// fetched or rendered. Where the controller's trust policy
	// (--trust-policy) names pipelines for the namespace, their identities
	// are required whatever this says.
	// +optional
	// +kubebuilder:validation:Enum=cosign
	Provider string `json:"provider,omitempty"`
	// SecretRef names a Secret of trusted keys: for mode head, *.asc
	// (OpenPGP) and *.pub (SSH); for cosign, *.pub (PEM public keys, as
	// cosign generate-key-pair writes); for both, optionally
	// trusted_root.json (a Sigstore trusted root for matchIdentities;
	// default the controller's --trusted-root). Mode head needs secretRef,
	// matchIdentities or both.
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`
	// MatchIdentities are the keyless signers allowed: of an OCI artifact
	// (cosign), or of a Git commit signed with gitsign (mode head; checked
	// with a timestamp of the trusted root, no Rekor). One must match the
	// signing certificate; `keyless oidc config --format artifact-rule`
	// prints the FederationPolicy's.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	MatchIdentities []SigningIdentity `json:"matchIdentities,omitempty"`
	// TransparencyLog is Required (default: a Rekor entry must prove the
	// signature) or Skip (air-gapped: a key signature needs nothing more,
	// a keyless one a timestamp from a trusted timestamp authority).
	// +optional
	// +kubebuilder:validation:Enum=Required;Skip
	TransparencyLog string `json:"transparencyLog,omitempty"`
	// Approvals (a Git source) requires every revision applied to have
	// reached its branch through a merged pull/merge request that at least
	// minApprovers people other than its author(s) and its merger approved
	// on its final head, as the forge records it. A direct push, a
	// self-approved or a stale-approved merge is refused (ApprovalMissing)
	// and the last good state keeps running. It may stand alone (mode head
	// is then not required) or beside signature verification.
	// +optional
	Approvals *ForgeApprovals `json:"approvals,omitempty"`
}

// ForgeApprovals is the four-eyes rule checked with the forge before a
// revision is applied.
type ForgeApprovals struct {
	// MinApprovers is how many distinct people, none of them an author of
	// the change or its merger, must have approved the final head.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=20
	MinApprovers int32 `json:"minApprovers"`
	// Provider is the forge's API: gitea, forgejo, github or gitlab.
	// +kubebuilder:validation:Enum=gitea;forgejo;github;gitlab
	Provider string `json:"provider"`
	// SecretRef names a Secret in the Application's namespace, labelled
	// keyless.dev/credential: forge and annotated keyless.dev/git-host
	// with the repository's host, whose key "token" reads pull/merge
	// requests (read-only is enough: Gitea read:repository, a GitHub
	// fine-grained token with Pull requests: read, GitLab read_api).
	SecretRef LocalObjectReference `json:"secretRef"`
	// APIURL is the forge's API base. Default: derived from
	// spec.source.repoURL as for commitStatus; it must be on the
	// repository's host, over https.
	// +optional
	APIURL string `json:"apiURL,omitempty"`
}

// SigningIdentity is a keyless signer: the CI job's token issuer and the
// pipeline Fulcio certified. Empty fields other than issuer are not checked.
type SigningIdentity struct {
	// Issuer is the OIDC issuer URL, exactly (https://gitlab.com,
	// https://token.actions.githubusercontent.com).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Issuer string `json:"issuer"`
	// Subject is a regular expression the certificate's subject must match.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Subject string `json:"subject,omitempty"`
	// Repository is the repository that built it (Fulcio's
	// SourceRepositoryURI), e.g. https://gitlab.com/myorg/myapp.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Repository string `json:"repository,omitempty"`
	// RepositoryID is its immutable id (GitLab project_id, GitHub
	// repository_id).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	RepositoryID string `json:"repositoryID,omitempty"`
	// Ref is the ref built, e.g. refs/heads/main.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Ref string `json:"ref,omitempty"`
}

// Transparency log requirements of VerifySource.
const (
	TransparencyLogRequired = "Required"
	TransparencyLogSkip     = "Skip"
	// VerifyProviderCosign is VerifySource.Provider for OCI artifacts.
	VerifyProviderCosign = "cosign"
)

// LocalObjectReference names an object in the Application's namespace.
type LocalObjectReference struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// ApplicationDestination is where to deploy. keyless deploys only into the
// Application's own namespace of the cluster the controller runs in.
type ApplicationDestination struct {
	// Server, when given, is the in-cluster address
	// https://kubernetes.default.svc (InClusterServer): every cluster runs
	// its own controller. Another address is refused at admission.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self in ['', 'https://kubernetes.default.svc', 'https://kubernetes.default.svc/']",messageExpression="'spec.destination.server ' + self + ' is not this cluster: keyless is pull-based, each cluster runs its own controller (use https://kubernetes.default.svc or leave it empty)'"
	Server string `json:"server,omitempty"`
	// Namespace, when given, equals metadata.namespace: an Application
	// deploys into its own namespace only. Another namespace is admitted
	// (a CRD's validation rules cannot read metadata.namespace) and refused
	// by the controller: Ready False, reason InvalidSpec.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`
}

// SyncPolicy configures automatic sync.
type SyncPolicy struct {
	// +optional
	Automated *AutomatedSyncPolicy `json:"automated,omitempty"`
	// SyncOptions apply to every object, in Argo CD's words. Honoured:
	// Replace=true and Force=true (recreate an object whose change the API
	// server refuses as immutable); ServerSideApply=true, ApplyOutOfSyncOnly=true
	// and PruneLast=true describe what keyless always does. Others are refused.
	// +optional
	SyncOptions []string `json:"syncOptions,omitempty"`
	// OutOfNamespace says what becomes of the render's objects outside the
	// Application's namespace (cluster-scoped ones such as a CRD or a
	// ClusterRole, and namespaced ones naming another namespace): refuse
	// (the default) refuses the whole revision, as keyless always did;
	// approve holds the revision, AwaitingApproval, until a person applies
	// those objects with their own credential (`keyless approve`), then
	// the controller syncs the rest as the deployer. A revision whose
	// out-of-namespace objects equal the approved ones syncs at once.
	// +optional
	// +kubebuilder:validation:Enum=refuse;approve
	OutOfNamespace string `json:"outOfNamespace,omitempty"`
	// Approval configures `keyless approve` for outOfNamespace: approve.
	// +optional
	Approval *ApprovalPolicy `json:"approval,omitempty"`
	// Retry bounds the retries of a sync that failed transiently (the API
	// server refused an object, an admission webhook was unavailable, a
	// sync timed out), in Argo CD's shape. A permanent failure (a render
	// error, a refused object, a failed verification) is never retried
	// until something changes. Without it a transient failure is retried
	// with the controller's backoff (100ms doubling to 1m), without limit.
	// +optional
	Retry *RetryStrategy `json:"retry,omitempty"`
}

// RetryStrategy is spec.syncPolicy.retry (Argo CD's RetryStrategy).
type RetryStrategy struct {
	// Limit is how many times a failed sync of one revision is retried;
	// then it is Stalled until a new revision, spec or `keyless sync`.
	// A negative limit retries without end. Default 5.
	// +optional
	Limit *int64 `json:"limit,omitempty"`
	// Backoff between retries.
	// +optional
	Backoff *RetryBackoff `json:"backoff,omitempty"`
}

// RetryBackoff is the wait before each retry: duration, multiplied by
// factor after each, at most maxDuration.
type RetryBackoff struct {
	// Duration before the first retry, e.g. 5s. Default 5s.
	// +optional
	// +kubebuilder:validation:Pattern=`^([0-9]+([.][0-9]+)?(ms|s|m|h))+$`
	Duration string `json:"duration,omitempty"`
	// Factor multiplies the wait after each retry. Default 2.
	// +optional
	// +kubebuilder:validation:Minimum=1
	Factor *int64 `json:"factor,omitempty"`
	// MaxDuration caps the wait, e.g. 3m. Default 3m.
	// +optional
	// +kubebuilder:validation:Pattern=`^([0-9]+([.][0-9]+)?(ms|s|m|h))+$`
	MaxDuration string `json:"maxDuration,omitempty"`
}

// Values of spec.syncPolicy.outOfNamespace.
const (
	OutOfNamespaceRefuse  = "refuse"
	OutOfNamespaceApprove = "approve"
)

// ApprovalPolicy configures who may approve out-of-namespace objects.
type ApprovalPolicy struct {
	// AllowSelfApproval lets the author of the commit approve its
	// out-of-namespace objects (four eyes are required by default). An
	// approval that used it says so in status.approval and history.
	// +optional
	AllowSelfApproval bool `json:"allowSelfApproval,omitempty"`
}

// AutomatedSyncPolicy configures what an automatic sync may do.
type AutomatedSyncPolicy struct {
	// Prune deletes objects that left the render.
	// +optional
	Prune bool `json:"prune,omitempty"`
	// SelfHeal reverts changes made in the cluster (watch-based, at once).
	// +optional
	SelfHeal bool `json:"selfHeal,omitempty"`
	// AllowEmpty lets an empty render sync (and prune everything).
	// +optional
	AllowEmpty bool `json:"allowEmpty,omitempty"`
}

// ApplicationStatus is what the controller observed and did.
type ApplicationStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// +optional
	Sync SyncStatus `json:"sync,omitempty"`
	// +optional
	Health HealthStatus `json:"health,omitempty"`
	// LastAppliedRevision is the commit last synced successfully.
	// +optional
	LastAppliedRevision string `json:"lastAppliedRevision,omitempty"`
	// LastAttemptedRevision is the commit of the last sync attempt.
	// +optional
	LastAttemptedRevision string `json:"lastAttemptedRevision,omitempty"`
	// LastHandledSyncRequest is the value of the sync-requested-at annotation last acted on.
	// +optional
	LastHandledSyncRequest string `json:"lastHandledSyncRequest,omitempty"`
	// Inventory lists the objects applied by the last sync (pruning starts from it).
	// +optional
	Inventory []InventoryEntry `json:"inventory,omitempty"`
	// Operation is the sync in progress (phase, wave, hooks waited for), while one runs.
	// +optional
	Operation *OperationStatus `json:"operation,omitempty"`
	// History of the last 10 syncs, newest first: who changed what, when, and the result.
	// +optional
	History []SyncRecord `json:"history,omitempty"`
	// Approval is the state of the out-of-namespace objects
	// (spec.syncPolicy.outOfNamespace: approve): what waits for approval
	// and what was approved last.
	// +optional
	Approval *ApprovalStatus `json:"approval,omitempty"`
	// WaitingOn is the dependency (spec.dependsOn) a sync waits for, and
	// since when; empty when none.
	// +optional
	WaitingOn *DependencyWait `json:"waitingOn,omitempty"`
	// SyncWindow, while a sync window blocks syncs, says which and until
	// when; empty when syncs may run.
	// +optional
	SyncWindow *SyncWindowStatus `json:"syncWindow,omitempty"`
	// Pause is the break-glass pause of self-heal in force (`keyless
	// pause`), and the drift made meanwhile with who made it.
	// +optional
	Pause *PauseStatus `json:"pause,omitempty"`
	// Render says what the applied objects were rendered from and why the
	// last commit was or was not rendered again: a commit that changes no
	// file the render read moves lastAppliedRevision with no render, dry
	// run or write.
	// +optional
	Render *RenderStatus `json:"render,omitempty"`
}

// PauseStatus is a pause of self-heal with its expiry.
type PauseStatus struct {
	// Until is when the drift made meanwhile is reverted to Git.
	Until metav1.Time `json:"until"`
	// By is who paused, as the API server named them to keyless pause.
	By string `json:"by"`
	// Reason is why, e.g. an incident number.
	Reason string `json:"reason"`
	// Drift lists the objects changed in the cluster meanwhile and the
	// field managers that changed them, e.g. "Deployment/web configured
	// (by kubectl-edit)", at most MaxRecordedChanges.
	// +optional
	Drift []string `json:"drift,omitempty"`
}

// SyncWindowStatus is a window that blocks syncs now.
type SyncWindowStatus struct {
	// Window describes it, e.g. "deny 0 22 * * 5 for 60h (Europe/Stockholm, from the Application)".
	Window string `json:"window"`
	// Until is when syncs may run again (as far as the windows known now say).
	// +optional
	Until metav1.Time `json:"until,omitempty"`
}

// DependencyWait is what an Application waits for before it syncs.
type DependencyWait struct {
	// Name and Namespace of the dependency.
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Reason is why it is not ready: its Ready condition's reason, or
	// NotFound, NotAllowed, Cycle, ReadyExprFalse.
	Reason string `json:"reason"`
	// Message says it in words.
	// +optional
	Message string `json:"message,omitempty"`
	// Since is when the wait began.
	Since metav1.Time `json:"since"`
}

// MaxPendingObjectNames bounds status.approval.pending.objects (and its
// added, changed and removed lists): the last entry says how many more.
const MaxPendingObjectNames = 100

// ApprovalStatus is what waits for approval and what was approved last.
type ApprovalStatus struct {
	// Pending is the revision held until its out-of-namespace objects are
	// approved (`keyless approve`); empty when nothing waits.
	// +optional
	Pending *PendingApproval `json:"pending,omitempty"`
	// Approved is the last approval, read from its record.
	// +optional
	Approved *ApprovedBundle `json:"approved,omitempty"`
}

// PendingApproval is a revision whose out-of-namespace objects wait for a
// person's approval.
type PendingApproval struct {
	// Revision is the revision held.
	Revision string `json:"revision"`
	// Digest is the sha256 of its out-of-namespace objects: what an
	// approval names.
	Digest string `json:"digest"`
	// Author is the author of the revision's commit: with four eyes, not
	// who may approve it.
	// +optional
	Author string `json:"author,omitempty"`
	// Since is when the controller first held a revision with this digest.
	// +optional
	Since metav1.Time `json:"since,omitempty"`
	// Objects are the out-of-namespace objects (Kind/name, with the
	// namespace when namespaced), at most MaxPendingObjectNames.
	// +optional
	Objects []string `json:"objects,omitempty"`
	// Added, Changed and Removed compare them with the last approval: a
	// removed object is deleted by the approval.
	// +optional
	Added []string `json:"added,omitempty"`
	// +optional
	Changed []string `json:"changed,omitempty"`
	// +optional
	Removed []string `json:"removed,omitempty"`
	// Diff is a unified YAML diff of the added and changed objects against
	// the last approval, at most 16 KiB (keyless approve shows it whole,
	// and against the live objects).
	// +optional
	Diff string `json:"diff,omitempty"`
}

// ApprovedBundle is one approval of out-of-namespace objects.
type ApprovedBundle struct {
	// Digest of the objects approved (and applied by the approver).
	Digest string `json:"digest"`
	// Revision the approval was given for.
	// +optional
	Revision string `json:"revision,omitempty"`
	// Approver is the person who approved, as the API server named them
	// (SelfSubjectReview).
	Approver string `json:"approver"`
	// At is when.
	// +optional
	At metav1.Time `json:"at,omitempty"`
	// SelfApproved: the approver was the commit's author
	// (spec.syncPolicy.approval.allowSelfApproval).
	// +optional
	SelfApproved bool `json:"selfApproved,omitempty"`
}

// SyncStatus compares the cluster with the target revision.
type SyncStatus struct {
	// Status is Synced, OutOfSync or Unknown.
	Status string `json:"status,omitempty"`
	// Revision is the commit compared with.
	// +optional
	Revision string `json:"revision,omitempty"`
	// Drifted lists objects that differ (OutOfSync only), e.g. "Deployment/web configured".
	// +optional
	Drifted []string `json:"drifted,omitempty"`
	// Diff is what a sync would change (OutOfSync only): the server-side
	// dry-run's unified YAML diff of each drifted object, Secret values
	// masked, at most MaxSyncDiffBytes (cut at an object's end, with a note
	// of what was left out). Whoever may read the Application may read it.
	// +optional
	Diff string `json:"diff,omitempty"`
}

// MaxRecordedChanges bounds a history record's Changed list: ten records
// stay far below etcd's object limit whatever a sync touched.
const MaxRecordedChanges = 20

// MaxSyncDiffBytes bounds status.sync.diff: an Application's status stays
// far below etcd's object limit whatever drifted.
const MaxSyncDiffBytes = 16 << 10

// HealthStatus aggregates the kstatus of the deployed objects.
type HealthStatus struct {
	// Status is Healthy, Progressing, Degraded, Missing or Unknown.
	Status string `json:"status,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
}

// InventoryEntry is one applied object.
type InventoryEntry struct {
	// +optional
	Group   string `json:"group,omitempty"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
	Name    string `json:"name"`
}

// SyncRecord is one sync in the history.
type SyncRecord struct {
	Revision string `json:"revision"`
	// +optional
	Author string `json:"author,omitempty"`
	// +optional
	Committer string `json:"committer,omitempty"`
	// Signer is the fingerprint of the key that signed the commit (verify
	// on), or for an OCI artifact the verified signer: the key, or the
	// pipeline Fulcio certified (repository, ref, commit and run).
	// +optional
	Signer string `json:"signer,omitempty"`
	// Message is the commit's subject line.
	// +optional
	Message string `json:"message,omitempty"`
	// Trigger is what started the sync: revision, drift, request or spec.
	// +optional
	Trigger string `json:"trigger,omitempty"`
	// +optional
	StartedAt metav1.Time `json:"startedAt,omitempty"`
	// +optional
	FinishedAt metav1.Time `json:"finishedAt,omitempty"`
	// Result is Succeeded, Failed, or Abandoned (a new revision arrived
	// while the sync waited; it was synced at once).
	Result string `json:"result"`
	// Changes summarises what changed, e.g. "1 created, 2 configured, 0 pruned".
	// +optional
	Changes string `json:"changes,omitempty"`
	// Changed lists the objects the sync created, configured, replaced or
	// pruned, e.g. "Deployment/web configured": at most MaxRecordedChanges,
	// the last entry saying how many more were left out.
	// +optional
	Changed []string `json:"changed,omitempty"`
	// +optional
	Error string `json:"error,omitempty"`
	// WindowOverride names the person who synced this revision through a
	// closed sync window, and why (`keyless sync --override-window`).
	// +optional
	WindowOverride string `json:"windowOverride,omitempty"`
	// ApprovedBy is the person whose approval covers this revision's
	// out-of-namespace objects (spec.syncPolicy.outOfNamespace: approve),
	// and ApprovalDigest their digest.
	// +optional
	ApprovedBy string `json:"approvedBy,omitempty"`
	// +optional
	ApprovalDigest string `json:"approvalDigest,omitempty"`
	// Approvers are the people whose approval at the forge, on the final
	// head of PullRequest, let this revision through
	// (spec.source.verify.approvals).
	// +optional
	Approvers []string `json:"approvers,omitempty"`
	// PullRequest is the pull/merge request the revision was merged
	// through (its web URL), when spec.source.verify.approvals checked it.
	// +optional
	PullRequest string `json:"pullRequest,omitempty"`
	// RenderedDigest is the sha256 of the objects the sync applied, as
	// rendered (sorted, canonical JSON).
	// +optional
	RenderedDigest string `json:"renderedDigest,omitempty"`
	// DryRun is the API server's server-side dry run of those objects
	// before they were written: Passed, or Failed (nothing written).
	// +optional
	DryRun string `json:"dryRun,omitempty"`
	// Hooks are the hook runs of this sync (PreSync, Sync, PostSync, SyncFail), in order.
	// +optional
	Hooks []HookRecord `json:"hooks,omitempty"`
}

// HookRecord is one hook object a sync created and what became of it.
type HookRecord struct {
	// Kind and Name of the hook object (its generated name for generateName hooks).
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Phase is PreSync, Sync, PostSync or SyncFail.
	Phase string `json:"phase"`
	// +optional
	Wave int `json:"wave,omitempty"`
	// Result is Succeeded or Failed.
	Result string `json:"result"`
	// +optional
	Message string `json:"message,omitempty"`
	// Duration is how long the hook ran, e.g. "3.2s".
	// +optional
	Duration string `json:"duration,omitempty"`
}

// OperationStatus is the sync in progress: the phase and wave running and
// what it waits for. It is empty between syncs.
type OperationStatus struct {
	// Phase is PreSync, Sync, PostSync or SyncFail.
	Phase string `json:"phase"`
	// +optional
	Wave int `json:"wave,omitempty"`
	// Waiting lists the objects (Kind/name) the step waits for.
	// +optional
	Waiting []string `json:"waiting,omitempty"`
	// +optional
	StartedAt metav1.Time `json:"startedAt,omitempty"`
}

// Application deploys a path of a Git repository into its own namespace.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=kapp;kapps,categories=keyless
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`,description="The Ready condition: True when the last sync succeeded and every object is healthy"
// +kubebuilder:printcolumn:name="Sync",type=string,JSONPath=`.status.sync.status`,description="Synced, OutOfSync or Unknown (empty before the first sync)"
// +kubebuilder:printcolumn:name="Health",type=string,JSONPath=`.status.health.status`,description="Healthy, Progressing, Degraded, Missing or Unknown (empty before the first sync)"
// +kubebuilder:printcolumn:name="Reason",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,description="The Ready condition's reason, e.g. RenderFailed or InvalidSpec"
// +kubebuilder:printcolumn:name="Revision",type=string,priority=1,JSONPath=`.status.lastAppliedRevision`,description="The revision last synced: a commit, a chart's version@sha256:digest, or a multi-source revision"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,description="The Ready condition's message: what failed and what to do"
type Application struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ApplicationSpec   `json:"spec"`
	Status ApplicationStatus `json:"status,omitempty"`
}

// ApplicationList is a list of Applications.
// +kubebuilder:object:root=true
type ApplicationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Application `json:"items"`
}

// RenderStatus is what an Application's objects were rendered from.
type RenderStatus struct {
	// Revision is the commit the applied objects were rendered at: older
	// than lastAppliedRevision when the commits since changed none of the
	// render's inputs.
	Revision string `json:"revision,omitempty"`
	// Inputs is how many paths of the repository the render used (files
	// read, paths looked at, folders listed or loaded whole); 0 when the
	// render cannot be keyed by them (spec.sources with a ref, a chart
	// source, a render that decrypted) and renders at every commit.
	Inputs int `json:"inputs,omitempty"`
	// Reason says why the last commit was rendered or not, e.g. "inputs
	// unchanged since 1a2b3c4", "inputs changed: apps/a/values.yaml",
	// "first render since the controller started".
	Reason string `json:"reason,omitempty"`
	// Changed names the inputs that changed between the render before and
	// this one (at most 10).
	// +optional
	Changed []string `json:"changed,omitempty"`
}
