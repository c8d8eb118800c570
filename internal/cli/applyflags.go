package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/keyless-cd/keyless/internal/engine"
)

// convergeFlags are the flags apply and deploy share: how to converge.
type convergeFlags struct {
	name       string
	prune      bool
	allowEmpty bool
	wait       time.Duration
	dryRun     bool
	output     string
	// hookTimeout bounds each wave of a sync with phases or waves.
	hookTimeout time.Duration
}

func (f *convergeFlags) addFlags(fl *pflag.FlagSet) {
	fl.StringVar(&f.name, "name", "", "inventory name, used to find what to prune (default DIR's base name)")
	fl.BoolVar(&f.prune, "prune", false, "delete objects of the last run that are no longer rendered")
	fl.BoolVar(&f.allowEmpty, "allow-empty", false, "allow an empty render (with --prune it deletes everything of this inventory)")
	fl.DurationVar(&f.wait, "wait", 0, "wait up to this long for every object to be ready (e.g. 2m; 0 = do not wait)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "show what would change (server-side dry-run) and write nothing")
	fl.DurationVar(&f.hookTimeout, "hook-timeout", engine.DefaultStepTimeout, "how long each wave's objects and hooks (a migration Job…) may take to become ready before the sync stops")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
}

// options are the engine options for namespace and inventory name, with
// progress lines on errOut while waiting (text output).
func (f *convergeFlags) options(streams IOStreams, namespace, name string, started time.Time) engine.ApplyOptions {
	opts := engine.ApplyOptions{Namespace: namespace, Name: name, Prune: f.prune, AllowEmpty: f.allowEmpty, DryRun: f.dryRun, Wait: f.wait, StepTimeout: f.hookTimeout}
	if f.output == "text" {
		opts.OnStep = func(p engine.StepProgress) {
			if len(p.Waiting) == 0 {
				_, _ = fmt.Fprintf(streams.ErrOut, "  %6.1fs %s wave %d: applying\n", time.Since(started).Seconds(), p.Phase, p.Wave)
				return
			}
			names := make([]string, len(p.Waiting))
			for i, r := range p.Waiting {
				names[i] = r.String()
			}
			_, _ = fmt.Fprintf(streams.ErrOut, "  %6.1fs %s wave %d: waiting for %s\n", time.Since(started).Seconds(), p.Phase, p.Wave, strings.Join(names, ", "))
		}
	}
	if f.output == "text" && f.wait > 0 {
		opts.Progress = func(s engine.ObjectStatus) {
			_, _ = fmt.Fprintf(streams.ErrOut, "  %6.1fs %s\n", time.Since(started).Seconds(), s)
		}
	}
	return opts
}

// printResult writes res as JSON (with extra fields) or as one line per
// object and a summary naming who applied it.
func (f *convergeFlags) printResult(streams IOStreams, res *engine.Result, extra map[string]any, summaryPrefix string, started time.Time) error {
	if res == nil {
		return nil
	}
	if f.output == "json" {
		if extra == nil {
			return writeJSON(streams.Out, res)
		}
		extra["result"] = res
		return writeJSON(streams.Out, extra)
	}
	suffix := ""
	if f.dryRun {
		suffix = " (dry run)"
		for _, c := range res.Changes {
			_, _ = fmt.Fprint(streams.Out, c.Diff)
		}
	}
	printChanges(streams.Out, res, suffix)
	_, err := fmt.Fprintf(streams.Out, "%s: %s in %s\n", summaryPrefix, summary(res), time.Since(started).Round(time.Millisecond))
	return err
}
