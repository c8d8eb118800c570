// Package approver is `keyless approve`'s use case: a person, with their
// own credential, applies the out-of-namespace objects an Application
// waits on (spec.syncPolicy.outOfNamespace: approve) and records the
// approval the controller then trusts. The API server, not keyless,
// decides whether that person may write them: every read and write here
// is theirs.
//
// Prepare reads what waits and shows what applying it would change
// (a server-side dry run as the person); Plan.Apply applies it with
// server-side apply (field manager FieldManager), waits until new CRDs are
// Established, deletes the objects the last approval applied that the
// render no longer holds, and writes the record.
package approver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/approval"
	"github.com/keyless-cd/keyless/internal/engine"
)

// FieldManager is the server-side apply field manager of an approver's
// writes: the API server's audit log names the person, managedFields this.
const FieldManager = "keyless-approve"

// DefaultControllerNamespace is where keyless install puts the controller.
const DefaultControllerNamespace = "keyless-system"

// Errors Prepare returns (wrapped).
var (
	// ErrNothingPending: the Application waits on no approval.
	ErrNothingPending = errors.New("nothing waits for approval")
	// ErrSelfApproval: four eyes — the approver is the commit's author.
	ErrSelfApproval = errors.New("the approver is the commit's author")
	// ErrStale: the Application moved on since the pending objects were
	// stored (another revision waits now); run approve again.
	ErrStale = errors.New("the pending approval changed")
)

// Options say which Application to approve, as whom.
type Options struct {
	// Config is the person's own credential.
	Config *rest.Config
	// Namespace and Name are the Application's.
	Namespace, Name string
	// ControllerNamespace holds the pending objects and the approval
	// records. Default DefaultControllerNamespace.
	ControllerNamespace string
	// WaitTimeout bounds the wait for new CRDs to be Established. Default 2m.
	WaitTimeout time.Duration
}

// Plan is what an approval would do, read as the person.
type Plan struct {
	opts    Options
	client  client.Client
	manager *ssa.ResourceManager

	// App is the Application as read before the plan.
	App *kv1.Application
	// Pending is what waits; Previous the last approval (nil: none).
	Pending  *approval.Pending
	Previous *approval.Record
	// Changes compares Pending with Previous.
	Changes approval.Changes
	// Remove are the objects the last approval applied that the render no
	// longer holds: the approval deletes them.
	Remove []*unstructured.Unstructured
	// Approver is the person, as the API server names them.
	Approver string
	// SelfApproved: the approver is the commit's author, which
	// spec.syncPolicy.approval.allowSelfApproval allows.
	SelfApproved bool
	// Live is, per pending object (approval.Ref), what applying it would
	// change in the cluster: a unified diff from the server-side dry run,
	// "" when nothing, or a note (created after its CRD).
	Live []LiveChange
}

// LiveChange is one pending object against the live cluster.
type LiveChange struct {
	Object string
	// Action is created, configured or unchanged (ssa's words), or
	// "created (after its CRD)" for a custom resource whose CRD the same
	// approval creates.
	Action string
	Diff   string
}

