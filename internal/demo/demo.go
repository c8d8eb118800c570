// Package demo runs keyless's whole credential-free pipeline on one machine:
// a local control plane, a Git server, a CI OIDC issuer, keyless's namespaced
// install and its controller, then the steps of the seed documents — import,
// CI bump, self-heal, prune, OIDC deploy, audit, history — each checked, timed
// and shown with its evidence. `keyless-dev demo` (and `make demo`) run it; its
// test runs it in `make test`.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// Keyless runs one keyless command line in-process, as a person or a CI job
// would, with vars as the job's environment (nil: none). It returns stdout,
// stderr and the exit code.
type Keyless func(ctx context.Context, vars map[string]string, args ...string) (stdout, stderr string, code int)

// Options configure Run.
type Options struct {
	// Out receives the progress lines and the summary.
	Out io.Writer
	// Keyless runs keyless commands (required).
	Keyless Keyless
	// Assets is the folder with the control-plane binaries. Default
	// $KUBEBUILDER_ASSETS, else ./bin/k8s.
	Assets string
	// Dir holds everything the demo writes. Default: a new temporary folder,
	// removed at the end unless Keep.
	Dir string
	// Keep leaves everything running after the steps, prints how to explore
	// it, and waits for ctx to end (Ctrl-C) before cleaning up.
	Keep bool
	// StepTimeout bounds each wait. Default 2m.
	StepTimeout time.Duration
	// Command is how the explore hints (--keep) invoke keyless, e.g.
	// "bin/keyless". Default "keyless".
	Command string
	// DevCommand is how they invoke keyless-dev (for dev-issuer token),
	// e.g. "bin/keyless-dev". Default "keyless-dev".
	DevCommand string
}

// StepResult is one step's outcome.
type StepResult struct {
	Title    string
	OK       bool
	Duration time.Duration
	Evidence []string
	Err      string
}

// Report is the outcome of a demo run.
type Report struct {
	Steps []StepResult
}

// OK reports whether every step passed.
func (r *Report) OK() bool {
	for _, s := range r.Steps {
		if !s.OK {
			return false
		}
	}
	return len(r.Steps) > 0
}

// ErrFailed is returned when a step failed.
var ErrFailed = errors.New("the demo failed")

type step struct {
	title string
	run   func(ctx context.Context) ([]string, error)
}

// Run starts the demo environment, walks the steps and prints a summary. It
// returns the report, and ErrFailed (or the setup's error) unless every step
// passed. Everything started is stopped before it returns.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if opts.Keyless == nil {
		return nil, errors.New("demo: Options.Keyless is required")
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.StepTimeout == 0 {
		opts.StepTimeout = 2 * time.Minute
	}
	if opts.Command == "" {
		opts.Command = "keyless"
	}
	if opts.DevCommand == "" {
		opts.DevCommand = "keyless-dev"
	}
	e := &env{opts: opts, dir: opts.Dir}
	if e.dir == "" {
		d, err := os.MkdirTemp("", "keyless-demo-")
		if err != nil {
			return nil, err
		}
		e.dir = d
	} else if err := os.MkdirAll(e.dir, 0o700); err != nil {
		return nil, err
	}
	// Processes always stop at the end; files stay only after a failure (for
	// its logs), never after Ctrl-C.
	keepFiles := false
	defer func() { e.teardown(keepFiles) }()

	rep := &Report{}
	_, _ = fmt.Fprintf(opts.Out, "keyless-dev demo: the credential-free pipeline, on loopback (files in %s)\n\n", e.dir)
	setup := e.runStep(ctx, rep, 0, step{"Start: CI issuer, control plane, Git server, keyless install, controller", e.setup})
	if !setup.OK {
		keepFiles = ctx.Err() == nil
		e.printSummary(ctx, rep)
		return rep, fmt.Errorf("%w: setup: %s", ErrFailed, setup.Err)
	}
	steps := []step{
		{"Application from the seed's Argo CD YAML (keyless import argocd) → Synced/Healthy", e.stepImport},
		{"CI bumps the tag (keyless bump) → webhook → new version running", e.stepBump},
		{"Someone kubectl-edits the Deployment → reverted", e.stepDrift},
		{"A file removed in Git → pruned; an empty render → refused, nothing pruned", e.stepPrune},
		{"A CI job deploys its migration with its own OIDC token (keyless deploy); others refused", e.stepOIDC},
		{"keyless audit: stored kubeconfig found; demo repo and cluster clean", e.stepAudit},
		{"Who did what: keyless get apps, keyless history, the audit trail", e.stepHistory},
	}
	for i, s := range steps {
		if ctx.Err() != nil {
			rep.Steps = append(rep.Steps, StepResult{Title: s.title, Err: "interrupted"})
			continue
		}
		e.runStep(ctx, rep, i+1, s)
	}
	e.printSummary(ctx, rep)
	if !rep.OK() {
		keepFiles = ctx.Err() == nil
		return rep, ErrFailed
	}
	if opts.Keep && ctx.Err() == nil {
		e.printExplore()
		<-ctx.Done()
		_, _ = fmt.Fprintln(opts.Out, "\ncleaning up…")
	}
	return rep, nil
}

