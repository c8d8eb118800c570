package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/gitsource"
	"github.com/keyless-cd/keyless/internal/ui"
)

type getAppsFlags struct {
	kubeFlags
	allNamespaces bool
	watch         bool
	noHeaders     bool
	// print holds -o and the printer flags of kubectl (--template,
	// --show-managed-fields, --allow-missing-template-keys); -o "" and
	// wide are keyless's table, custom-columns kubectl's.
	print *genericclioptions.PrintFlags
}

// Output formats of `keyless get applications` besides cli-runtime's
// (json, yaml, kyaml, name, jsonpath=…, go-template=…).
const (
	getOutputTable         = ""
	getOutputWide          = "wide"
	getOutputCustomColumns = customColumnsFormat
)

func newGetCommand(streams IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get",
		Short: "List keyless resources",
	}
	f := &getAppsFlags{print: genericclioptions.NewPrintFlags("")}
	apps := &cobra.Command{
		Use: "applications [NAME]",
		// kubectl's names for the resource: plural, singular, the CRD's
		// shortNames (kapp, kapps) and the short forms people type.
		Aliases: []string{"application", "apps", "app", "kapps", "kapp"},
		Short:   "List Applications with their sync, health, revision and last author",
		Long: `List the Applications of a namespace (-n, else the context's), of every namespace
you can read (-A), or the one named NAME. "application", "apps", "app", "kapps" and
"kapp" are the same command, as with kubectl.

Columns: NAME, READY (the Ready condition: True, False, Unknown), SYNC, HEALTH,
REVISION (short), AUTHOR (of the last sync), AGE and STATUS (the Ready condition's
message; a failure's reason first, e.g. "RenderFailed: deploy/web.yaml:3: …"; cut at
60 characters). -o wide adds SOURCE (repoURL and path, or repoURL and chart), TARGET
(targetRevision) and LAST SYNC (how long ago the last sync finished), and prints STATUS
whole.

The other formats are kubectl's: -o json|yaml print the Application named, else a
List (kind List, apiVersion v1) of them; -o name prints application.keyless.dev/NAME;
-o jsonpath=TEMPLATE, -o go-template=TEMPLATE and -o custom-columns=HEADER:PATH,…
print fields (and the -file variants read the template from a file).

-w (--watch) prints the table, then a line per change until interrupted; with
-o json, yaml, name, … each changed Application.`,
		Example: `  keyless get apps -n myapp
  keyless get apps web -n myapp -o wide
  keyless get applications -A
  keyless get apps -n myapp -w
  keyless get apps web -n myapp -o yaml
  keyless get apps -A -o jsonpath='{range .items[*]}{.metadata.name}{"\t"}{.status.sync.status}{"\n"}{end}'
  keyless get apps -n myapp -o custom-columns=NAME:.metadata.name,REVISION:.status.lastAppliedRevision`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGetApps(cmd, streams, f, args)
		},
	}
	f.addFlags(apps.Flags())
	apps.Flags().BoolVarP(&f.allNamespaces, "all-namespaces", "A", false, "list Applications in every namespace you can read")
	apps.Flags().BoolVarP(&f.watch, "watch", "w", false, "after the list, print a line (or an object, with -o json, yaml, …) per change until interrupted")
	apps.Flags().BoolVar(&f.noHeaders, "no-headers", false, "print the table (and custom-columns) without its header")
	f.print.AddFlags(apps)
	apps.Flags().Lookup("output").Usage = "output format: " + strings.Join(getOutputFormats(f.print), ", ") + " (default a table)"
	cmd.AddCommand(apps)
	return cmd
}

// getOutputFormats are the -o values of get applications: the table's
// wide, cli-runtime's and kubectl's custom columns.
func getOutputFormats(p *genericclioptions.PrintFlags) []string {
	return append(append([]string{getOutputWide}, p.AllowedFormats()...), customColumnsFormats...)
}

