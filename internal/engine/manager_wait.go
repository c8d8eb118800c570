package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/cli-utils/pkg/kstatus/polling/clusterreader"
	kstatusengine "github.com/fluxcd/cli-utils/pkg/kstatus/polling/engine"
	"github.com/fluxcd/cli-utils/pkg/kstatus/polling/event"
	"github.com/fluxcd/cli-utils/pkg/kstatus/polling/statusreaders"
	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/cli-utils/pkg/object"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ObjectStatus is an object's kstatus: Current, InProgress, Failed,
// Terminating, NotFound or Unknown, with kstatus's message.
type ObjectStatus struct {
	Ref     ObjectRef `json:"object"`
	Status  string    `json:"status"`
	Message string    `json:"message,omitempty"`
}

func (s ObjectStatus) String() string {
	if s.Message == "" {
		return fmt.Sprintf("%s %s", s.Ref, s.Status)
	}
	return fmt.Sprintf("%s %s: %s", s.Ref, s.Status, s.Message)
}

// WaitOptions configure Wait.
type WaitOptions struct {
	// Timeout bounds the wait. Required.
	Timeout time.Duration
	// Interval is the poll interval. Default 500ms.
	Interval time.Duration
	// Progress, when set, is called whenever an object's status or message changes.
	Progress func(ObjectStatus)
	// Health, when set, decides the objects it knows before kstatus.
	Health Health
}

// ErrNotReady is returned (wrapped) when objects failed or did not become
// Current in time; the message lists each with its status and reason.
var ErrNotReady = errors.New("objects not ready")

// Wait polls refs with kstatus until all are Current. It returns early with
// an error as soon as every object is either Current or Failed (a Deployment
// past its progress deadline, a failed Job …), and on timeout names each
// object that is not Current with its status and kstatus's reason.
func (e *Engine) Wait(ctx context.Context, refs []ObjectRef, opts WaitOptions) ([]ObjectStatus, error) {
	if opts.Interval == 0 {
		opts.Interval = 500 * time.Millisecond
	}
	set := make(object.ObjMetadataSet, 0, len(refs))
	byID := map[object.ObjMetadata]ObjectRef{}
	for _, r := range refs {
		set = append(set, r.ID())
		byID[r.ID()] = r
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	events := e.pollerFor(opts.Health).Poll(ctx, set, polling.PollOptions{PollInterval: opts.Interval})
	last := map[object.ObjMetadata]ObjectStatus{}
	var pollErr error
	for ev := range events {
		switch ev.Type {
		case event.ErrorEvent:
			// Requests cut short by the wait's own end (timeout, or all settled)
			// are not failures of the objects; client-go's rate limiter reports
			// the coming deadline a little before it passes.
			if ctx.Err() == nil && !errors.Is(ev.Error, context.DeadlineExceeded) && !strings.Contains(ev.Error.Error(), "would exceed context deadline") {
				pollErr = ev.Error
				cancel()
			}
			continue
		case event.ResourceUpdateEvent:
		default:
			continue
		}
		rs := ev.Resource
		if rs == nil {
			continue
		}
		st := ObjectStatus{Ref: byID[rs.Identifier], Status: rs.Status.String(), Message: rs.Message}
		if rs.Error != nil && st.Message == "" {
			st.Message = rs.Error.Error()
		}
		if prev, ok := last[rs.Identifier]; !ok || prev != st {
			last[rs.Identifier] = st
			if opts.Progress != nil {
				opts.Progress(st)
			}
		}
		// Done when every object is Current, or settled (Current or Failed)
		// so that waiting longer cannot help.
		if allSettled(last, len(set)) {
			cancel()
		}
	}
	out := make([]ObjectStatus, 0, len(refs))
	var bad []string
	for _, r := range refs {
		st, ok := last[r.ID()]
		if !ok {
			st = ObjectStatus{Ref: r, Status: status.UnknownStatus.String(), Message: "no status observed"}
		}
		out = append(out, st)
		if st.Status != status.CurrentStatus.String() {
			bad = append(bad, st.String())
		}
	}
	sort.Strings(bad)
	switch {
	case len(bad) == 0:
		return out, nil
	case allSettled(last, len(set)):
		return out, fmt.Errorf("%w: failed:\n  %s", ErrNotReady, strings.Join(bad, "\n  "))
	case pollErr != nil:
		return out, fmt.Errorf("waiting: %w", pollErr)
	default:
		return out, fmt.Errorf("%w after %s:\n  %s", ErrNotReady, opts.Timeout, strings.Join(bad, "\n  "))
	}
}

// Status reads each object once and returns its kstatus, after health when
// set (NotFound when missing), without waiting: the controller's health
// check.
func (e *Engine) Status(ctx context.Context, refs []ObjectRef, health Health) ([]ObjectStatus, error) {
	compute := statusFunc(health)
	out := make([]ObjectStatus, 0, len(refs))
	for _, r := range refs {
		u := r.Unstructured()
		if err := e.client.Get(ctx, keyOf(r), u); err != nil {
			if apierrors.IsNotFound(err) {
				out = append(out, ObjectStatus{Ref: r, Status: status.NotFoundStatus.String(), Message: "not found"})
				continue
			}
			return nil, fmt.Errorf("reading %s: %w", r, err)
		}
		res, err := compute(u)
		if err != nil {
			out = append(out, ObjectStatus{Ref: r, Status: status.UnknownStatus.String(), Message: err.Error()})
			continue
		}
		out = append(out, ObjectStatus{Ref: r, Status: res.Status.String(), Message: res.Message})
	}
	return out, nil
}

// pollerFor is the engine's poller, or one deciding status with health
// first (built per wait: health is an Application's, the engine its
// deployer's, shared by the namespace's Applications).
func (e *Engine) pollerFor(health Health) *polling.StatusPoller {
	if health == nil {
		return e.poller
	}
	return polling.NewStatusPoller(e.client, e.mapper, polling.Options{
		CustomStatusReaders:  []kstatusengine.StatusReader{statusreaders.NewGenericStatusReader(e.mapper, statusFunc(health))},
		ClusterReaderFactory: kstatusengine.ClusterReaderFactoryFunc(clusterreader.NewDirectClusterReader),
	})
}

func allSettled(last map[object.ObjMetadata]ObjectStatus, n int) bool {
	if len(last) < n {
		return false
	}
	for _, st := range last {
		if st.Status != status.CurrentStatus.String() && st.Status != status.FailedStatus.String() {
			return false
		}
	}
	return true
}

func keyOf(r ObjectRef) client.ObjectKey {
	return client.ObjectKey{Namespace: r.Namespace, Name: r.Name}
}
