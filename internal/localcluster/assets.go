package localcluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// AssetsEnv is the environment variable naming the folder with the
// control-plane binaries (the envtest convention).
const AssetsEnv = "KUBEBUILDER_ASSETS"

// DefaultAssetsDir is where `make k8s-bins` puts the binaries, relative to the
// repository root.
const DefaultAssetsDir = "bin/k8s"

// RequiredBinaries are the binaries Start needs in the assets folder.
var RequiredBinaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}

// ErrMissingBinary is returned (wrapped) when an assets folder lacks a binary.
var ErrMissingBinary = errors.New("missing control-plane binary")

// ResolveAssets picks the assets folder: flag, else $KUBEBUILDER_ASSETS, else
// ./bin/k8s. It does not check the folder's contents; see CheckAssets.
func ResolveAssets(flag string) string {
	if flag != "" {
		return flag
	}
	if env := os.Getenv(AssetsEnv); env != "" {
		return env
	}
	return DefaultAssetsDir
}

// CheckAssets returns an error naming every required binary missing from dir
// and telling how to build them.
func CheckAssets(dir string) error {
	var missing []string
	for _, b := range RequiredBinaries {
		fi, err := os.Stat(filepath.Join(dir, b))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s not found in %s; run `make k8s-bins` to build the local control plane (or point --assets / $%s at a folder that has them)",
			ErrMissingBinary, strings.Join(missing, ", "), dir, AssetsEnv)
	}
	return nil
}
