package install

import (
	"fmt"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestInstallConventions: the conventions every installed object and the
// controller's workload keep, one row each.
func TestInstallConventions(t *testing.T) {
	m, err := Render(t.Context(), Options{Namespaces: []string{"team-a"}, WithDeployment: true, CredentialMountPolicy: true, Version: "v1.2.3", Instance: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	all := m.All([]string{"team-a"})
	find := func(kind, ns, name string) *unstructured.Unstructured {
		for _, o := range all {
			if o.GetKind() == kind && o.GetNamespace() == ns && o.GetName() == name {
				return o
			}
		}
		t.Fatalf("no %s %s/%s in the install", kind, ns, name)
		return nil
	}
	deploy := find(kindDeployment, DefaultControllerNamespace, DeploymentName)
	podSpec := func(path ...string) any {
		v, _, _ := unstructured.NestedFieldNoCopy(deploy.Object, append([]string{"spec", "template", "spec"}, path...)...)
		return v
	}
	container := podSpec("containers").([]any)[0].(map[string]any)
	selector, _, _ := unstructured.NestedStringMap(deploy.Object, "spec", "selector", "matchLabels")
	for _, tc := range []struct {
		name  string
		check func() error
	}{
		{"recommended labels on every object", func() error {
			want := map[string]string{PartOfLabel: PartOf, InstanceLabel: "prod", VersionLabel: "v1.2.3"}
			for _, o := range all {
				l := o.GetLabels()
				for k, v := range want {
					if l[k] != v {
						return fmt.Errorf("%s %s/%s: %s=%q, want %q", o.GetKind(), o.GetNamespace(), o.GetName(), k, l[k], v)
					}
				}
				if l[NameLabel] == "" {
					return fmt.Errorf("%s %s: no %s", o.GetKind(), o.GetName(), NameLabel)
				}
			}
			return nil
		}},
		{"pod template labelled too, selector unchanged", func() error {
			tl, _, _ := unstructured.NestedStringMap(deploy.Object, "spec", "template", "metadata", "labels")
			if tl[VersionLabel] != "v1.2.3" || tl[InstanceLabel] != "prod" {
				return fmt.Errorf("pod template labels %v", tl)
			}
			if !reflect.DeepEqual(selector, map[string]string{NameLabel: DeploymentName}) {
				return fmt.Errorf("selector %v: changing it breaks upgrades (immutable)", selector)
			}
			return nil
		}},
		{"two replicas", func() error {
			if r, _, _ := unstructured.NestedInt64(deploy.Object, "spec", "replicas"); r != 2 {
				return fmt.Errorf("replicas %d", r)
			}
			return nil
		}},
		{"PodDisruptionBudget keeps one", func() error {
			pdb := find("PodDisruptionBudget", DefaultControllerNamespace, DeploymentName)
			minAvailable, _, _ := unstructured.NestedFieldNoCopy(pdb.Object, "spec", "minAvailable")
			sel, _, _ := unstructured.NestedStringMap(pdb.Object, "spec", "selector", "matchLabels")
			if fmt.Sprint(minAvailable) != "1" || !reflect.DeepEqual(sel, selector) {
				return fmt.Errorf("minAvailable %v, selector %v", minAvailable, sel)
			}
			return nil
		}},
		{"replicas spread over nodes", func() error {
			tsc, _ := podSpec("topologySpreadConstraints").([]any)
			if len(tsc) == 0 || tsc[0].(map[string]any)["topologyKey"] != "kubernetes.io/hostname" {
				return fmt.Errorf("topologySpreadConstraints %v", tsc)
			}
			if podSpec("affinity", "podAntiAffinity") == nil {
				return fmt.Errorf("no pod anti-affinity")
			}
			return nil
		}},
		{"cache volume bounded, ephemeral storage requested", func() error {
			for _, v := range podSpec("volumes").([]any) {
				vol := v.(map[string]any)
				if vol["name"] == "cache" {
					if limit, _, _ := unstructured.NestedString(vol, "emptyDir", "sizeLimit"); limit == "" {
						return fmt.Errorf("cache emptyDir has no sizeLimit")
					}
				}
			}
			if r, _, _ := unstructured.NestedString(container, "resources", "requests", "ephemeral-storage"); r == "" {
				return fmt.Errorf("no ephemeral-storage request")
			}
			return nil
		}},
		{"keyless-system enforces restricted", func() error {
			if l := find("Namespace", "", DefaultControllerNamespace).GetLabels(); l[PodSecurityEnforceLabel] != PodSecurityRestricted {
				return fmt.Errorf("labels %v", l)
			}
			return nil
		}},
		{"no pruner deletes a team's namespace or the CRD", func() error {
			for _, o := range []*unstructured.Unstructured{find("Namespace", "", "team-a"), find("CustomResourceDefinition", "", "applications.keyless.dev")} {
				for k, v := range NoPruneAnnotations {
					if o.GetAnnotations()[k] != v {
						return fmt.Errorf("%s %s: %s=%q", o.GetKind(), o.GetName(), k, o.GetAnnotations()[k])
					}
				}
			}
			return nil
		}},
		{"no Secret", func() error {
			for _, o := range all {
				if o.GetKind() == "Secret" {
					return fmt.Errorf("secret %s in the export", o.GetName())
				}
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.check(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestLabelValue(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3":                 "v1.2.3",
		"1d9788d-dirty":          "1d9788d-dirty",
		"v1.2.3+build.4":         "v1.2.3_build.4",
		"-devel-":                "devel",
		string(make([]byte, 70)): "",
	} {
		if got := labelValue(in); got != want {
			t.Errorf("labelValue(%q) = %q, want %q", in, got, want)
		}
	}
}
