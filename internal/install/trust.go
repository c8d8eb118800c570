package install

import (
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The signed-artifact trust of the controller (Options.Trust): the
// FederationPolicy and the Sigstore trusted root, in a ConfigMap of the
// controller's namespace mounted read-only into the Deployment and named by
// --trust-policy and --trusted-root. Public material only (a policy, CA
// certificates, a trusted root): a ConfigMap, not a Secret.
const (
	// TrustConfigMap is the ConfigMap's name.
	TrustConfigMap = "keyless-trust"
	// TrustMountPath is where it is mounted.
	TrustMountPath = "/etc/keyless/trust"
	// TrustPolicyFile and TrustedRootFile are its two required keys.
	TrustPolicyFile = "policy.yaml"
	TrustedRootFile = "trusted_root.json"
)

// trustConfigMap is the ConfigMap holding opts.Trust.
func trustConfigMap(opts Options) (*unstructured.Unstructured, error) {
	for _, k := range []string{TrustPolicyFile, TrustedRootFile} {
		if len(opts.Trust[k]) == 0 {
			return nil, fmt.Errorf("the controller's trust needs %s", k)
		}
	}
	data := map[string]any{}
	for k, v := range opts.Trust {
		data[k] = string(v)
	}
	cm := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": TrustConfigMap, "namespace": opts.ControllerNamespace},
		"data":     data,
	}}
	return cm, nil
}

// mountTrust mounts the trust ConfigMap into the Deployment's controller
// container and passes its files to the controller.
func mountTrust(d *unstructured.Unstructured) error {
	return addToController(d, controllerAdditions{
		mounts:  []any{map[string]any{"name": "trust", "mountPath": TrustMountPath, "readOnly": true}},
		args:    []any{"--trust-policy=" + TrustMountPath + "/" + TrustPolicyFile, "--trusted-root=" + TrustMountPath + "/" + TrustedRootFile},
		volumes: []any{map[string]any{"name": "trust", "configMap": map[string]any{"name": TrustConfigMap}}},
	})
}

// controllerAdditions are volume mounts and flags for the controller
// container, the volumes they name, and more of the pod's spec.
type controllerAdditions struct {
	mounts, args, volumes []any
	pod                   func(spec map[string]any)
}

// addToController adds a to the Deployment's controller container and pod.
func addToController(d *unstructured.Unstructured, a controllerAdditions) error {
	spec, _, _ := unstructured.NestedMap(d.Object, "spec", "template", "spec")
	containers, _ := spec["containers"].([]any)
	c, ok := containers[0].(map[string]any)
	if !ok {
		return fmt.Errorf("deployment %s: container is not an object", d.GetName())
	}
	mounts, _ := c["volumeMounts"].([]any)
	c["volumeMounts"] = append(mounts, a.mounts...)
	args, _ := c["args"].([]any)
	c["args"] = append(args, a.args...)
	containers[0] = c
	spec["containers"] = containers
	volumes, _ := spec["volumes"].([]any)
	spec["volumes"] = append(volumes, a.volumes...)
	if a.pod != nil {
		a.pod(spec)
	}
	return unstructured.SetNestedMap(d.Object, spec, "spec", "template", "spec")
}

// trustKeys are opts.Trust's file names, sorted (for messages).
func trustKeys(trust map[string][]byte) []string {
	out := make([]string, 0, len(trust))
	for k := range trust {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