func runGetApps(cmd *cobra.Command, streams IOStreams, f *getAppsFlags, args []string) error {
	p, err := f.toPrinter()
	if err != nil {
		return err
	}
	if len(args) == 1 && f.allNamespaces {
		return fmt.Errorf("application %q: a name cannot be looked up across all namespaces: pass -n instead of -A", args[0])
	}
	c, err := f.appClient()
	if err != nil {
		return err
	}
	var ns string
	if !f.allNamespaces {
		if ns, err = f.targetNamespace(); err != nil {
			return fmt.Errorf("%w (or -A for all namespaces)", err)
		}
	}
	var items []kv1.Application
	resourceVersion := ""
	if len(args) == 1 {
		app := &kv1.Application{}
		if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: ns, Name: args[0]}, app); err != nil {
			return fmt.Errorf("getting Application %s/%s: %w", ns, args[0], err)
		}
		items, resourceVersion = []kv1.Application{*app}, app.ResourceVersion
	} else {
		list := &kv1.ApplicationList{}
		if err := c.List(cmd.Context(), list, client.InNamespace(ns)); err != nil {
			return fmt.Errorf("listing Applications: %w", err)
		}
		items, resourceVersion = list.Items, list.ResourceVersion
	}
	switch {
	case p.table != nil && len(items) == 0:
		if _, err := fmt.Fprintln(streams.ErrOut, "No Applications found."); err != nil {
			return err
		}
	case p.table != nil:
		if err := printApps(streams.Out, items, *p.table, time.Now()); err != nil {
			return err
		}
	case f.watch:
		// As kubectl: a watch prints objects one by one, not a List.
		for i := range items {
			if err := p.printObject(streams.Out, &items[i]); err != nil {
				return err
			}
		}
	case len(args) == 1:
		if err := p.printObject(streams.Out, &items[0]); err != nil {
			return err
		}
	default:
		if err := p.printList(streams.Out, items); err != nil {
			return err
		}
	}
	if !f.watch {
		return nil
	}
	name := ""
	if len(args) == 1 {
		name = args[0]
	}
	return watchApps(cmd.Context(), c, streams.Out, p, ns, name, resourceVersion)
}

// appPrinter prints Applications as -o says: keyless's table (table set)
// or a cli-runtime (or kubectl custom-columns) printer.
type appPrinter struct {
	table   *tableOptions
	printer printers.ResourcePrinter
}

// toPrinter picks the printer for -o, or says which formats there are.
func (f *getAppsFlags) toPrinter() (*appPrinter, error) {
	out := *f.print.OutputFormat
	switch {
	case out == getOutputTable || out == getOutputWide:
		return &appPrinter{table: &tableOptions{namespaces: f.allNamespaces, wide: out == getOutputWide, noHeaders: f.noHeaders}}, nil
	case strings.HasPrefix(out, getOutputCustomColumns):
		p, err := newCustomColumnsPrinter(out, f.noHeaders)
		if err != nil {
			return nil, fmt.Errorf("--output %s: %w", out, err)
		}
		return &appPrinter{printer: p}, nil
	}
	p, err := f.print.ToPrinter()
	if genericclioptions.IsNoCompatiblePrinterError(err) {
		return nil, fmt.Errorf("--output %q: want one of %s", out, strings.Join(getOutputFormats(f.print), ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("--output %s: %w", out, err)
	}
	return &appPrinter{printer: p}, nil
}

// printObject prints one Application (a row without header for the table).
func (p *appPrinter) printObject(out io.Writer, app *kv1.Application) error {
	if p.table != nil {
		o := *p.table
		o.noHeaders = true
		return printApps(out, []kv1.Application{*app}, o, time.Now())
	}
	u, err := toUnstructured(app)
	if err != nil {
		return err
	}
	return p.printer.PrintObj(u, out)
}

// printList prints the Applications as kubectl prints several objects: one
// List (kind List, apiVersion v1).
func (p *appPrinter) printList(out io.Writer, items []kv1.Application) error {
	list := &unstructured.UnstructuredList{Object: map[string]any{
		"apiVersion": "v1", "kind": "List", "metadata": map[string]any{"resourceVersion": ""},
	}}
	for i := range items {
		u, err := toUnstructured(&items[i])
		if err != nil {
			return err
		}
		list.Items = append(list.Items, *u)
	}
	return p.printer.PrintObj(list, out)
}

// toUnstructured is app as the API server serves it, apiVersion and kind
// included (a typed client leaves them empty).
func toUnstructured(app *kv1.Application) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(app)
	if err != nil {
		return nil, fmt.Errorf("application %s/%s: %w", app.Namespace, app.Name, err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(kv1.GroupVersion.WithKind("Application"))
	return u, nil
}

// watchApps prints each change to the Applications of ns (all with ""),
// or to the one named name, from resourceVersion on, until ctx ends. A
// watch the server closes is resumed from the last version seen.
func watchApps(ctx context.Context, c client.WithWatch, out io.Writer, p *appPrinter, ns, name, resourceVersion string) error {
	opts := []client.ListOption{client.InNamespace(ns)}
	if name != "" {
		opts = append(opts, client.MatchingFields{"metadata.name": name})
	}
	for {
		w, err := c.Watch(ctx, &kv1.ApplicationList{}, append(opts, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: resourceVersion, AllowWatchBookmarks: true}})...)
		if err != nil {
			return interrupted(ctx, fmt.Errorf("watching Applications: %w", err))
		}
		resourceVersion, err = printEvents(ctx, w, out, p, resourceVersion)
		w.Stop()
		if err != nil || ctx.Err() != nil {
			return err
		}
	}
}

// interrupted is nil once ctx ended (a watch ends so, as with kubectl),
// else err.
func interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil //nolint:nilerr // an interrupted watch ends successfully, as kubectl's
	}
	return err
}

