package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/keyless-cd/keyless/internal/engine"
)

// printChanges writes one line per object ("Deployment/web configured",
// with "[PreSync, wave -1]" when the set has phases or waves), then each
// hook run, skipped object and warning.
func printChanges(w io.Writer, res *engine.Result, suffix string) {
	for _, c := range res.Changes {
		place := ""
		if c.Phase != "" {
			place = fmt.Sprintf(" [%s, wave %d]", c.Phase, c.Wave)
		}
		_, _ = fmt.Fprintf(w, "%s %s%s%s\n", c.Ref, c.Action, place, suffix)
	}
	for _, h := range res.Hooks {
		line := fmt.Sprintf("%s hook %s [wave %d] %s in %s", h.Phase, h.Ref, h.Wave, h.Result, h.Duration)
		if h.Message != "" && h.Result != engine.HookSucceeded {
			line += ": " + h.Message
		}
		if h.Deleted {
			line += " (deleted by its delete policy)"
		}
		_, _ = fmt.Fprintln(w, line)
	}
	for _, s := range res.Skipped {
		_, _ = fmt.Fprintf(w, "%s skipped: %s\n", s.Object, s.Reason)
	}
	for _, warning := range res.Warnings {
		_, _ = fmt.Fprintf(w, "warning: %s\n", warning)
	}
}

// summary is "4 objects: 1 created, 1 configured, 2 unchanged, 0 pruned".
func summary(res *engine.Result) string {
	parts := []string{}
	for _, a := range []engine.Action{engine.ActionCreated, engine.ActionConfigured, engine.ActionReplaced, engine.ActionUnchanged, engine.ActionPruned, engine.ActionPruneSkipped, engine.ActionStale, engine.ActionHook} {
		if n := res.Count(a); n > 0 || a == engine.ActionCreated || a == engine.ActionConfigured || a == engine.ActionPruned {
			parts = append(parts, fmt.Sprintf("%d %s", n, a))
		}
	}
	out := fmt.Sprintf("%d objects: %s", len(res.Changes), strings.Join(parts, ", "))
	if len(res.Hooks) > 0 {
		out += fmt.Sprintf("; %d hook runs", len(res.Hooks))
	}
	return out
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
