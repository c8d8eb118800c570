package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/keyless-cd/keyless/internal/confine"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/keyless-cd/keyless/internal/engine"
	"github.com/keyless-cd/keyless/internal/render"
	"github.com/keyless-cd/keyless/internal/renderproc"
	"github.com/keyless-cd/keyless/internal/version"
)

// renderFlags select and configure what a directory renders to.
type renderFlags struct {
	root        string
	helmValues  []string
	helmSet     []string
	releaseName string
	kubeVersion string
	apiVersions []string
	maxObjects  int
	maxFileSize int64
	limits      renderLimitFlags
	directory   directoryFlags
	keyFile     string
	// readEncrypted reads SOPS files as ciphertext when no key is given
	// (set by commands that need only kinds and names, not values).
	readEncrypted bool
}

func (f *renderFlags) addFlags(fl *pflag.FlagSet) {
	fl.StringVar(&f.root, "root", "", "repository root; nothing outside it is read (default the enclosing Git checkout, else DIR)")
	fl.StringArrayVar(&f.helmValues, "helm-values", nil, "Helm values file, merged in order (repeatable; must be inside --root)")
	fl.StringArrayVar(&f.helmSet, "helm-set", nil, "Helm value as path=value, e.g. image.tag=abc123 (repeatable; applied after the files)")
	fl.StringVar(&f.releaseName, "release-name", "", "Helm release name (default the chart name)")
	fl.StringVar(&f.kubeVersion, "kube-version", "", "Kubernetes version for Helm's .Capabilities.KubeVersion, as helm template --kube-version (default "+version.KubernetesVersion()+"; the controller uses the cluster's)")
	fl.StringSliceVarP(&f.apiVersions, "api-versions", "a", nil, "API versions for Helm's .Capabilities.APIVersions, as helm template --api-versions, e.g. monitoring.coreos.com/v1 (repeatable or comma-separated; the controller uses the cluster's)")
	fl.IntVar(&f.maxObjects, "max-objects", render.DefaultLimits.MaxObjects, "refuse renders with more objects")
	fl.Int64Var(&f.maxFileSize, "max-file-size", render.DefaultLimits.MaxFileBytes, "refuse files larger than this many bytes")
	fl.StringVar(&f.keyFile, "decryption-key-file", "", "age identities (age-keygen's key file) or an armored OpenPGP private key to decrypt SOPS-encrypted files with, in memory (default $"+sopsAgeKeyFileEnv+" when set)")
	f.limits.addFlags(fl)
	f.directory.addFlags(fl)
}

// render renders dir for namespace in a bounded child process; the render's
// warnings (files not rendered, …) go to warnings.
func (f *renderFlags) render(ctx context.Context, warnings io.Writer, dir, namespace string) (*render.Result, error) {
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(absDir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	root := f.root
	if root == "" {
		root = gitRoot(absDir)
	}
	root, err = filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if !confine.Within(root, absDir) {
		return nil, fmt.Errorf("%s is outside the root %s: %w", dir, root, confine.ErrOutsideRoot)
	}
	rel := confine.Rel(root, absDir)
	opts := render.Options{
		Root: root, Path: rel, Namespace: namespace,
		Helm:   render.HelmOptions{ReleaseName: f.releaseName, KubeVersion: f.kubeVersion, APIVersions: f.apiVersions},
		Limits: render.Limits{MaxObjects: f.maxObjects, MaxFileBytes: f.maxFileSize},
	}
	for _, v := range f.helmValues {
		// Given relative to the working directory; the renderer wants them
		// relative to the chart (and checks they stay inside the root).
		abs, err := filepath.Abs(v)
		if err != nil {
			return nil, err
		}
		relToChart, err := filepath.Rel(absDir, abs)
		if err != nil {
			return nil, fmt.Errorf("--helm-values %s: %w", v, err)
		}
		opts.Helm.ValueFiles = append(opts.Helm.ValueFiles, relToChart)
	}
	if opts.Helm.Values, err = parseSetValues(f.helmSet); err != nil {
		return nil, err
	}
	if opts.Directory, err = f.directory.options(); err != nil {
		return nil, err
	}
	if opts.Decryption, err = decryptionFromKeyFile(f.keyFile); err != nil {
		return nil, err
	}
	opts.ReadEncrypted = f.readEncrypted
	// Rendered in a child process under the same limits as the controller's.
	runner, err := renderproc.New(f.limits.options())
	if err != nil {
		return nil, err
	}
	res, err := runner.Render(ctx, opts)
	if err != nil {
		return nil, err
	}
	for _, w := range res.Warnings {
		_, _ = fmt.Fprintf(warnings, "warning: %s\n", w)
	}
	return res, nil
}

// parseSetValues turns ["a.b=1", ...] into nested values with Helm's --set
// semantics (render.SetHelmValue), as the controller does for
// spec.source.helm.parameters.
func parseSetValues(sets []string) (map[string]any, error) {
	out := map[string]any{}
	for _, s := range sets {
		path, raw, ok := strings.Cut(s, "=")
		if !ok || path == "" {
			return nil, fmt.Errorf("--helm-set %q: want path=value", s)
		}
		if err := render.SetHelmValue(out, path, raw); err != nil {
			return nil, fmt.Errorf("--helm-set %q: %w", s, err)
		}
	}
	return out, nil
}

// gitRoot returns the nearest ancestor of dir holding .git, else dir.
func gitRoot(dir string) string {
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, ".git")); err == nil {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			return dir
		}
		d = parent
	}
}

// inventoryName returns --name, else DIR's base name when it is a valid name.
func inventoryName(flag, dir string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	base := strings.ToLower(filepath.Base(abs))
	if errs := validation.IsDNS1123Label(base); len(errs) > 0 {
		return "", errors.New("cannot derive an inventory name from " + dir + ": pass --name (a DNS label, e.g. --name myapp)")
	}
	return base, nil
}

// target is what diff and apply work on: a namespace, an inventory name, the
// rendered objects and an engine for the cluster.
type target struct {
	namespace string
	name      string
	rendered  *render.Result
	engine    *engine.Engine
}

// prepareTarget checks the flags, renders dir and connects to the cluster.
func prepareTarget(cmd *cobra.Command, kf *kubeFlags, rf *renderFlags, nameFlag, output, dir string) (*target, error) {
	if err := checkOutput(output); err != nil {
		return nil, err
	}
	ns, err := kf.targetNamespace()
	if err != nil {
		return nil, err
	}
	name, err := inventoryName(nameFlag, dir)
	if err != nil {
		return nil, err
	}
	rendered, err := rf.render(cmd.Context(), cmd.ErrOrStderr(), dir, ns)
	if err != nil {
		return nil, err
	}
	cfg, err := kf.restConfig()
	if err != nil {
		return nil, err
	}
	e, err := engine.New(cfg)
	if err != nil {
		return nil, err
	}
	return &target{namespace: ns, name: name, rendered: rendered, engine: e}, nil
}
