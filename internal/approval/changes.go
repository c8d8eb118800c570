package approval

import (
	"reflect"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/keyless-cd/keyless/internal/engine"
)

// MaxDiffBytes bounds Changes.Diff: it is shown in an Application's status.
const MaxDiffBytes = 16 << 10

// Changes is what a pending bundle changes against the last approved one:
// the objects added, changed and removed (Ref), and a unified YAML diff of
// the changed and added ones, at most MaxDiffBytes (cut at an object's
// end, with a note of what was left out).
type Changes struct {
	Added, Changed, Removed []string
	Diff                    string
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool {
	return len(c.Added) == 0 && len(c.Changed) == 0 && len(c.Removed) == 0
}

// Compare returns what next changes against prev (nil: nothing approved
// before, everything is added).
func Compare(prev, next *Bundle) (Changes, error) {
	old := map[string]*unstructured.Unstructured{}
	if prev != nil {
		for _, o := range prev.Objects {
			old[Key(o)] = o
		}
	}
	var c Changes
	var diffs []string
	seen := map[string]bool{}
	for _, o := range next.Objects {
		k := Key(o)
		seen[k] = true
		before, ok := old[k]
		switch {
		case !ok:
			c.Added = append(c.Added, Ref(o))
		case reflect.DeepEqual(before.Object, o.Object):
			continue
		default:
			c.Changed = append(c.Changed, Ref(o))
		}
		d, err := engine.UnifiedDiff(Ref(o)+" (approved)", Ref(o)+" (pending)", before, o)
		if err != nil {
			return Changes{}, err
		}
		diffs = append(diffs, d)
	}
	if prev != nil {
		for _, o := range prev.Objects {
			if !seen[Key(o)] {
				c.Removed = append(c.Removed, Ref(o))
			}
		}
	}
	c.Diff = bounded(diffs, MaxDiffBytes)
	return c, nil
}

// bounded joins diffs, stopping at the last whole one that fits in max and
// saying how many were left out.
func bounded(diffs []string, limit int) string {
	var b strings.Builder
	for i, d := range diffs {
		if b.Len()+len(d) > limit {
			b.WriteString("… and " + strconv.Itoa(len(diffs)-i) + " more object diff(s) left out; keyless approve shows them all\n")
			break
		}
		b.WriteString(d)
	}
	return b.String()
}
