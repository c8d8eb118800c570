package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/install"
	"github.com/keyless-cd/keyless/internal/version"
)

type installFlags struct {
	kube                kubeFlags
	namespaces          []string
	controllerNamespace string
	image               string
	podSecurity         string
	credentialMounts    bool
	export              bool
	pruneNamespaces     bool
	replicas            int32
	monitoring          bool
	timeout             time.Duration
	trustPolicy         string
	trustedRoot         string
	ledger              bool
	ledgerSize          string
	ledgerStorageClass  string
}

func newInstallCommand(streams IOStreams) *cobra.Command {
	f := &installFlags{}
	cmd := &cobra.Command{
		Use:   "install --namespaces a,b [--image REF] [--export]",
		Short: "Install keyless into a cluster (CRD, controller, per-namespace Roles), or print the install for GitOps",
		Long: `Install keyless with the caller's kubeconfig (a cluster admin's, once): the Application
CRD, the controller's namespace with its ServiceAccount, Role, Deployment, Service and
NetworkPolicy, and in each managed namespace the controller's Role and the keyless-deployer
ServiceAccount — no ClusterRole, no ClusterRoleBinding. Managed namespaces are created when
missing and labelled for Pod Security "restricted". The webhook Secret is created with a
random value the first time (never printed; read it with kubectl) and kept afterwards.
With --credential-mount-policy it also applies a cluster-wide ValidatingAdmissionPolicy
(Kubernetes 1.30 or later) refusing Pods and workloads that mount or env-reference a Secret
labelled keyless.dev/credential: whoever can push cannot read the namespace's Git, forge,
notification or SOPS keys through a Pod.
It then waits for the controller to be ready and says what it did.

Re-running it upgrades: what changed is applied, nothing else is touched. --namespaces is
the whole list: one that leaves out a namespace the installed controller manages is refused,
naming it, unless --prune-namespaces is given, which drops it and removes keyless's Roles,
RoleBindings and ServiceAccount from it (the namespace, its workloads and Applications stay).

With --export nothing is applied: the whole install is printed as YAML, to commit and
apply with kubectl or a GitOps tool that may create cluster-scoped objects, like Flux or
Argo CD (as flux install --export) — not with a keyless Application, which refuses the CRD
and the Namespaces. The managed namespaces and the CRD carry annotations that keep Flux,
Argo CD and Helm from pruning them. Create the webhook Secret yourself, it is not in the
export. The same objects are in the Helm chart (charts/keyless) and the kustomize base
(config/kustomize).

With --ledger the controller keeps the signed, hash-chained ledger of every sync, approval,
override and pause (keyless evidence verify/export): the file on a PersistentVolumeClaim
(keyless-ledger, --ledger-size, --ledger-storage-class; never pruned), signed with an ed25519
key created once in the Secret keyless-ledger-key (never printed; kept on upgrades — rotate by
replacing it and starting a new file), its public key published in the ConfigMap
keyless-ledger-public-key for auditors. One writer: one replica (not leader-elected
standbys), replaced rather than rolled on upgrade.`,
		Example: `  keyless install --namespaces team-a,team-b --image ghcr.io/keyless-cd/keyless@sha256:…
  keyless install --namespaces team-a --export > keyless-install.yaml
  keyless install --namespaces team-a,team-b --credential-mount-policy
  keyless install --namespaces team-b --prune-namespaces     # drop team-a, remove keyless's Roles there
  keyless install --namespaces team-a --ledger --ledger-storage-class retained-ssd
  kubectl -n keyless-system get configmap keyless-ledger-public-key -o jsonpath='{.data.ledger\.pub}' > ledger.pub
  keyless uninstall --namespaces team-a,team-b`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runInstall(cmd, streams, f) },
	}
	cmd.AddCommand(newInstallNamespaceCommand(streams))
	fl := cmd.Flags()
	f.kube.addKubeconfigFlags(fl)
	fl.StringSliceVar(&f.namespaces, "namespaces", nil, "namespaces the controller manages (required; comma-separated)")
	fl.StringVar(&f.controllerNamespace, "controller-namespace", install.DefaultControllerNamespace, "the controller's own namespace")
	fl.StringVar(&f.image, "image", "", "controller image, pinned by digest (default: ghcr.io/keyless-cd/keyless:VERSION of this released keyless, resolved to its digest at the registry; a development build: :latest, with a warning)")
	fl.StringVar(&f.podSecurity, "pod-security", install.PodSecurityRestricted, "Pod Security level the managed namespaces are labelled with: restricted, baseline or privileged")
	fl.BoolVar(&f.credentialMounts, "credential-mount-policy", false, "also apply the ValidatingAdmissionPolicy refusing workloads that mount or env-reference a Secret labelled keyless.dev/credential (cluster-wide; Kubernetes 1.30 or later)")
	fl.BoolVar(&f.export, "export", false, "print the install as YAML instead of applying it")
	fl.BoolVar(&f.pruneNamespaces, "prune-namespaces", false, "let --namespaces leave out namespaces the installed controller manages, and remove keyless's Roles, RoleBindings and ServiceAccount from them")
	fl.Int32Var(&f.replicas, "replicas", 2, "controller replicas (leader-elected)")
	fl.BoolVar(&f.monitoring, "monitoring", false, "also install a Prometheus Operator ServiceMonitor and the alerts as a PrometheusRule (needs the operator's CRDs)")
	fl.DurationVar(&f.timeout, "timeout", 5*time.Minute, "how long to wait for the controller to be ready")
	fl.StringVar(&f.trustPolicy, "trust-policy", "", "the FederationPolicy whose pipelines must have signed the OCI artifacts deployed into their namespaces (mounted from the ConfigMap keyless-trust; its CA files with it)")
	fl.StringVar(&f.trustedRoot, "trusted-root", "", "the Sigstore trusted root (trusted_root.json) keyless signatures are checked against; required with --trust-policy")
	fl.BoolVar(&f.ledger, "ledger", false, "keep the signed, hash-chained ledger on a PersistentVolumeClaim, signed with a key created once in a Secret (one replica)")
	fl.StringVar(&f.ledgerSize, "ledger-size", install.DefaultLedgerSize, "with --ledger: the claim's size")
	fl.StringVar(&f.ledgerStorageClass, "ledger-storage-class", "", "with --ledger: the claim's StorageClass (default the cluster's; pick one that retains its volumes)")
	return cmd
}

