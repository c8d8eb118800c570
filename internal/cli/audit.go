package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/keyless-cd/keyless/internal/audit"
)

func newAuditCommand(streams IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Find stored cluster credentials and over-broad CI/CD permissions",
	}
	cmd.AddCommand(newAuditRepoCommand(streams))
	return cmd
}

type auditRepoFlags struct {
	format string
	failOn string
}

func newAuditRepoCommand(streams IOStreams) *cobra.Command {
	f := &auditRepoFlags{}
	cmd := &cobra.Command{
		Use:   "repo [DIR]",
		Short: "Scan a repository for kubeconfigs, static cluster tokens in CI and over-broad RBAC",
		Long: `Scan a working tree (respecting .gitignore) for what must never be stored or granted
for CI/CD, and say what to do instead:

  KL001 critical  kubeconfig with credentials (token, client key, password, auth-provider secrets)
  KL002 critical  base64-encoded kubeconfig with credentials, in any text file
  KL010 high      CI job reading a cluster credential from a variable (KUBE_CONFIG, kubectl --token=$VAR,
                  azure/k8s-set-context with a kubeconfig, GitLab certificate-based integration);
                  variables declared under GitLab id_tokens are OIDC tokens and do not count
  KL020 high      Secret of type kubernetes.io/service-account-token (a long-lived token)
  KL021 critical  ClusterRoleBinding giving cluster-admin to a ServiceAccount or user
  KL022 high      Role/ClusterRole with * on *, escalate, bind, or impersonate without resourceNames
  KL030 high      FederationPolicy pipeline without projectID, or with protectedOnly: false

Exit status: 1 when a finding is at or above --fail-on, else 0; 2 on error.`,
		Example: `  keyless audit repo .
  keyless audit repo --format json --fail-on critical`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			err := runAuditRepo(streams, f, dir)
			var exit *ExitError
			if err != nil && !asExit(err, &exit) {
				return &ExitError{Code: 2, Err: err}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&f.format, "format", "table", "table or json")
	cmd.Flags().StringVar(&f.failOn, "fail-on", "high", "lowest severity that makes the exit status 1: low, medium, high or critical")
	return cmd
}

func runAuditRepo(streams IOStreams, f *auditRepoFlags, dir string) error {
	failOn, err := audit.ParseSeverity(f.failOn)
	if err != nil {
		return fmt.Errorf("--fail-on: %w", err)
	}
	findings, err := audit.ScanRepo(dir)
	if err != nil {
		return err
	}
	switch f.format {
	case "json":
		if findings == nil {
			findings = []audit.Finding{}
		}
		if err := writeJSON(streams.Out, findings); err != nil {
			return err
		}
	case "table":
		if len(findings) == 0 {
			_, _ = fmt.Fprintln(streams.Out, "no findings: no stored cluster credential, no over-broad CI/CD permission")
			break
		}
		w := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
		_, _ = fmt.Fprintln(w, "SEVERITY\tRULE\tLOCATION\tFINDING")
		for _, x := range findings {
			_, _ = fmt.Fprintf(w, "%s\t%s\t%s:%d\t%s\n", x.Severity, x.Rule, x.File, x.Line, x.What)
		}
		_ = w.Flush()
		seen := map[string]bool{}
		_, _ = fmt.Fprintln(streams.Out, "\nwhy and what to do:")
		for _, x := range findings {
			if !seen[x.Rule] {
				seen[x.Rule] = true
				_, _ = fmt.Fprintf(streams.Out, "  %s: %s.\n         fix: %s\n", x.Rule, x.Why, x.Fix)
			}
		}
	default:
		return fmt.Errorf("--format %q: want table or json", f.format)
	}
	for _, x := range findings {
		if x.Severity >= failOn {
			return &ExitError{Code: 1}
		}
	}
	return nil
}
