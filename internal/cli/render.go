package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/keyless-cd/keyless/internal/engine"
	"github.com/keyless-cd/keyless/internal/lifecycle"
)

type renderCmdFlags struct {
	renderFlags
	namespace   string
	showSecrets bool
	check       bool
}

func newRenderCommand(streams IOStreams) *cobra.Command {
	f := &renderCmdFlags{}
	cmd := &cobra.Command{
		Use:   "render DIR",
		Short: "Print the objects a directory renders to (plain YAML, kustomize or Helm)",
		Long: `Render DIR the way diff, apply and the controller do, and print the objects as
a YAML stream, each preceded by a comment naming its source. DIR holding
kustomization.yaml is built in-process with kustomize, else DIR holding Chart.yaml
is a Helm chart (rendered like "helm template"), anything else is read as plain
manifests as Argo CD reads a directory source: DIR's own *.yaml, *.yml, *.json and
*.jsonnet files (subfolders with --directory-recurse; --directory-include and
--directory-exclude globs; Jsonnet evaluated with --jsonnet-* variables and
libraries), hidden files and folders skipped. Nothing outside the repository root
is read. No cluster is contacted.

SOPS-encrypted files are decrypted in memory with --decryption-key-file (or
$SOPS_AGE_KEY_FILE), as the controller does with spec.decryption; the values of
Secrets are then printed masked unless --show-secrets.

With -n, the objects keyless's guards would refuse (cluster-scoped objects, other
namespaces, pods running as the deployer, RBAC handing out rights outside Git) are
listed on stderr after the objects, each with its source — all of them, as apply
and the controller would refuse them, without a cluster. The exit status stays 0
unless --check: then it is 1 when anything would be refused.`,
		Example: `  keyless render deploy/
  keyless render charts/myapp --helm-values values/prod.yml --helm-set image.tag=abc123 -n myapp
  keyless render deploy/ --decryption-key-file ~/.config/sops/age/keys.txt
  keyless render deploy/ -n myapp --check > /dev/null   # in CI: fail on objects keyless would refuse
  keyless render deploy/ --directory-recurse --directory-exclude 'tests/*'
  keyless render jsonnet/ --jsonnet-ext-var-str env=prod --jsonnet-tla-code replicas=3 --jsonnet-libs vendor`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRender(cmd, streams, f, args[0])
		},
	}
	f.addFlags(cmd.Flags())
	cmd.Flags().StringVarP(&f.namespace, "namespace", "n", "", "namespace to render for (Helm's .Release.Namespace)")
	cmd.Flags().BoolVar(&f.showSecrets, "show-secrets", false, "print the values of Secrets decrypted from SOPS files (masked by default)")
	cmd.Flags().BoolVar(&f.check, "check", false, "exit 1 when keyless apply or the controller would refuse an object (needs -n)")
	return cmd
}

func runRender(cmd *cobra.Command, streams IOStreams, f *renderCmdFlags, dir string) error {
	if f.check && f.namespace == "" {
		return errCheckNeedsNamespace
	}
	res, err := f.render(cmd.Context(), cmd.ErrOrStderr(), dir, f.namespace)
	if err != nil {
		return err
	}
	mask := len(res.Decrypted) > 0 && !f.showSecrets
	for _, o := range res.Objects {
		obj := o.Object
		if mask {
			obj = o.DeepCopy().Object
			engine.MaskSecretValues(obj)
		}
		b, err := yaml.Marshal(obj)
		if err != nil {
			return fmt.Errorf("%s/%s: %w", o.GetKind(), o.GetName(), err)
		}
		place, err := lifecycleComment(o)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(streams.Out, "---\n# Source: %s\n%s%s", res.Source(o), place, b); err != nil {
			return err
		}
	}
	if len(res.Decrypted) > 0 {
		how := "Secret values masked; --show-secrets prints them"
		if !mask {
			how = "Secret values shown"
		}
		_, _ = fmt.Fprintf(streams.ErrOut, "decrypted %d SOPS files (%s)\n", len(res.Decrypted), how)
	}
	if _, err := fmt.Fprintf(streams.ErrOut, "rendered %d objects (%s)\n", len(res.Objects), res.Kind); err != nil {
		return err
	}
	return reportRefusals(streams.ErrOut, res, f.namespace, f.check)
}

// lifecycleComment is "# Sync: PreSync hook, wave -5\n" for an object with
// lifecycle annotations (naming the first sync and later syncs apart when
// they differ, as Helm's install and upgrade hooks do), "" for the others.
func lifecycleComment(o *unstructured.Unstructured) (string, error) {
	later, err := lifecycle.Of(o, false)
	if err != nil {
		return "", err
	}
	first, err := lifecycle.Of(o, true)
	if err != nil {
		return "", err
	}
	if !later.Hook && !later.Skip && !first.Hook && !first.Skip && later.Wave == 0 && !later.Replace {
		return "", nil
	}
	if first.String() == later.String() {
		return "# Sync: " + later.String() + "\n", nil
	}
	return "# Sync: first sync: " + first.String() + "; later syncs: " + later.String() + "\n", nil
}
