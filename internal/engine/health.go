package engine

import (
	"fmt"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

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
