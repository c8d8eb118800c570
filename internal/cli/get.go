package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

type getAppsFlags struct {
	kubeFlags
	allNamespaces bool
	output        string
}

func newGetCommand(streams IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get",
		Short: "List keyless resources",
	}
	f := &getAppsFlags{}
	apps := &cobra.Command{
		Use:     "apps",
		Aliases: []string{"app", "applications"},
		Short:   "List Applications with their sync, health, revision and last author",
		Example: `  keyless get apps -n myapp
  keyless get apps -A`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runGetApps(cmd, streams, f)
		},
	}
	f.addFlags(apps.Flags())
	apps.Flags().BoolVarP(&f.allNamespaces, "all-namespaces", "A", false, "list Applications in every namespace you can read")
	apps.Flags().StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	cmd.AddCommand(apps)
	return cmd
}

func runGetApps(cmd *cobra.Command, streams IOStreams, f *getAppsFlags) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	c, err := f.appClient()
	if err != nil {
		return err
	}
	var opts []client.ListOption
	if !f.allNamespaces {
		ns, err := f.targetNamespace()
		if err != nil {
			return fmt.Errorf("%w (or -A for all namespaces)", err)
		}
		opts = append(opts, client.InNamespace(ns))
	}
	list := &kv1.ApplicationList{}
	if err := c.List(cmd.Context(), list, opts...); err != nil {
		return fmt.Errorf("listing Applications: %w", err)
	}
	if f.output == "json" {
		return writeJSON(streams.Out, list.Items)
	}
	if len(list.Items) == 0 {
		_, err := fmt.Fprintln(streams.ErrOut, "No Applications found.")
		return err
	}
	w := tabwriter.NewWriter(streams.Out, 0, 4, 3, ' ', 0)
	if f.allNamespaces {
		_, _ = fmt.Fprint(w, "NAMESPACE\t")
	}
	_, _ = fmt.Fprintln(w, "NAME\tSYNC\tHEALTH\tREVISION\tAUTHOR\tAGE")
	for _, a := range list.Items {
		if f.allNamespaces {
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
		_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, sync, kv1.OrUnknown(a.Status.Health.Status),
			kv1.ShortSHA(a.Status.LastAppliedRevision), author, age(time.Since(a.CreationTimestamp.Time)))
	}
	return w.Flush()
}
