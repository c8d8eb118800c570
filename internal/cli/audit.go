package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/keyless-cd/keyless/internal/audit"
	"github.com/keyless-cd/keyless/internal/version"
)

func newAuditCommand(streams IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Find stored cluster credentials and over-broad CI/CD permissions",
	}
	cmd.AddCommand(newAuditRepoCommand(streams), newAuditClusterCommand(streams))
	return cmd
}

type auditRepoFlags struct {
	history bool
	format  string
	failOn  string
	ignoreFlags
}

// ignoreFlags accept risks, each with its reason.
type ignoreFlags struct {
	ignores    []string
	ignoreFile string
}

func (f *ignoreFlags) add(cmd *cobra.Command, defaultFile string) {
	cmd.Flags().StringArrayVar(&f.ignores, "ignore", nil, "accept a risk: RULE[:PATH-GLOB]=REASON (repeatable; DIR/** matches everything under DIR; the reason is required)")
	cmd.Flags().StringVar(&f.ignoreFile, "ignore-file", defaultFile, "YAML list of {rule, path, reason} accepted risks")
}

// apply removes accepted findings, telling on stderr which and why.
func (f *ignoreFlags) apply(streams IOStreams, findings []audit.Finding, defaultFileOptional bool) ([]audit.Finding, error) {
	var igs []audit.Ignore
	for _, s := range f.ignores {
		ig, err := audit.ParseIgnore(s)
		if err != nil {
			return nil, err
		}
		igs = append(igs, ig)
	}
	if f.ignoreFile != "" {
		fromFile, err := audit.LoadIgnoreFile(f.ignoreFile)
		switch {
		case err == nil:
			igs = append(igs, fromFile...)
		case defaultFileOptional && errors.Is(err, fs.ErrNotExist):
		default:
			return nil, fmt.Errorf("--ignore-file: %w", err)
		}
	}
	kept, ignored := audit.Apply(findings, igs)
	for _, x := range ignored {
		_, _ = fmt.Fprintf(streams.ErrOut, "accepted risk: %s %s (%s)\n", x.Rule, x.File, x.By.Reason)
	}
	return kept, nil
}

func newAuditRepoCommand(streams IOStreams) *cobra.Command {
	f := &auditRepoFlags{}
	cmd := &cobra.Command{
		Use:   "repo [DIR]",
		Short: "Scan a repository for kubeconfigs, static cluster tokens in CI and over-broad RBAC",
		Long: `Scan a working tree (respecting .gitignore) for what must never be stored or granted
for CI/CD, and say what to do instead. CI files are .gitlab-ci.yml and the local files it
includes (globs and nested includes followed), .github/workflows/*, Jenkinsfile,
.circleci/config.yml, bitbucket-pipelines.yml and azure-pipelines.yml. --history also scans
every blob any commit on any ref added or changed: a credential deleted from the tree is still
in Git for anyone who clones it (those findings name the commit: FILE:LINE @COMMIT).
Binary files are skipped; a text file over 1 MiB is not scanned and is named on stderr
(and under "skipped" in JSON), so a clean result never hides an unread file.

  KL001 critical  kubeconfig with credentials (token, client key, password, auth-provider secrets)
  KL002 critical  base64-encoded kubeconfig with credentials, in any text file
  KL010 high      CI job reading a cluster credential from a variable (KUBE_CONFIG, kubectl --token=$VAR,
                  azure/k8s-set-context with a kubeconfig, Jenkins withKubeConfig, GitLab certificate-based integration);
                  variables declared under GitLab id_tokens are OIDC tokens and do not count
  KL020 high      Secret of type kubernetes.io/service-account-token (a long-lived token)
  KL021 critical  ClusterRoleBinding giving cluster-admin to a ServiceAccount or user
  KL022 high      Role/ClusterRole with * on *, escalate, bind, or impersonate without resourceNames
  KL030 high      FederationPolicy pipeline without projectID, or with protectedOnly: false
  KL031 high      AuthenticationConfiguration trusting CI tokens without a project/repository id
                  rule, or mapping usernames that could be system: names

Accepted risks are listed with --ignore RULE[:PATH]=REASON or in .keyless-audit-ignore.yaml
(a list of {rule, path, reason}); every accepted finding is still printed on stderr with
its reason.

Exit status: 1 when a finding is at or above --fail-on, else 0; 2 on error.`,
		Example: `  keyless audit repo .
  keyless audit repo . --ignore 'KL010:.gitlab-ci.yml=legacy job, removed with ticket OPS-42'
  keyless audit repo --format json --fail-on critical
  keyless audit repo --history --format sarif > keyless-audit.sarif
  keyless audit repo --format codequality > gl-code-quality-report.json   # GitLab MR widget`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			return errorExits2(runAuditRepo(streams, f, dir))
		},
	}
	cmd.Flags().StringVar(&f.format, "format", "table", "table, json, sarif (SARIF 2.1.0, for GitHub code scanning) or codequality (GitLab merge request widget)")
	cmd.Flags().StringVar(&f.failOn, "fail-on", "high", "lowest severity that makes the exit status 1: low, medium, high or critical")
	cmd.Flags().BoolVar(&f.history, "history", false, "also scan every commit reachable from any ref (needs DIR to be a Git repository)")
	f.add(cmd, "")
	return cmd
}

