package cli

import (
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
}

func newInstallNamespaceCommand(streams IOStreams) *cobra.Command {
	f := &installNamespaceFlags{}
	cmd := &cobra.Command{
		Use:   "namespace NS --manifests DIR [--root ROOT] [--export]",
		Short: "Install one managed namespace with a deployer Role as small as its manifests",
		Long: `Render DIR as the controller would (same renderer, limits and Helm options) and write
namespace NS's install: the keyless-deployer Role lists exactly the kinds (API group and
resource) the manifests contain, with the verbs apply and prune need (get, list, create,
patch, update, delete), and the controller's Role watches exactly those kinds. A
cluster-scoped object in the manifests is refused, naming its file. The same derivation as
keyless oidc rbac, for the pull path.

Without --export it creates NS when missing, labels it for Pod Security and applies the
objects with the caller's kubeconfig; with --export it prints them. Re-run it when the
manifests gain a kind (a sync of a kind the Role lacks fails with Forbidden, naming it).`,
		Example: `  keyless install namespace team-a --manifests deploy/ --export > team-a-install.yaml
  keyless install namespace team-a --manifests charts/shop --helm-values charts/shop/values-prod.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runInstallNamespace(cmd, streams, f, args[0]) },
	}
	fl := cmd.Flags()
	f.kube.addKubeconfigFlags(fl)
	f.renderer.addFlags(fl)
	fl.StringVar(&f.manifests, "manifests", "", "folder the namespace's Applications deploy (required)")
	fl.StringVar(&f.controllerNamespace, "controller-namespace", install.DefaultControllerNamespace, "the controller's own namespace")
	fl.StringVar(&f.podSecurity, "pod-security", install.PodSecurityRestricted, "Pod Security level the namespace is labelled with")
	fl.BoolVar(&f.export, "export", false, "print the namespace's install as YAML instead of applying it")
	return cmd
}

func runInstallNamespace(cmd *cobra.Command, streams IOStreams, f *installNamespaceFlags, ns string) error {
	if f.manifests == "" {
		return fmt.Errorf("--manifests is required: the folder namespace %s's Applications deploy", ns)
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
	if err := install.ApplyNamespace(ctx, cfg, ns, f.podSecurity, objs); err != nil {
		return err
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.GetKind()+"/"+o.GetName())
	}
	_, _ = fmt.Fprintf(streams.Out, "namespace %s installed: %s\n", ns, strings.Join(names, ", "))
	return nil
}
