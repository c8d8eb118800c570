package install

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestInstallMountsTheTrust: with Options.Trust the controller's Deployment
// mounts the keyless-trust ConfigMap read-only and names its files in
// --trust-policy and --trusted-root; without, neither is there; a trust
// without its trusted root is refused.
func TestInstallMountsTheTrust(t *testing.T) {
	trust := map[string][]byte{TrustPolicyFile: []byte("kind: FederationPolicy\n"), TrustedRootFile: []byte("{}"), "ca-gitlab.pem": []byte("PEM")}
	m, err := Render(t.Context(), Options{Namespaces: []string{"team-a"}, WithDeployment: true, Trust: trust})
	if err != nil {
		t.Fatal(err)
	}
	var cm, deploy *unstructured.Unstructured
	for _, o := range m.Controller {
		switch {
		case o.GetKind() == "ConfigMap" && o.GetName() == TrustConfigMap:
			cm = o
		case o.GetKind() == kindDeployment:
			deploy = o
		}
	}
	if cm == nil || cm.GetNamespace() != DefaultControllerNamespace {
		t.Fatalf("no ConfigMap %s in the controller's namespace", TrustConfigMap)
	}
	data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
	if data[TrustPolicyFile] != "kind: FederationPolicy\n" || data["ca-gitlab.pem"] != "PEM" || data[TrustedRootFile] != "{}" {
		t.Errorf("ConfigMap data %v", data)
	}
	containers, _, _ := unstructured.NestedSlice(deploy.Object, "spec", "template", "spec", "containers")
	c := containers[0].(map[string]any)
	args, _, _ := unstructured.NestedStringSlice(c, "args")
	for _, want := range []string{"--trust-policy=" + TrustMountPath + "/" + TrustPolicyFile, "--trusted-root=" + TrustMountPath + "/" + TrustedRootFile} {
		if !slices.Contains(args, want) {
			t.Errorf("args %v lack %s", args, want)
		}
	}
	mounts, _, _ := unstructured.NestedSlice(c, "volumeMounts")
	if !slices.ContainsFunc(mounts, func(v any) bool {
		mm := v.(map[string]any)
		ro, _ := mm["readOnly"].(bool)
		return mm["mountPath"] == TrustMountPath && ro
	}) {
		t.Errorf("no read-only mount at %s: %v", TrustMountPath, mounts)
	}
	volumes, _, _ := unstructured.NestedSlice(deploy.Object, "spec", "template", "spec", "volumes")
	if !slices.ContainsFunc(volumes, func(v any) bool {
		cmv, _ := v.(map[string]any)["configMap"].(map[string]any)
		return cmv["name"] == TrustConfigMap
	}) {
		t.Errorf("no volume of ConfigMap %s: %v", TrustConfigMap, volumes)
	}

	plain, err := Render(t.Context(), Options{Namespaces: []string{"team-a"}, WithDeployment: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range plain.Controller {
		if o.GetName() == TrustConfigMap {
			t.Error("a trust ConfigMap without Options.Trust")
		}
	}
	if _, err := Render(t.Context(), Options{Namespaces: []string{"team-a"}, WithDeployment: true, Trust: map[string][]byte{TrustPolicyFile: []byte("x")}}); err == nil {
		t.Error("a trust without its trusted root was rendered")
	}
}
