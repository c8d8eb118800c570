package cli

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/install"
	"github.com/keyless-cd/keyless/internal/preview"
)

// completionTimeout bounds the cluster reads behind one completion: a shell
// waits for them.
const completionTimeout = 5 * time.Second

// Names of the flags that several commands take with different values.
const (
	flagOutput = "output"
	flagFormat = "format"
)

// textOrJSON are the -o values of the commands printing text or JSON.
var textOrJSON = []string{"text", "json"}

// flagValues are the values of the flags taking one of a fixed set, by
// command path then flag name; TestFlagCompletion keeps it in step with the
// commands.
var flagValues = map[string]map[string][]string{
	"keyless apply":             {flagOutput: textOrJSON},
	"keyless diff":              {flagOutput: textOrJSON},
	"keyless history":           {flagOutput: textOrJSON},
	"keyless approvals":         {flagOutput: textOrJSON},
	"keyless bump":              {flagOutput: textOrJSON},
	"keyless publish":           {flagOutput: textOrJSON, flagProvider: ciProviders},
	"keyless version":           {flagOutput: textOrJSON},
	"keyless oidc check":        {flagOutput: textOrJSON},
	"keyless oidc config":       {flagFormat: {"authentication-config", "flags", "eks", "artifact-rule", "fulcio"}},
	"keyless oidc token":        {flagProvider: ciProviders},
	"keyless deploy":            {flagOutput: textOrJSON, flagProvider: ciProviders},
	"keyless kubeconfig":        {flagProvider: ciProviders},
	"keyless preview":           {flagFormat: preview.Formats},
	"keyless audit repo":        {flagFormat: auditFormats, "fail-on": auditSeverities},
	"keyless audit cluster":     {flagFormat: auditFormats, "fail-on": auditSeverities},
	"keyless controller":        {"log-level": {"debug", "info", "error"}},
	"keyless install":           {"pod-security": install.PodSecurityLevels},
	"keyless install namespace": {"pod-security": install.PodSecurityLevels},
	"keyless get applications":  {flagOutput: getOutputFormats(genericclioptions.NewPrintFlags(""))},
}

// flagProvider is the name of the CI platform flags.
const flagProvider = "provider"

var (
	ciProviders     = []string{"gitlab", "github", "auto"}
	auditFormats    = []string{"table", "json", "sarif", "codequality"}
	auditSeverities = []string{"low", "medium", "high", "critical"}
)

// registerCompletions adds dynamic completion to every command under root:
// the values of fixed-value flags (flagValues), namespaces for -n and
// --namespaces, the kubeconfig's contexts, clusters and users for
// --context, --cluster and --user, and Application names for the APP
// argument of sync, history, rollback and get applications. Cluster reads
// use the connection flags already typed (--kubeconfig, --context, …).
func registerCompletions(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for name, values := range flagValues[c.CommandPath()] {
			if c.Flags().Lookup(name) != nil {
				_ = c.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
			}
		}
		if c.Flags().Lookup("kubeconfig") != nil && c.Flags().Lookup("as") != nil {
			registerClusterCompletions(c)
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
}

// registerClusterCompletions completes what a command with the connection
// flags reads from the kubeconfig and the cluster.
func registerClusterCompletions(c *cobra.Command) {
	for _, name := range []string{"namespace", "namespaces"} {
		if c.Flags().Lookup(name) != nil {
			_ = c.RegisterFlagCompletionFunc(name, completeNamespaces)
		}
	}
	_ = c.RegisterFlagCompletionFunc("context", completeKubeconfig(func(k *clientcmdapi.Config) []string { return slices.Collect(maps.Keys(k.Contexts)) }))
	_ = c.RegisterFlagCompletionFunc("cluster", completeKubeconfig(func(k *clientcmdapi.Config) []string { return slices.Collect(maps.Keys(k.Clusters)) }))
	_ = c.RegisterFlagCompletionFunc("user", completeKubeconfig(func(k *clientcmdapi.Config) []string { return slices.Collect(maps.Keys(k.AuthInfos)) }))
	if takesApp(c) && c.ValidArgsFunction == nil {
		c.ValidArgsFunction = completeApps
	}
}

// takesApp is true for the commands whose argument is an Application's
// name: APP in their use line, and get applications' NAME.
func takesApp(c *cobra.Command) bool {
	fields := strings.Fields(c.Use)
	return (len(fields) > 1 && fields[1] == "APP") || c.CommandPath() == "keyless get applications"
}

// kubeFlagsOf is the connection that c's flags name, for a completion
// (cobra parsed them, but into the command's own flags struct).
func kubeFlagsOf(c *cobra.Command) *kubeFlags {
	f := kubeFlagsFor("")
	fs := pflag.NewFlagSet("completion", pflag.ContinueOnError)
	f.config.AddFlags(fs)
	fs.VisitAll(func(dst *pflag.Flag) {
		src := c.Flags().Lookup(dst.Name)
		if src == nil || !src.Changed || src.Value.Type() != dst.Value.Type() {
			return
		}
		if s, ok := src.Value.(pflag.SliceValue); ok {
			_ = dst.Value.(pflag.SliceValue).Replace(s.GetSlice())
			return
		}
		_ = dst.Value.Set(src.Value.String())
	})
	return f
}

// completeNamespaces offers the namespaces the user may list, else the
// context's namespace; for a comma-separated list, the next item.
func completeNamespaces(c *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	kf := kubeFlagsOf(c)
	var names []string
	if cfg, err := kf.restConfig(); err == nil {
		ctx, cancel := context.WithTimeout(c.Context(), completionTimeout)
		defer cancel()
		if cs, err := kubernetes.NewForConfig(cfg); err == nil {
			if list, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err == nil {
				for i := range list.Items {
					names = append(names, list.Items[i].Name)
				}
			}
		}
	}
	if len(names) == 0 {
		if ns, err := kf.targetNamespace(); err == nil {
			names = []string{ns}
		}
	}
	prefix := ""
	if i := strings.LastIndex(toComplete, ","); i >= 0 && isListFlag(c) {
		prefix = toComplete[:i+1]
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, prefix+n)
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// isListFlag is true when the namespace flag being completed takes a
// comma-separated list (--namespaces, ui's -n).
func isListFlag(c *cobra.Command) bool {
	for _, name := range []string{"namespace", "namespaces"} {
		if f := c.Flags().Lookup(name); f != nil && strings.HasSuffix(f.Value.Type(), "Slice") {
			return true
		}
	}
	return false
}

// completeApps offers the names of the Applications in the target
// namespace (-n, else the context's), for the first argument only.
func completeApps(c *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	kf := kubeFlagsOf(c)
	ns, err := kf.targetNamespace()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	cl, err := kf.appClient()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(c.Context(), completionTimeout)
	defer cancel()
	list := &kv1.ApplicationList{}
	if err := cl.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names := make([]string, 0, len(list.Items))
	for i := range list.Items {
		names = append(names, list.Items[i].Name)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// completeKubeconfig offers the names that names picks from the kubeconfig.
func completeKubeconfig(names func(*clientcmdapi.Config) []string) cobra.CompletionFunc {
	return func(c *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		raw, err := kubeFlagsOf(c).clientConfig().RawConfig()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		out := names(&raw)
		slices.Sort(out)
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
