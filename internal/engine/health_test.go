package engine

import (
	"errors"
	"strings"
	"testing"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// fixedHealth decides every object of kind Widget.
type fixedHealth struct {
	st  status.Status
	err error
}

func (f fixedHealth) Status(obj *unstructured.Unstructured) (status.Status, bool, error) {
	if obj.GetKind() != "Widget" {
		return "", false, nil
	}
	return f.st, true, f.err
}

func widget(conditions ...any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": map[string]any{"name": "w"}}}
	if len(conditions) > 0 {
		_ = unstructured.SetNestedSlice(u.Object, conditions, "status", "conditions")
	}
	return u
}

func TestStatusFuncAfterHealth(t *testing.T) {
	failedConds := []any{
		map[string]any{"type": "Ready", "status": "False", "reason": "DoesNotExist", "message": "Secret does not exist"},
		map[string]any{"type": "Issuing", "status": "False", "reason": "Failed", "message": "issuer not found"},
	}
	for _, tc := range []struct {
		name    string
		health  Health
		obj     *unstructured.Unstructured
		want    status.Status
		message string
	}{
		{"no health: kstatus calls a custom resource without status Current", nil, widget(), status.CurrentStatus, ""},
		{"health decides its kinds", fixedHealth{st: status.InProgressStatus}, widget(), status.InProgressStatus, ""},
		{"a failure names the condition that says it failed", fixedHealth{st: status.FailedStatus}, widget(failedConds...), status.FailedStatus, "Issuing Failed: issuer not found"},
		{"otherwise the Ready condition", fixedHealth{st: status.InProgressStatus}, widget(failedConds...), status.InProgressStatus, "Ready DoesNotExist: Secret does not exist"},
		{"an expression's error fails the object with it", fixedHealth{err: errors.New("health check current \"x\" on Widget/w: boom")}, widget(), status.FailedStatus, "boom"},
		{"other kinds stay kstatus's", fixedHealth{st: status.FailedStatus}, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "c"}}}, status.CurrentStatus, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := statusFunc(tc.health)(tc.obj)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tc.want || !strings.Contains(res.Message, tc.message) {
				t.Fatalf("status %s %q, want %s containing %q", res.Status, res.Message, tc.want, tc.message)
			}
		})
	}
}