func runInstall(cmd *cobra.Command, streams IOStreams, f *installFlags) error {
	if len(f.namespaces) == 0 {
		return errors.New("--namespaces is required: name the namespaces the controller manages")
	}
	image, err := install.ControllerImage(cmd.Context(), f.image, version.Version(), install.RegistryDigest, streams.ErrOut)
	if err != nil {
		return err
	}
	opts := install.Options{ControllerNamespace: f.controllerNamespace, Namespaces: f.namespaces, Image: image,
		PodSecurity: f.podSecurity, WithDeployment: true, CredentialMountPolicy: f.credentialMounts,
		Replicas: f.replicas, PruneNamespaces: f.pruneNamespaces, Monitoring: f.monitoring, Out: streams.ErrOut}
	if err := install.ValidatePodSecurity(f.podSecurity); err != nil {
		return err
	}
	if opts.Trust, err = readInstallTrust(f.trustPolicy, f.trustedRoot); err != nil {
		return err
	}
	if f.replicas < 1 {
		return fmt.Errorf("--replicas %d: want at least 1", f.replicas)
	}
	if f.ledger {
		if !cmd.Flags().Changed("replicas") {
			opts.Replicas = 1 // one writer of the ledger
		}
		opts.Ledger = &install.Ledger{Size: f.ledgerSize, StorageClass: f.ledgerStorageClass}
	}
	ctx := cmd.Context()
	if f.export {
		m, err := install.Render(ctx, opts)
		if err != nil {
			return err
		}
		return writeYAMLDocs(streams.Out, m.All(f.namespaces))
	}
	cfg, err := f.kube.restConfig()
	if err != nil {
		return err
	}
	_, _ = fmt.Fprintf(streams.ErrOut, "installing keyless: controller in %s, managing %s ...\n", f.controllerNamespace, strings.Join(f.namespaces, ", "))
	if err := install.Apply(ctx, cfg, opts); err != nil {
		return err
	}
	if f.credentialMounts {
		_, _ = fmt.Fprintf(streams.ErrOut, "applied ValidatingAdmissionPolicy %s: workloads may not mount Secrets labelled %s\n", install.CredentialMountPolicyName, kv1.CredentialLabel)
	}
	_, _ = fmt.Fprintln(streams.ErrOut, "applied the CRD, the controller's objects and each namespace's Roles; waiting for the controller ...")
	if err := install.WaitReady(ctx, cfg, f.controllerNamespace, f.timeout, streams.ErrOut); err != nil {
		return err
	}
	_, _ = fmt.Fprintf(streams.Out, `keyless is installed and ready.
  controller   deployment %[1]s/%[2]s (leader-elected), service %[1]s/%[2]s (webhooks :9292, metrics :8080)
  namespaces   %[3]s: Role keyless-controller, ServiceAccount keyless-deployer (grant it what your manifests need)
  webhooks     point the forge at /hooks/gitlab or /hooks/github; the secret:
               kubectl -n %[1]s get secret %[4]s -o jsonpath='{.data.%[5]s}' | base64 -d
`, f.controllerNamespace, install.DeploymentName, strings.Join(f.namespaces, ", "), install.WebhookSecretName, install.WebhookSecretKey)
	return nil
}

