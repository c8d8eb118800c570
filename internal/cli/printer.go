package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/keyless-cd/keyless/internal/engine"
)

// printChanges writes one line per object ("Deployment/web configured").
func printChanges(w io.Writer, res *engine.Result, suffix string) {
	for _, c := range res.Changes {
		_, _ = fmt.Fprintf(w, "%s %s%s\n", c.Ref, c.Action, suffix)
	}
}

// summary is "4 objects: 1 created, 1 configured, 2 unchanged, 0 pruned".
func summary(res *engine.Result) string {
	parts := []string{}
	for _, a := range []engine.Action{engine.ActionCreated, engine.ActionConfigured, engine.ActionUnchanged, engine.ActionPruned, engine.ActionPruneSkipped, engine.ActionStale} {
		if n := res.Count(a); n > 0 || a == engine.ActionCreated || a == engine.ActionConfigured || a == engine.ActionPruned {
			parts = append(parts, fmt.Sprintf("%d %s", n, a))
		}
	}
	return fmt.Sprintf("%d objects: %s", len(res.Changes), strings.Join(parts, ", "))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func checkOutput(o string) error {
	if o != "text" && o != "json" {
		return fmt.Errorf("--output %q: want text or json", o)
	}
	return nil
}
