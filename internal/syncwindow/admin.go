package syncwindow

import (
	"fmt"
	"slices"

	"sigs.k8s.io/yaml"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// The cluster admin's windows: the ConfigMap AdminConfigMap in the
// controller's namespace, key AdminKey, a YAML list of windows each with
// the namespaces it applies to ("*" for all). A namespace admin cannot
// change it (it is not in their namespace), so a freeze the platform sets
// holds whatever an Application says.
const (
	AdminConfigMap = "keyless-sync-windows"
	AdminKey       = "windows.yaml"
	// MaxAdminBytes bounds the key.
	MaxAdminBytes = 256 << 10
)

// adminWindow is one entry of AdminKey.
type adminWindow struct {
	Namespaces     []string `json:"namespaces"`
	kv1.SyncWindow `json:",inline"`
}

// AdminWindows returns the cluster admin's windows (data is AdminKey's
// value) that apply to namespace.
func AdminWindows(data []byte, namespace string) ([]Window, error) {
	if len(data) > MaxAdminBytes {
		return nil, fmt.Errorf("%w: %s/%s is %d bytes (at most %d)", ErrInvalid, AdminConfigMap, AdminKey, len(data), MaxAdminBytes)
	}
	var entries []adminWindow
	if err := yaml.UnmarshalStrict(data, &entries); err != nil {
		return nil, fmt.Errorf("%w: %s/%s: a YAML list of windows (namespaces, kind, schedule, duration, timeZone, manualSync, selfHeal): %w", ErrInvalid, AdminConfigMap, AdminKey, err)
	}
	var out []Window
	for i, e := range entries {
		if len(e.Namespaces) == 0 {
			return nil, fmt.Errorf("%w: %s[%d]: namespaces is required (\"*\" for all)", ErrInvalid, AdminConfigMap, i)
		}
		if slices.Contains(e.Namespaces, "*") || slices.Contains(e.Namespaces, namespace) {
			out = append(out, Window{SyncWindow: e.SyncWindow, Source: fmt.Sprintf("%s[%d]", AdminConfigMap, i)})
		}
	}
	return out, nil
}
