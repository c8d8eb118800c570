package engine

import (
	"fmt"
	"strings"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Health decides the status of the objects it knows (the CEL health of
// custom resources, internal/celhealth, #37) before kstatus, which only
// guesses for most custom resources; handled=false leaves an object to
// kstatus. An error (an expression that failed on the object) makes the
// object Failed with the error as its message: a wave stops on it at
// once instead of waiting for its timeout.
type Health interface {
	Status(obj *unstructured.Unstructured) (st status.Status, handled bool, err error)
}

// statusFunc is computeStatus after h (nil: computeStatus alone).
func statusFunc(h Health) func(*unstructured.Unstructured) (*status.Result, error) {
	if h == nil {
		return computeStatus
	}
	return func(u *unstructured.Unstructured) (*status.Result, error) {
		st, handled, evalErr := h.Status(u)
		switch {
		case evalErr != nil:
			// Not an error of the read: the object's verdict.
			return &status.Result{Status: status.FailedStatus, Message: evalErr.Error()}, nil //nolint:nilerr // an expression's failure is the object's status
		case handled:
			return &status.Result{Status: st, Message: conditionMessage(u, st == status.FailedStatus)}, nil
		}
		return computeStatus(u)
	}
}

// conditionMessage is what an object says of itself, for a status decided
// by a health expression: for a failure, the first condition whose reason
// says it failed (cert-manager's Issuing Failed, Crossplane's
// ReconcileError…), else the Ready condition, else the first one — its
// type, reason and message.
func conditionMessage(u *unstructured.Unstructured, failed bool) string {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	var pick, ready, failure map[string]any
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		reason, _ := m["reason"].(string)
		if pick == nil {
			pick = m
		}
		if m["type"] == "Ready" && ready == nil {
			ready = m
		}
		if failure == nil && m["status"] != "True" && (strings.Contains(strings.ToLower(reason), "fail") || strings.Contains(strings.ToLower(reason), "error")) {
			failure = m
		}
	}
	switch {
	case failed && failure != nil:
		pick = failure
	case ready != nil:
		pick = ready
	}
	if pick == nil {
		if phase, ok, _ := unstructured.NestedString(u.Object, "status", "phase"); ok {
			return "phase " + phase
		}
		return ""
	}
	reason, _ := pick["reason"].(string)
	msg, _ := pick["message"].(string)
	typ, _ := pick["type"].(string)
	switch {
	case reason != "" && msg != "":
		return fmt.Sprintf("%s %s: %s", typ, reason, msg)
	case msg != "":
		return typ + ": " + msg
	}
	return typ + " " + reason
}

// computeStatus is kstatus, except that a Job is Current only once it is
// Complete and a run-to-completion Pod only once it Succeeded (kstatus calls
// a started Job Current): a wave waits for its Jobs and hooks to finish,
// and a running Job counts as Progressing.
func computeStatus(u *unstructured.Unstructured) (*status.Result, error) {
	res, err := status.Compute(u)
	if err != nil || res.Status != status.CurrentStatus {
		return res, err
	}
	gvk := u.GroupVersionKind()
	switch {
	case gvk.Group == "batch" && gvk.Kind == "Job":
		if !hasCondition(u, "Complete") {
			return &status.Result{Status: status.InProgressStatus, Message: "Job has not completed: " + res.Message}, nil
		}
	case gvk.Group == "" && gvk.Kind == "Pod":
		policy, _, _ := unstructured.NestedString(u.Object, "spec", "restartPolicy")
		phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
		if (policy == "Never" || policy == "OnFailure") && phase != "Succeeded" {
			return &status.Result{Status: status.InProgressStatus, Message: fmt.Sprintf("Pod has not succeeded (phase %s)", phase)}, nil
		}
	}
	return res, nil
}

func hasCondition(u *unstructured.Unstructured, typ string) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == typ && m["status"] == "True" {
			return true
		}
	}
	return false
}

// ObjectHealth is how the engine judges obj when it waits on it: h (the
// CEL health of custom resources; nil: none) before kstatus, and a Job or
// run-to-completion Pod is Current only once it finished. message is the
// verdict's: for a Failed expression, the condition that says it failed;
// for an expression's error, the error. An object kstatus cannot judge is
// Unknown, with the error as its message. For views of the cluster (the
// UI's object tree) that must agree with the controller.
func ObjectHealth(obj *unstructured.Unstructured, h Health) (st status.Status, message string) {
	res, err := statusFunc(h)(obj)
	if err != nil {
		return status.UnknownStatus, err.Error()
	}
	return res.Status, res.Message
}
