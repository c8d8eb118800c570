package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyless-cd/keyless/internal/install"
)

type installNamespaceFlags struct {
	renderer            renderFlags
	kube                kubeFlags
	manifests           string
	controllerNamespace string
	podSecurity         string
	export              bool
	dryRun              bool
}

func newInstallNamespaceCommand(streams IOStreams) *cobra.Command {
	f := &installNamespaceFlags{}
	cmd := &cobra.Command{
		Use:   "namespace NS --manifests DIR [--root ROOT] [--pod-security LEVEL] [--export | --dry-run]",
		Short: "Install one managed namespace with a deployer Role as small as its manifests",
		Long: `Render DIR as the controller would (same renderer, limits and Helm options) and write
namespace NS's install: the keyless-deployer Role lists exactly the kinds (API group and
resource) the manifests contain, with the verbs apply and prune need (get, list, create,
patch, update, delete), and the controller's Role watches exactly those kinds. A
cluster-scoped object in the manifests is refused, naming its file. The same derivation as
keyless oidc rbac, for the pull path.

Without --export it creates NS when missing, labels it for Pod Security (--pod-security:
restricted, baseline or privileged; default restricted) and applies the objects with the
caller's kubeconfig; with --export it prints them. The label change is first sent as a
server-side dry-run: pods running in NS that the level would refuse are reported as a
warning (they keep running; a replacement would be refused). With --dry-run nothing is
written: it shows the labels that would change, those warnings and each object's change.
Re-run it when the manifests gain a kind (a sync of a kind the Role lacks fails with
Forbidden, naming it).`,
		Example: `  keyless install namespace team-a --manifests deploy/ --export > team-a-install.yaml
  keyless install namespace team-a --manifests charts/shop --helm-values charts/shop/values-prod.yaml
  keyless install namespace legacy --manifests deploy/ --dry-run          # what would change, and which pods restricted refuses
  keyless install namespace legacy --manifests deploy/ --pod-security baseline`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runInstallNamespace(cmd, streams, f, args[0]) },
	}
	fl := cmd.Flags()
	f.kube.addKubeconfigFlags(fl)
	f.renderer.addFlags(fl)
	fl.StringVar(&f.manifests, "manifests", "", "folder the namespace's Applications deploy (required)")
	fl.StringVar(&f.controllerNamespace, "controller-namespace", install.DefaultControllerNamespace, "the controller's own namespace")
	fl.StringVar(&f.podSecurity, "pod-security", install.PodSecurityRestricted, "Pod Security level the namespace is labelled with: restricted, baseline or privileged")
	fl.BoolVar(&f.export, "export", false, "print the namespace's install as YAML instead of applying it")
	fl.BoolVar(&f.dryRun, "dry-run", false, "show what would change (labels, Pod Security warnings, objects; server-side dry-run) and write nothing")
	return cmd
}

func runInstallNamespace(cmd *cobra.Command, streams IOStreams, f *installNamespaceFlags, ns string) error {
	if f.manifests == "" {
		return fmt.Errorf("--manifests is required: the folder namespace %s's Applications deploy", ns)
	}
	if err := install.ValidatePodSecurity(f.podSecurity); err != nil {
		return err
	}
	if f.export && f.dryRun {
		return errors.New("--export and --dry-run: choose one (--export prints the objects, --dry-run compares them with the cluster)")
	}
	ctx := cmd.Context()
	f.renderer.readEncrypted = true // the Role needs kinds, not a SOPS file's values
	res, err := f.renderer.render(ctx, streams.ErrOut, f.manifests, ns)
	if err != nil {
		return err
	}
	objs, err := install.ForManifests(ctx, install.NamespaceOptions{Namespace: ns, ControllerNamespace: f.controllerNamespace, Manifests: res})
	if err != nil {
		return err
	}
	if f.export {
		return writeYAMLDocs(streams.Out, objs)
	}
	cfg, err := f.kube.restConfig()
	if err != nil {
		return err
	}
	applied, err := install.ApplyNamespace(ctx, cfg, install.NamespaceApply{Namespace: ns, PodSecurity: f.podSecurity, Objects: objs, DryRun: f.dryRun})
	if applied != nil {
		printNamespaceResult(streams, ns, f.podSecurity, f.dryRun, applied)
	}
	if err != nil {
		return err
	}
	if f.dryRun {
		_, _ = fmt.Fprintf(streams.Out, "dry run: nothing was written to namespace %s\n", ns)
		return nil
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.GetKind()+"/"+o.GetName())
	}
	_, _ = fmt.Fprintf(streams.Out, "namespace %s installed: %s\n", ns, strings.Join(names, ", "))
	return nil
}

// printNamespaceResult says what install namespace changed (or would): the
// namespace, its Pod Security labels, the running pods the level refuses
// (as one warning, on ErrOut), and each object.
func printNamespaceResult(streams IOStreams, ns, level string, dryRun bool, res *install.NamespaceResult) {
	would, suffix := "", ""
	if dryRun {
		would, suffix = "would be ", " (dry run)"
	}
	if res.Created {
		_, _ = fmt.Fprintf(streams.Out, "namespace %s %screated\n", ns, would)
	}
	if len(res.Labels) == 0 {
		_, _ = fmt.Fprintf(streams.Out, "namespace %s: Pod Security labels unchanged (%s)\n", ns, level)
	}
	for _, l := range res.Labels {
		_, _ = fmt.Fprintf(streams.Out, "namespace %s label %s%s\n", ns, l, suffix)
	}
	if len(res.PodSecurityWarnings) > 0 {
		verb := "refuses"
		if dryRun {
			verb = "would refuse"
		}
		_, _ = fmt.Fprintf(streams.ErrOut, "warning: Pod Security %q %s pods running in namespace %s; they keep running, but a replacement (a rollout, a rescheduled pod) is refused until they comply (or choose --pod-security baseline or privileged):\n", level, verb, ns)
		for _, w := range res.PodSecurityWarnings {
			_, _ = fmt.Fprintf(streams.ErrOut, "  %s\n", w)
		}
	}
	if res.Objects != nil {
		printChanges(streams.Out, res.Objects, suffix)
	}
}