func runAuditRepo(streams IOStreams, f *auditRepoFlags, dir string) error {
	failOn, err := audit.ParseSeverity(f.failOn)
	if err != nil {
		return fmt.Errorf("--fail-on: %w", err)
	}
	var skipped []string
	opts := audit.ScanOptions{Skipped: func(name, commit string, size int64) {
		where := name
		if commit != "" {
			where += " @" + commit
		}
		skipped = append(skipped, fmt.Sprintf("%s (%.1f MiB)", where, float64(size)/(1<<20)))
	}}
	findings, err := audit.ScanRepo(dir, opts)
	if err != nil {
		return err
	}
	if f.history {
		past, err := audit.ScanHistory(dir, opts)
		if err != nil {
			return err
		}
		findings = append(findings, past...)
	}
	optional := f.ignoreFile == ""
	if optional {
		f.ignoreFile = filepath.Join(dir, ".keyless-audit-ignore.yaml")
	}
	if findings, err = f.apply(streams, findings, optional); err != nil {
		return err
	}
	for _, sk := range skipped {
		_, _ = fmt.Fprintf(streams.ErrOut, "warning: not scanned, larger than %d MiB: %s\n", audit.MaxFileBytes>>20, sk)
	}
	var extra map[string]any
	if len(skipped) > 0 {
		extra = map[string]any{"skipped": skipped}
	}
	return printFindings(streams, findings, nil, extra, f.format, failOn)
}