// runStep runs one step with its timing and prints its line and evidence.
func (e *env) runStep(ctx context.Context, rep *Report, n int, s step) StepResult {
	label := fmt.Sprintf("%d.", n)
	if n == 0 {
		label = "▶"
	}
	_, _ = fmt.Fprintf(e.opts.Out, "  %s %s …\n", label, s.title)
	start := time.Now()
	ev, err := s.run(ctx)
	res := StepResult{Title: s.title, OK: err == nil, Duration: time.Since(start), Evidence: ev}
	mark := "✓"
	if err != nil {
		res.Err = err.Error()
		mark = "✗"
	}
	_, _ = fmt.Fprintf(e.opts.Out, "%s %s %s (%s)\n", mark, label, s.title, res.Duration.Round(100*time.Millisecond))
	for _, line := range ev {
		_, _ = fmt.Fprintf(e.opts.Out, "      %s\n", line)
	}
	if err != nil {
		_, _ = fmt.Fprintf(e.opts.Out, "      error: %s\n", res.Err)
	}
	_, _ = fmt.Fprintln(e.opts.Out)
	if n > 0 {
		rep.Steps = append(rep.Steps, res)
	}
	return res
}

func (e *env) printSummary(ctx context.Context, rep *Report) {
	w := tabwriter.NewWriter(e.opts.Out, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(w, "STEP\tRESULT\tTIME\tWHAT")
	for i, s := range rep.Steps {
		result := "passed"
		if !s.OK {
			result = "FAILED"
		}
		_, _ = fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", i+1, result, s.Duration.Round(100*time.Millisecond), s.Title)
	}
	_ = w.Flush()
	switch {
	case rep.OK():
		_, _ = fmt.Fprintf(e.opts.Out, "\nall %d steps passed: no cluster credential was stored anywhere.\n", len(rep.Steps))
	case ctx.Err() != nil:
		_, _ = fmt.Fprintln(e.opts.Out, "\ninterrupted: every process is stopped and every file removed.")
	default:
		_, _ = fmt.Fprintf(e.opts.Out, "\nsome steps failed: every process is stopped; the files are kept in %s for their logs (controller.log, cluster/logs)\n", e.dir)
	}
}

// printExplore tells how to look around while --keep holds everything up.
func (e *env) printExplore() {
	_, _ = fmt.Fprintf(e.opts.Out, `
Everything is still running (--keep). Explore, then press Ctrl-C to stop and clean up:

  export KUBECONFIG=%s          # cluster admin
  %[13]s get apps -n %[2]s
  %[13]s history %[3]s -n %[4]s
  %[13]s audit cluster -A
  %[13]s ui -n %[2]s --open     # the dashboard, read as the kubeconfig's identity
  %[19]s --kubeconfig %[5]s auth can-i --list -n %[6]s   # what the controller may do

  Git repository   %s  (token: %s)
  webhook          %s/hooks/gitlab  (X-Gitlab-Token: %s)
  CI issuer        %[11]s  (CA %[12]s; mint a token: %[20]s dev-issuer token --issuer %[11]s --ca %[12]s --gitlab %[14]s --project-id %[15]d --ref main --audience %[16]s)
  controller       audit trail %[17]s, log %[18]s
`, e.cluster.KubeconfigPath, appNS, appName, appNS, e.ctrlConfig, appNS,
		e.repoURL, e.gitTok, e.hookURL, e.hookSecret,
		e.issuer.URL(), e.caFile, e.opts.Command, project, projectID, audience,
		e.auditPath, e.dir+"/controller.log", e.kubectl(), e.opts.DevCommand)
}

// kubectl is the kubectl built with the control plane when there is one.
func (e *env) kubectl() string {
	p := filepath.Join(e.opts.Assets, "kubectl")
	if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
		return p
	}
	return "kubectl"
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
