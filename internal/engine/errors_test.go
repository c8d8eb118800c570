package engine

import (
	"errors"
	"fmt"
	"testing"

	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestIsPermanent(t *testing.T) {
	gr := schema.GroupResource{Group: "apps", Resource: "deployments"}
	for name, tc := range map[string]struct {
		err  error
		want bool
	}{
		"nil":                   {nil, false},
		"refused":               {fmt.Errorf("%w: ConfigMap/x in kube-system", ErrRefused), true},
		"empty":                 {ErrEmpty, true},
		"keyless dry-run":       {fmt.Errorf("%w, nothing would be applied: x", ErrDryRun), true},
		"ssa dry-run":           {fmt.Errorf("applying: %w", ssaerrors.NewDryRunErr(errors.New("bad"), nil)), true},
		"invalid":               {apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "web", nil), true},
		"forbidden":             {apierrors.NewForbidden(gr, "web", errors.New("no")), false},
		"forbidden in dry-run":  {ssaerrors.NewDryRunErr(apierrors.NewForbidden(gr, "web", errors.New("no")), nil), false},
		"timeout":               {apierrors.NewTimeoutError("slow", 1), false},
		"text alone is not one": {errors.New("dry-run failed"), false},
	} {
		if got := IsPermanent(tc.err); got != tc.want {
			t.Errorf("%s: IsPermanent(%v) = %v, want %v", name, tc.err, got, tc.want)
		}
	}
}