// printEvents prints the events of w until it closes or ctx ends, and
// returns the last resource version seen.
func printEvents(ctx context.Context, w watch.Interface, out io.Writer, p *appPrinter, resourceVersion string) (string, error) {
	for {
		select {
		case <-ctx.Done():
			return resourceVersion, nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return resourceVersion, nil
			}
			if ev.Type == watch.Error {
				return resourceVersion, fmt.Errorf("watching Applications: %w (run the command again)", apierrors.FromObject(ev.Object))
			}
			app, ok := ev.Object.(*kv1.Application)
			if !ok {
				continue
			}
			resourceVersion = app.ResourceVersion
			if ev.Type == watch.Bookmark {
				continue
			}
			if err := p.printObject(out, app); err != nil {
				return resourceVersion, err
			}
		}
	}
}

// tableOptions are the table's columns: NAMESPACE for -A, the wide ones
// for -o wide, and no header line for --no-headers (and watch rows).
type tableOptions struct {
	namespaces, wide, noHeaders bool
}

// printApps writes the Applications as kubectl prints a table, with the
// NAMESPACE column for -A and the wide columns for -o wide; ages are
// relative to now.
func printApps(out io.Writer, items []kv1.Application, o tableOptions, now time.Time) error {
	namespaces, wide := o.namespaces, o.wide
	w := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
	if !o.noHeaders {
		if namespaces {
			_, _ = fmt.Fprint(w, "NAMESPACE\t")
		}
		_, _ = fmt.Fprint(w, "NAME\tREADY\tSYNC\tHEALTH\tREVISION\tAUTHOR\tAGE")
		if wide {
			_, _ = fmt.Fprint(w, "\tSOURCE\tTARGET\tLAST SYNC\tHELD")
		}
		_, _ = fmt.Fprint(w, "\tSTATUS")
		_, _ = fmt.Fprintln(w)
	}
	for i := range items {
		a := &items[i]
		if namespaces {
			_, _ = fmt.Fprintf(w, "%s\t", a.Namespace)
		}
		author := ""
		if len(a.Status.History) > 0 {
			author = a.Status.History[0].Author
		}
		sync := kv1.OrUnknown(a.Status.Sync.Status)
		if op := a.Status.Operation; op != nil {
			// A sync with phases is running: say where it is.
			sync = fmt.Sprintf("Syncing (%s wave %d)", op.Phase, op.Wave)
		}
		_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s", a.Name, readyOf(a), sync, kv1.OrUnknown(a.Status.Health.Status),
			kv1.ShortSHA(a.Status.LastAppliedRevision), author, ui.Age(now, a.CreationTimestamp.Time))
		status := statusOf(a)
		if wide {
			lastSync := ""
			if len(a.Status.History) > 0 {
				lastSync = ui.Age(now, a.Status.History[0].FinishedAt.Time)
			}
			source, target := sourceOf(a)
			_, _ = fmt.Fprintf(w, "\t%s\t%s\t%s\t%s", source, target, lastSync, orDash(a.Held(now)))
		} else {
			status = firstLine(status, statusColumnWidth)
		}
		_, _ = fmt.Fprintf(w, "\t%s", status)
		_, _ = fmt.Fprintln(w)
	}
	return w.Flush()
}

// sourceOf is the rendered source in one cell, "REPO PATH" or "REPO CHART"
// with "(+N)" for the other spec.sources (credentials in the URL redacted),
// and its targetRevision.
func sourceOf(a *kv1.Application) (source, target string) {
	spec := a.Spec.DeepCopy()
	if spec.UseRenderedSource() != nil {
		return "(invalid spec.sources)", ""
	}
	src := spec.Source
	s := gitsource.Redact(src.RepoURL)
	switch {
	case src.Chart != "":
		s += " " + src.Chart
	case src.Path != "":
		s += " " + src.Path
	}
	if n := len(spec.Sources); n > 1 {
		s += fmt.Sprintf(" (+%d)", n-1)
	}
	return s, src.TargetRevision
}

// statusColumnWidth is where the table's STATUS is cut (-o wide prints it whole).
const statusColumnWidth = 60

// readyOf is the READY column, as Flux's: the Ready condition's status
// (True, False, Unknown before the controller's first pass).
func readyOf(a *kv1.Application) string {
	if c := apimeta.FindStatusCondition(a.Status.Conditions, kv1.ReadyCondition); c != nil {
		return string(c.Status)
	}
	return string(metav1.ConditionUnknown)
}

// statusOf is the STATUS column, on one line: the Ready condition's message
// ("applied revision …", what is rolling out), prefixed with its reason
// when it is a failure ("RenderFailed: deploy/web.yaml:3: …"), else the
// health message.
func statusOf(a *kv1.Application) string {
	state, m, failing := a.ReadyState()
	if failing {
		m = state + ": " + m
	}
	if m == "" {
		m = a.Status.Health.Message
	}
	return strings.Join(strings.Fields(m), " ")
}
