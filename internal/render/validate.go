package render

import (
	"errors"
	"fmt"
	"strings"

	"github.com/keyless-cd/keyless/internal/lifecycle"
)

// validate checks what every object needs before it can be applied: apiVersion,
// kind and metadata.name, and that no object appears twice. All problems are
// reported at once, each naming the object and its source.
func validate(objs []sourced, namespace string) error {
	var problems []string
	seen := make(map[string]string, len(objs))
	for _, o := range objs {
		u := o.obj
		id := u.GetKind() + "/" + u.GetName()
		switch {
		case u.GetAPIVersion() == "":
			problems = append(problems, fmt.Sprintf("%s: %s has no apiVersion", o.source, id))
			continue
		case u.GetKind() == "":
			problems = append(problems, fmt.Sprintf("%s: object %q has no kind", o.source, u.GetName()))
			continue
		case u.GetName() == "" && u.GetGenerateName() != "" && lifecycle.IsHook(u):
			// A hook is created anew for each sync; it need not have a name.
			continue
		case u.GetName() == "":
			msg := fmt.Sprintf("%s: %s has no metadata.name", o.source, u.GetKind())
			if u.GetGenerateName() != "" {
				msg += " (generateName is allowed on hooks only, e.g. with argocd.argoproj.io/hook: PreSync: keyless must know every other object's name to track and prune it)"
			}
			problems = append(problems, msg)
			continue
		}
		ns := u.GetNamespace()
		if ns == "" {
			ns = namespace
		}
		key := u.GroupVersionKind().Group + "/" + u.GetKind() + "/" + ns + "/" + u.GetName()
		if first, dup := seen[key]; dup {
			problems = append(problems, fmt.Sprintf("%s: %s is defined twice (first at %s)", o.source, id, first))
			continue
		}
		seen[key] = o.source
	}
	if len(problems) > 0 {
		return errors.New("invalid manifests:\n  " + strings.Join(problems, "\n  "))
	}
	return nil
}