// Prepare reads what waits for the person to approve, checks four eyes and
// dry-runs it as the person: an API server refusal (403) comes back
// unchanged and nothing is applied.
func Prepare(ctx context.Context, opts Options) (*Plan, error) {
	if opts.ControllerNamespace == "" {
		opts.ControllerNamespace = DefaultControllerNamespace
	}
	if opts.WaitTimeout <= 0 {
		opts.WaitTimeout = 2 * time.Minute
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := kv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := client.New(opts.Config, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	poller := polling.NewStatusPoller(c, c.RESTMapper(), polling.Options{})
	p := &Plan{opts: opts, client: c, manager: ssa.NewResourceManager(c, poller, ssa.Owner{Field: FieldManager, Group: "keyless.dev"})}

	p.App = &kv1.Application{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: opts.Namespace, Name: opts.Name}, p.App); err != nil {
		return nil, fmt.Errorf("reading Application %s/%s: %w", opts.Namespace, opts.Name, err)
	}
	st := p.App.Status.Approval
	if st == nil || st.Pending == nil {
		return nil, fmt.Errorf("%w: Application %s/%s (spec.syncPolicy.outOfNamespace %q)", ErrNothingPending, opts.Namespace, opts.Name, outOfNamespace(p.App))
	}
	cm := &corev1.ConfigMap{}
	key := types.NamespacedName{Namespace: opts.ControllerNamespace, Name: approval.PendingName(opts.Namespace, opts.Name)}
	if err := c.Get(ctx, key, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: Application %s/%s says %s waits, but %s holds no pending objects (is the controller in %s? --controller-namespace)",
				ErrStale, opts.Namespace, opts.Name, st.Pending.Digest, key, opts.ControllerNamespace)
		}
		return nil, fmt.Errorf("reading the pending objects %s: %w", key, err)
	}
	if p.Pending, err = approval.PendingFromConfigMap(cm, opts.Namespace, opts.Name); err != nil {
		return nil, err
	}
	if p.Pending.Digest != st.Pending.Digest {
		return nil, fmt.Errorf("%w: the Application waits on %s, the stored objects are %s; run keyless approve again in a moment",
			ErrStale, st.Pending.Digest, p.Pending.Digest)
	}
	if p.Previous, err = readRecord(ctx, c, opts); err != nil {
		return nil, err
	}
	var prev *approval.Bundle
	if p.Previous != nil {
		prev = p.Previous.Bundle
		p.Remove = removed(prev, p.Pending.Bundle)
	}
	if p.Changes, err = approval.Compare(prev, p.Pending.Bundle); err != nil {
		return nil, err
	}
	if p.Approver, err = WhoAmI(ctx, opts.Config); err != nil {
		return nil, err
	}
	if approval.IsAuthor(p.Approver, p.Pending.Author) {
		if !p.App.AllowsSelfApproval() {
			return nil, fmt.Errorf("%w: %s wrote revision %s (%s); four eyes: another person must approve it (or the Application's admin sets spec.syncPolicy.approval.allowSelfApproval)",
				ErrSelfApproval, p.Approver, kv1.ShortSHA(p.Pending.Revision), p.Pending.Author)
		}
		p.SelfApproved = true
	}
	if err := p.dryRun(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// dryRun fills Live: each pending object server-side dry-run applied as
// the person. A custom resource of a CRD that this approval creates cannot
// be dry-run before it exists; it is shown as created after it.
func (p *Plan) dryRun(ctx context.Context) error {
	newKinds := map[string]bool{}
	for _, o := range p.Pending.Bundle.Objects {
		if o.GetKind() == "CustomResourceDefinition" {
			group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
			kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
			newKinds[group+"/"+kind] = true
		}
	}
	for _, o := range p.Pending.Bundle.Objects {
		obj := o.DeepCopy()
		ref := approval.Ref(obj)
		entry, live, merged, err := p.manager.Diff(ctx, obj, ssa.DefaultDiffOptions())
		if err != nil {
			if newKinds[obj.GroupVersionKind().Group+"/"+obj.GetKind()] && (meta.IsNoMatchError(err) || apierrors.IsNotFound(err)) {
				p.Live = append(p.Live, LiveChange{Object: ref, Action: "created (after its CRD)"})
				continue
			}
			return fmt.Errorf("server-side dry run of %s as %s: %w", ref, p.Approver, err)
		}
		lc := LiveChange{Object: ref, Action: string(entry.Action)}
		if entry.Action != ssa.UnchangedAction {
			if lc.Diff, err = engine.UnifiedDiff(ref+" (live)", ref+" (approved)", live, merged); err != nil {
				return err
			}
		}
		p.Live = append(p.Live, lc)
	}
	return nil
}

// Apply applies the pending objects as the person (CRDs and Namespaces
// first, waiting until they are Established and Active), deletes Remove,
// writes the approval record, and requests a sync of the Application.
// progress hears of each step.
func (p *Plan) Apply(ctx context.Context, progress io.Writer) (*approval.Record, error) {
	// Re-read: the controller may have stored another revision meanwhile.
	cur := &kv1.Application{}
	if err := p.client.Get(ctx, client.ObjectKeyFromObject(p.App), cur); err != nil {
		return nil, fmt.Errorf("reading Application %s/%s: %w", p.App.Namespace, p.App.Name, err)
	}
	if st := cur.Status.Approval; st == nil || st.Pending == nil || st.Pending.Digest != p.Pending.Digest {
		return nil, fmt.Errorf("%w while you decided: run keyless approve %s -n %s again", ErrStale, p.App.Name, p.App.Namespace)
	}
	objs := make([]*unstructured.Unstructured, len(p.Pending.Bundle.Objects))
	for i, o := range p.Pending.Bundle.Objects {
		objs[i] = o.DeepCopy()
	}
	if len(objs) > 0 {
		cs, err := p.manager.ApplyAllStaged(ctx, objs, ssa.ApplyOptions{Force: false, WaitInterval: time.Second, WaitTimeout: p.opts.WaitTimeout})
		if cs != nil {
			for _, e := range cs.Entries {
				_, _ = fmt.Fprintf(progress, "%s %s\n", e.Subject, e.Action)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("applying the approved objects as %s (nothing recorded; the controller still waits): %w", p.Approver, err)
		}
	}
	for _, o := range p.Remove {
		err := p.client.Delete(ctx, o.DeepCopy(), client.PropagationPolicy(metav1.DeletePropagationBackground))
		switch {
		case err == nil:
			_, _ = fmt.Fprintf(progress, "%s deleted\n", approval.Ref(o))
		case apierrors.IsNotFound(err):
			_, _ = fmt.Fprintf(progress, "%s already gone\n", approval.Ref(o))
		default:
			return nil, fmt.Errorf("deleting %s, which the render no longer holds, as %s (nothing recorded): %w", approval.Ref(o), p.Approver, err)
		}
	}
	rec := &approval.Record{Namespace: p.App.Namespace, Application: p.App.Name, Digest: p.Pending.Digest, Revision: p.Pending.Revision,
		Approver: p.Approver, At: time.Now().UTC().Truncate(time.Second), SelfApproved: p.SelfApproved, Bundle: p.Pending.Bundle}
	if err := writeRecord(ctx, p.client, p.opts.ControllerNamespace, rec); err != nil {
		return nil, err
	}
	_, _ = fmt.Fprintf(progress, "approval of %s recorded in %s/%s\n", rec.Digest, p.opts.ControllerNamespace, approval.RecordName(rec.Namespace, rec.Application))
	return rec, nil
}

// Client is the person's client the plan reads and writes with.
func (p *Plan) Client() client.Client { return p.client }

func readRecord(ctx context.Context, c client.Client, opts Options) (*approval.Record, error) {
	cm := &corev1.ConfigMap{}
	key := types.NamespacedName{Namespace: opts.ControllerNamespace, Name: approval.RecordName(opts.Namespace, opts.Name)}
	if err := c.Get(ctx, key, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading the last approval %s: %w", key, err)
	}
	return approval.RecordFromConfigMap(cm, opts.Namespace, opts.Name)
}

func writeRecord(ctx context.Context, c client.Client, namespace string, rec *approval.Record) error {
	want, err := rec.ConfigMap(namespace)
	if err != nil {
		return err
	}
	cur := &corev1.ConfigMap{}
	err = c.Get(ctx, client.ObjectKeyFromObject(want), cur)
	switch {
	case apierrors.IsNotFound(err):
		err = c.Create(ctx, want)
	case err == nil:
		want.ResourceVersion = cur.ResourceVersion
		err = c.Update(ctx, want)
	}
	if err != nil {
		return fmt.Errorf("recording the approval in %s/%s (the objects are applied; run keyless approve again to record it): %w", namespace, want.Name, err)
	}
	return nil
}

// removed are the objects of prev that next no longer holds.
func removed(prev, next *approval.Bundle) []*unstructured.Unstructured {
	keep := map[string]bool{}
	for _, o := range next.Objects {
		keep[approval.Key(o)] = true
	}
	var out []*unstructured.Unstructured
	for _, o := range prev.Objects {
		if !keep[approval.Key(o)] {
			out = append(out, o)
		}
	}
	return out
}

// WhoAmI asks the API server who the credential is (SelfSubjectReview):
// the name an approval or a window override records.
func WhoAmI(ctx context.Context, cfg *rest.Config) (string, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("asking the API server who you are (SelfSubjectReview): %w", err)
	}
	name := r.Status.UserInfo.Username
	if name == "" {
		return "", errors.New("the API server names no user for your credential: an approval or override needs a person")
	}
	return name, nil
}

func outOfNamespace(app *kv1.Application) string {
	if app.Spec.SyncPolicy == nil || app.Spec.SyncPolicy.OutOfNamespace == "" {
		return kv1.OutOfNamespaceRefuse
	}
	return app.Spec.SyncPolicy.OutOfNamespace
}
