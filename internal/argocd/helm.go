package argocd

import (
	"encoding/json"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/render"
)

// helm carries the source's helm settings keyless has (valueFiles, $ref/path
// included, releaseName, parameters, values, valuesObject, kubeVersion,
// apiVersions), refuses fileParameters, and warns about the rest.
func (c *converter) helm(src *kv1.ApplicationSource) error {
	if vf, ok := c.take("helm.valueFiles"); ok {
		helmOf(src).ValueFiles = toStrings(vf)
	}
	if rn := c.str("helm.releaseName"); rn != "" {
		helmOf(src).ReleaseName = rn
	}
	if err := c.helmParameters(src); err != nil {
		return err
	}
	if kv := c.str("helm.kubeVersion"); kv != "" {
		helmOf(src).KubeVersion = kv
	}
	if av, ok := c.take("helm.apiVersions"); ok {
		helmOf(src).APIVersions = toStrings(av)
	}
	if err := c.helmInlineValues(src); err != nil {
		return err
	}
	c.helmDropped()
	return nil
}

// helmParameters carries helm.parameters. keyless types a value as helm
// --set does; forceString (--set-string) is exact only for a value --set
// keeps a string.
func (c *converter) helmParameters(src *kv1.ApplicationSource) error {
	params, ok := c.take("helm.parameters")
	if !ok {
		return nil
	}
	for i, p := range toSlice(params) {
		m := toMap(p)
		n, _ := m["name"].(string)
		v, _ := m["value"].(string)
		if n == "" {
			continue
		}
		if force, _ := m["forceString"].(bool); force && !staysString(v) {
			return fmt.Errorf("%s[%d] (%s) has forceString: true, but keyless types parameters as helm --set does and would not keep %q a string: set it in a values file (quoted) instead", c.path("helm.parameters"), i, n, v)
		}
		helmOf(src).Parameters = append(helmOf(src).Parameters, kv1.HelmParameter{Name: n, Value: v})
	}
	return nil
}

// staysString reports whether helm --set keeps v a string.
func staysString(v string) bool {
	values := map[string]any{}
	if err := render.SetHelmValue(values, "v", v); err != nil {
		return false
	}
	_, ok := values["v"].(string)
	return ok
}

// helmInlineValues carries helm.values (a YAML string) and helm.valuesObject
// as they are (keyless merges them as Argo CD does: after the files, before
// parameters, valuesObject replacing values) and refuses helm.fileParameters
// (helm --set-file reads a file keyless has no equivalent for).
func (c *converter) helmInlineValues(src *kv1.ApplicationSource) error {
	if v, ok := c.take("helm.values"); ok && v != nil {
		s, isString := v.(string)
		if !isString {
			return fmt.Errorf("%s must be a string of YAML (use helm.valuesObject for an object)", c.path("helm.values"))
		}
		if strings.TrimSpace(s) != "" {
			if _, err := render.InlineValues(c.path("helm.values"), []byte(s)); err != nil {
				return err
			}
			helmOf(src).Values = s
		}
	}
	if v, _ := c.take("helm.valuesObject"); len(toMap(v)) > 0 {
		raw, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("%s: %w", c.path("helm.valuesObject"), err)
		}
		helmOf(src).ValuesObject = &runtime.RawExtension{Raw: raw}
	}
	if v, _ := c.take("helm.fileParameters"); len(toSlice(v)) > 0 {
		return fmt.Errorf("%s (helm --set-file): keyless has no file parameters: move the values into a values file in Git and list it in helm.valueFiles", c.path("helm.fileParameters"))
	}
	return nil
}

// helmDropped warns about Argo CD helm options keyless does not have, each
// with what keyless does instead. skipTests: true is what keyless does.
func (c *converter) helmDropped() {
	if v := c.str("helm.version"); v != "" {
		c.warnf("%s %q dropped: keyless renders with its in-process Helm (v4)", c.path("helm.version"), v)
	}
	if c.flag("helm.passCredentials") {
		c.warnf("%s dropped: keyless sends a repository's credential to that host only, as Helm without --pass-credentials; a chart the index places on another host is fetched without it", c.path("helm.passCredentials"))
	}
	if c.flag("helm.skipCrds") {
		c.clusterWideChart = true
		c.warnf("%s dropped: keyless renders a chart's crds/, and CRDs are cluster-scoped: without spec.syncPolicy.outOfNamespace: approve the chart does not sync; with it, a cluster admin applies the CRDs (keyless approve) and the controller the rest", c.path("helm.skipCrds"))
	}
	if c.flag("helm.ignoreMissingValueFiles") {
		c.warnf("%s dropped: keyless fails the render when a values file is missing; remove the entries that may not exist", c.path("helm.ignoreMissingValueFiles"))
	}
	if c.flag("helm.skipSchemaValidation") {
		c.warnf("%s dropped: keyless validates values against the chart's values.schema.json, as helm template does", c.path("helm.skipSchemaValidation"))
	}
	if v, ok := c.take("helm.skipTests"); ok && !isTrue(v) {
		c.warnf("%s: false dropped: keyless never renders a chart's test hooks (helm template --skip-tests)", c.path("helm.skipTests"))
	}
	if ns := c.str("helm.namespace"); ns != "" && ns != c.namespace {
		c.warnf("%s %q dropped: keyless renders .Release.Namespace as the Application's namespace %q, the only one it deploys to", c.path("helm.namespace"), ns, c.namespace)
	}
}

// flag takes a boolean at path; false when absent.
func (c *converter) flag(path string) bool {
	v, _ := c.take(path)
	return isTrue(v)
}

func isTrue(v any) bool {
	b, _ := v.(bool)
	return b
}
