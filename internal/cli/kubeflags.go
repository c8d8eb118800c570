package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/keyless-cd/keyless/internal/approver"
)

// userAgent is the User-Agent of every request the CLI makes.
const userAgent = "keyless"

// kubeFlags are kubectl's connection flags, from k8s.io/cli-runtime
// (genericclioptions.ConfigFlags): --kubeconfig, --context, --cluster,
// --user, -n/--namespace, -s/--server, --token, --as, --as-group, --as-uid,
// --certificate-authority, --insecure-skip-tls-verify, --request-timeout….
// The zero value is ready: addFlags or addKubeconfigFlags binds the flags;
// without either (the controller, tests) kubeFlagsFor sets the kubeconfig.
type kubeFlags struct {
	config *genericclioptions.ConfigFlags
}

// kubeFlagsFor is the connection of a kubeconfig file ("" for $KUBECONFIG,
// else ~/.kube/config), for callers that parse no flags.
func kubeFlagsFor(kubeconfig string) *kubeFlags {
	f := &kubeFlags{config: newConfigFlags()}
	*f.config.KubeConfig = kubeconfig
	return f
}

// newConfigFlags is ConfigFlags without --cache-dir (keyless keeps no
// discovery cache).
func newConfigFlags() *genericclioptions.ConfigFlags {
	cf := genericclioptions.NewConfigFlags(true)
	cf.CacheDir = nil
	return cf
}

// addFlags adds every connection flag, -n/--namespace included.
func (f *kubeFlags) addFlags(fl *pflag.FlagSet) {
	f.config = newConfigFlags()
	f.bind(fl)
	fl.Lookup("namespace").Usage = "target namespace (default the context's namespace); nothing is written outside it"
}

// addKubeconfigFlags adds the connection flags but -n: for commands that
// write to fixed namespaces of their own (install) or take -n otherwise (ui).
func (f *kubeFlags) addKubeconfigFlags(fl *pflag.FlagSet) {
	f.config = newConfigFlags()
	f.config.Namespace = nil
	f.bind(fl)
}

func (f *kubeFlags) bind(fl *pflag.FlagSet) {
	f.config.AddFlags(fl)
	fl.Lookup("kubeconfig").Usage = "path to the kubeconfig file (default $KUBECONFIG, else ~/.kube/config)"
	fl.Lookup("context").Usage = "kubeconfig context to use (default the current context)"
}

// flags returns the ConfigFlags, a default one when no flag was bound.
func (f *kubeFlags) flags() *genericclioptions.ConfigFlags {
	if f.config == nil {
		f.config = newConfigFlags()
	}
	return f.config
}

func (f *kubeFlags) clientConfig() clientcmd.ClientConfig {
	return f.flags().ToRawKubeConfigLoader()
}

// restConfig returns the client configuration, as kubectl builds it from
// the kubeconfig and the flags. Where neither names a cluster (and keyless
// is not running in one) it says so instead of trying localhost:8080.
func (f *kubeFlags) restConfig() (*rest.Config, error) {
	cf := f.flags()
	cfg, err := cf.ToRESTConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, errNoCluster
		}
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	if f.unconfigured(cfg) {
		return nil, errNoCluster
	}
	cfg.UserAgent = userAgent
	return cfg, nil
}

var errNoCluster = errors.New("no cluster configured: pass --kubeconfig (or --server) or set $KUBECONFIG (try `make cluster` for a local one)")

// unconfigured is true when cfg is client-go's legacy default (the
// kubeconfig names no cluster and no --server was given).
func (f *kubeFlags) unconfigured(cfg *rest.Config) bool {
	if *f.flags().APIServer != "" || cfg.Host != clientcmd.ClusterDefaults.Server {
		return false
	}
	raw, err := f.clientConfig().RawConfig()
	return err == nil && len(raw.Clusters) == 0
}

// targetNamespace returns -n, else the namespace the context names. It never
// falls back to "default": a deploy tool must be told where to write.
func (f *kubeFlags) targetNamespace() (string, error) {
	cf := f.flags()
	if cf.Namespace != nil && *cf.Namespace != "" {
		return *cf.Namespace, nil
	}
	raw, err := f.clientConfig().RawConfig()
	if err == nil {
		name := *cf.Context
		if name == "" {
			name = raw.CurrentContext
		}
		if ctx, ok := raw.Contexts[name]; ok && ctx.Namespace != "" {
			return ctx.Namespace, nil
		}
	}
	return "", errors.New("no target namespace: pass -n/--namespace (or set one in the kubeconfig context)")
}

// whoAmI is the name the API server gives this connection's credential
// (SelfSubjectReview): whom an approval, a window override or a pause
// records.
func (f *kubeFlags) whoAmI(ctx context.Context) (string, error) {
	cfg, err := f.restConfig()
	if err != nil {
		return "", err
	}
	return approver.WhoAmI(ctx, cfg)
}
