package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/gitsource"
	"github.com/keyless-cd/keyless/internal/ui"
)

type getAppsFlags struct {
	kubeFlags
	allNamespaces bool
	output        string
}

// Output formats of `keyless get applications`.
const (
	getOutputText = "text"
	getOutputWide = "wide"
	getOutputJSON = "json"
)

func newGetCommand(streams IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get",
		Short: "List keyless resources",
	}
	f := &getAppsFlags{}
	apps := &cobra.Command{
		Use: "applications [NAME]",
		// kubectl's names for the resource: plural, singular, the CRD's
		// shortNames (kapp, kapps) and the short forms people type.
		Aliases: []string{"application", "apps", "app", "kapps", "kapp"},
		Short:   "List Applications with their sync, health, revision and last author",
		Long: `List the Applications of a namespace (-n, else the context's), of every namespace
you can read (-A), or the one named NAME. "application", "apps", "app", "kapps" and
"kapp" are the same command, as with kubectl.

Columns: NAME, SYNC, HEALTH, REVISION (short), AUTHOR (of the last sync) and AGE.
-o wide adds SOURCE (repoURL and path, or repoURL and chart), TARGET (targetRevision),
LAST SYNC (how long ago the last sync finished) and MESSAGE (why the Application is not
Healthy or not Ready). -o json prints the Applications as JSON.`,
		Example: `  keyless get apps -n myapp
  keyless get apps web -n myapp -o wide
  keyless get applications -A`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGetApps(cmd, streams, f, args)
		},
	}
	f.addFlags(apps.Flags())
	apps.Flags().BoolVarP(&f.allNamespaces, "all-namespaces", "A", false, "list Applications in every namespace you can read")
	apps.Flags().StringVarP(&f.output, "output", "o", getOutputText, "output format: text, wide (adds SOURCE, TARGET, LAST SYNC, MESSAGE) or json")
	cmd.AddCommand(apps)
	return cmd
}

func runGetApps(cmd *cobra.Command, streams IOStreams, f *getAppsFlags, args []string) error {
	if f.output != getOutputText && f.output != getOutputWide && f.output != getOutputJSON {
		return fmt.Errorf("--output %q: want text, wide or json", f.output)
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
	if len(args) == 1 {
		app := &kv1.Application{}
		if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: ns, Name: args[0]}, app); err != nil {
			return fmt.Errorf("getting Application %s/%s: %w", ns, args[0], err)
		}
		items = []kv1.Application{*app}
	} else {
		list := &kv1.ApplicationList{}
		if err := c.List(cmd.Context(), list, client.InNamespace(ns)); err != nil {
			return fmt.Errorf("listing Applications: %w", err)
		}
		items = list.Items
	}
	if f.output == getOutputJSON {
		if len(args) == 1 {
			return writeJSON(streams.Out, items[0])
		}
		return writeJSON(streams.Out, items)
	}
	if len(items) == 0 {
		_, err := fmt.Fprintln(streams.ErrOut, "No Applications found.")
		return err
	}
	return printApps(streams.Out, items, f.allNamespaces, f.output == getOutputWide, time.Now())
}

// printApps writes the Applications as kubectl prints a table, with the
// NAMESPACE column for -A and the wide columns for -o wide; ages are
// relative to now.
func printApps(out io.Writer, items []kv1.Application, namespaces, wide bool, now time.Time) error {
	w := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
	if namespaces {
		_, _ = fmt.Fprint(w, "NAMESPACE\t")
	}
	_, _ = fmt.Fprint(w, "NAME\tSYNC\tHEALTH\tREVISION\tAUTHOR\tAGE")
	if wide {
		_, _ = fmt.Fprint(w, "\tSOURCE\tTARGET\tLAST SYNC\tMESSAGE")
	}
	_, _ = fmt.Fprintln(w)
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
		_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s", a.Name, sync, kv1.OrUnknown(a.Status.Health.Status),
			kv1.ShortSHA(a.Status.LastAppliedRevision), author, ui.Age(now, a.CreationTimestamp.Time))
		if wide {
			lastSync := ""
			if len(a.Status.History) > 0 {
				lastSync = ui.Age(now, a.Status.History[0].FinishedAt.Time)
			}
			source, target := sourceOf(a)
			_, _ = fmt.Fprintf(w, "\t%s\t%s\t%s\t%s", source, target, lastSync, messageOf(a))
		}
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

// messageOf says why an Application is not Healthy or not Ready: the health
// message, else the Ready condition's message when it is not True, on one
// line.
func messageOf(a *kv1.Application) string {
	m := a.Status.Health.Message
	if c := apimeta.FindStatusCondition(a.Status.Conditions, kv1.ReadyCondition); m == "" && c != nil && c.Status != metav1.ConditionTrue {
		m = c.Message
	}
	return strings.Join(strings.Fields(m), " ")
}
