package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/keyless-cd/keyless/internal/engine"
	"github.com/keyless-cd/keyless/internal/render"
)

// errCheckNeedsNamespace: the guards judge objects against the namespace
// they deploy into, which only -n says without a cluster.
var errCheckNeedsNamespace = errors.New("--check needs -n NAMESPACE, the namespace the objects deploy into")

// reportRefusals writes to w what the controller's guards (engine.Check,
// as `keyless deploy` and the controller run them: the RBAC guard
// included) would refuse of res in namespace, one line an object with its
// source, and returns an error wrapping engine.ErrRefused when check is set
// and anything would be refused. Without a namespace it says how to get the
// report.
func reportRefusals(w io.Writer, res *render.Result, namespace string, check bool) error {
	if namespace == "" {
		_, err := fmt.Fprintln(w, "not checked against keyless's guards: pass -n NAMESPACE to list the objects keyless apply and the controller would refuse")
		return err
	}
	refused, err := engine.Check(res.Objects, engine.CheckOptions{Namespace: namespace, Source: res.Source})
	if err != nil || len(refused) == 0 {
		return err
	}
	objects, rbac := map[engine.ObjectRef]bool{}, false
	for _, r := range refused {
		objects[r.Object] = true
		rbac = rbac || r.Guard == engine.GuardRBAC
	}
	who := "keyless apply and the controller"
	if rbac {
		who = "the controller and keyless deploy (keyless apply leaves RBAC to the API server's checks on your identity)"
	}
	if _, err := fmt.Fprintf(w, "%d objects would be refused by %s; nothing of this render would be applied:\n", len(objects), who); err != nil {
		return err
	}
	for _, r := range refused {
		if _, err := fmt.Fprintf(w, "  %s\n", r.Line()); err != nil {
			return err
		}
	}
	if check {
		return &ExitError{Code: 1, Err: fmt.Errorf("%w: %d objects (--check)", engine.ErrRefused, len(objects))}
	}
	return nil
}