// writeYAMLDocs writes objs as one YAML stream.
func writeYAMLDocs(w io.Writer, objs []*unstructured.Unstructured) error {
	for i, o := range objs {
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return err
		}
		if i > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

type uninstallFlags struct {
	kube                kubeFlags
	namespaces          []string
	controllerNamespace string
	deleteCRD           bool
	yes                 bool
}

func newUninstallCommand(streams IOStreams) *cobra.Command {
	f := &uninstallFlags{}
	cmd := &cobra.Command{
		Use:   "uninstall --namespaces a,b [--delete-crd]",
		Short: "Remove what keyless install created (the CRD only when asked)",
		Long: `Delete the controller's objects and each managed namespace's keyless Roles and
ServiceAccount. Namespaces are kept (they hold the teams' workloads), and so are the
workloads keyless deployed. The Application CRD is deleted only with --delete-crd, after a
confirmation (or --yes): deleting it deletes every Application in the cluster.`,
		Example: `  keyless uninstall --namespaces team-a,team-b
  keyless uninstall --namespaces team-a,team-b --delete-crd --yes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runUninstall(cmd, streams, f) },
	}
	fl := cmd.Flags()
	f.kube.addKubeconfigFlags(fl)
	fl.StringSliceVar(&f.namespaces, "namespaces", nil, "the managed namespaces to remove keyless's Roles from (comma-separated)")
	fl.StringVar(&f.controllerNamespace, "controller-namespace", install.DefaultControllerNamespace, "the controller's own namespace")
	fl.BoolVar(&f.deleteCRD, "delete-crd", false, "also delete the Application CRD, and with it every Application")
	fl.BoolVar(&f.yes, "yes", false, "do not ask before deleting the CRD")
	return cmd
}

func runUninstall(cmd *cobra.Command, streams IOStreams, f *uninstallFlags) error {
	if f.deleteCRD && !f.yes {
		_, _ = fmt.Fprint(streams.ErrOut, "Deleting the Application CRD deletes every Application in the cluster. Type yes to go on: ")
		answer, _ := bufio.NewReader(io.LimitReader(streams.In, 64)).ReadString('\n')
		if strings.TrimSpace(answer) != "yes" {
			return errors.New("not confirmed: nothing was deleted (pass --yes to skip the question)")
		}
	}
	cfg, err := f.kube.restConfig()
	if err != nil {
		return err
	}
	deleted, err := install.Uninstall(cmd.Context(), cfg, install.UninstallOptions{ControllerNamespace: f.controllerNamespace, Namespaces: f.namespaces, DeleteCRD: f.deleteCRD})
	for _, d := range deleted {
		_, _ = fmt.Fprintf(streams.Out, "deleted %s\n", d)
	}
	if err != nil {
		return err
	}
	if len(deleted) == 0 {
		_, _ = fmt.Fprintln(streams.ErrOut, "nothing to delete: keyless is not installed there")
	}
	return nil
}

// readInstallTrust reads --trust-policy and --trusted-root into the files
// of the controller's trust ConfigMap (nil when neither is given); both are
// checked as the controller will read them.
func readInstallTrust(policyFile, rootFile string) (map[string][]byte, error) {
	if policyFile == "" && rootFile == "" {
		return nil, nil
	}
	if policyFile == "" || rootFile == "" {
		return nil, errors.New("--trust-policy and --trusted-root go together")
	}
	p, _, err := readTrust(policyFile, rootFile)
	if err != nil {
		return nil, err
	}
	files, err := p.ForController(install.TrustMountPath)
	if err != nil {
		return nil, fmt.Errorf("--trust-policy: %w", err)
	}
	if files[install.TrustedRootFile], err = os.ReadFile(rootFile); err != nil {
		return nil, err
	}
	return files, nil
}