// printFindings writes findings as a table or JSON and returns ExitError 1
// when one is at or above failOn.
// extra fields are added to the JSON object.
func printFindings(streams IOStreams, findings []audit.Finding, unreadable []string, extra map[string]any, format string, failOn audit.Severity) error {
	switch format {
	case "json":
		if findings == nil {
			findings = []audit.Finding{}
		}
		doc := map[string]any{"findings": findings, "unreadable": unreadable}
		for k, v := range extra {
			doc[k] = v
		}
		if err := writeJSON(streams.Out, doc); err != nil {
			return err
		}
	case "sarif":
		if err := audit.WriteSARIF(streams.Out, findings, version.Version()); err != nil {
			return err
		}
	case "codequality":
		if err := audit.WriteCodeQuality(streams.Out, findings); err != nil {
			return err
		}
	case "table":
		if len(findings) == 0 {
			_, _ = fmt.Fprintln(streams.Out, "no findings: no stored cluster credential, no over-broad CI/CD permission")
		} else {
			w := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
			_, _ = fmt.Fprintln(w, "SEVERITY\tRULE\tLOCATION\tFINDING")
			for _, x := range findings {
				loc := x.File
				if x.Line > 0 {
					loc = fmt.Sprintf("%s:%d", x.File, x.Line)
				}
				if x.Commit != "" {
					loc += " @" + x.Commit
				}
				_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", x.Severity, x.Rule, loc, x.What)
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
		}
		for _, u := range unreadable {
			_, _ = fmt.Fprintf(streams.ErrOut, "warning: could not read %s with these credentials; those checks were skipped\n", u)
		}
	default:
		return fmt.Errorf("--format %q: want table, json, sarif or codequality", format)
	}
	for _, x := range findings {
		if x.Severity >= failOn {
			return &ExitError{Code: 1}
		}
	}
	return nil
}

type auditClusterFlags struct {
	kubeFlags
	ignoreFlags
	allNamespaces bool
	format        string
	failOn        string
}

func newAuditClusterCommand(streams IOStreams) *cobra.Command {
	f := &auditClusterFlags{}
	cmd := &cobra.Command{
		Use:   "cluster [-n NS | -A]",
		Short: "Scan a live cluster, read-only, for static tokens and over-broad CI/CD rights",
		Long: `Read-only checks of a live cluster, degrading where your rights end (it says what it
could not read):

  KL101 high      Secret of type kubernetes.io/service-account-token (a static, long-lived token)
  KL102 critical  ClusterRoleBinding giving a non-system subject cluster-admin or * on *
  KL103 high      a known GitOps/CI controller (Argo CD, Flux, GitLab agent) bound to a ClusterRole
  KL104 critical  keyless itself bound to a ClusterRole, or any keyless identity allowed to list
                  Secrets, create Deployments or create ClusterRoleBindings in every namespace
                  (asked of the apiserver with SubjectAccessReview)
  KL105 high      a ClusterRoleBinding letting a non-system subject read Secrets, impersonate,
                  escalate or bind cluster-wide

Token Secrets are listed with what their ServiceAccount is bound to. keyless's own install
(the controller, keyless-deployer and ` + "`keyless oidc rbac`" + ` pipelines) is reported per namespace
with what each identity may do: the whole blast radius, for an auditor.

Exit status: 1 when a finding is at or above --fail-on, else 0; 2 on error.`,
		Example: `  keyless audit cluster -A
  keyless audit cluster -n myapp --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return errorExits2(runAuditCluster(cmd, streams, f))
		},
	}
	f.addFlags(cmd.Flags())
	cmd.Flags().BoolVarP(&f.allNamespaces, "all-namespaces", "A", false, "check Secrets in every namespace")
	cmd.Flags().StringVar(&f.format, "format", "table", "table, json, sarif (SARIF 2.1.0, for GitHub code scanning) or codequality (GitLab merge request widget)")
	cmd.Flags().StringVar(&f.failOn, "fail-on", "high", "lowest severity that makes the exit status 1")
	f.add(cmd, "")
	return cmd
}

func runAuditCluster(cmd *cobra.Command, streams IOStreams, f *auditClusterFlags) error {
	failOn, err := audit.ParseSeverity(f.failOn)
	if err != nil {
		return fmt.Errorf("--fail-on: %w", err)
	}
	ns := ""
	if !f.allNamespaces {
		if ns, err = f.targetNamespace(); err != nil {
			return fmt.Errorf("%w (or -A for all namespaces)", err)
		}
	}
	cfg, err := f.restConfig()
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	rep, err := audit.ScanCluster(cmd.Context(), cs, audit.ClusterOptions{Namespace: ns})
	if err != nil {
		return err
	}
	findings, err := f.apply(streams, rep.Findings, false)
	if err != nil {
		return err
	}
	if f.format == "table" {
		printInstall(streams, rep)
	}
	extra := map[string]any{"install": rep.Install, "installClusterWideChecked": rep.InstallClusterWideChecked}
	return printFindings(streams, findings, rep.Unreadable, extra, f.format, failOn)
}

// printInstall shows what each keyless identity may do, per namespace: the
// blast radius of the install.
func printInstall(streams IOStreams, rep *audit.ClusterReport) {
	if len(rep.Install) == 0 {
		return
	}
	_, _ = fmt.Fprintln(streams.Out, "keyless install: what each keyless identity may do")
	w := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(w, "NAMESPACE\tSUBJECT\tROLE\tMAY")
	for _, g := range rep.Install {
		for i, r := range g.Rules {
			if i == 0 {
				_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", g.Namespace, g.Subject, g.Role, r)
			} else {
				_, _ = fmt.Fprintf(w, "\t\t\t%s\n", r)
			}
		}
	}
	_ = w.Flush()
	if rep.InstallClusterWideChecked {
		_, _ = fmt.Fprintln(streams.Out, "cluster-wide: none of these identities may list Secrets, create Deployments or bind ClusterRoles in every namespace (SubjectAccessReview)")
	}
	_, _ = fmt.Fprintln(streams.Out)
}
