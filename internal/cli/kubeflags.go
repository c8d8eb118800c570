package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// kubeFlags are the kubectl-style connection flags: --kubeconfig, --context, -n.
type kubeFlags struct {
	kubeconfig string
	context    string
	namespace  string
}

func (f *kubeFlags) addFlags(fl *pflag.FlagSet) {
	f.addKubeconfigFlags(fl)
	fl.StringVarP(&f.namespace, "namespace", "n", "", "target namespace (default the context's namespace); nothing is written outside it")
}

// addKubeconfigFlags adds --kubeconfig and --context only: for commands that
// write to fixed namespaces of their own (install), where -n means nothing.
func (f *kubeFlags) addKubeconfigFlags(fl *pflag.FlagSet) {
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default $KUBECONFIG, else ~/.kube/config)")
	fl.StringVar(&f.context, "context", "", "kubeconfig context to use (default the current context)")
}

func (f *kubeFlags) clientConfig() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: f.context}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
}

// restConfig returns the client configuration, as kubectl would build it.
func (f *kubeFlags) restConfig() (*rest.Config, error) {
	cfg, err := f.clientConfig().ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, errors.New("no cluster configured: pass --kubeconfig or set $KUBECONFIG (try `make cluster` for a local one)")
		}
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	cfg.UserAgent = "keyless"
	return cfg, nil
}

// targetNamespace returns -n, else the namespace the context names. It never
// falls back to "default": a deploy tool must be told where to write.
func (f *kubeFlags) targetNamespace() (string, error) {
	if f.namespace != "" {
		return f.namespace, nil
	}
	raw, err := f.clientConfig().RawConfig()
	if err == nil {
		name := f.context
		if name == "" {
			name = raw.CurrentContext
		}
		if ctx, ok := raw.Contexts[name]; ok && ctx.Namespace != "" {
			return ctx.Namespace, nil
		}
	}
	return "", errors.New("no target namespace: pass -n/--namespace (or set one in the kubeconfig context)")
}
