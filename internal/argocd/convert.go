// Package argocd converts Argo CD Applications into keyless Applications.
// Field names match on purpose; what keyless does not support is listed as a
// warning, never dropped silently.
package argocd

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// MaxInput caps the size of an Argo CD manifest.
const MaxInput = 1 << 20

// Result is a converted Application and what could not be carried over.
type Result struct {
	Application *kv1.Application
	Warnings    []string
}

// OutOfNamespaceNote is said of every imported chart: Argo CD applies a
// chart's CRDs and cluster-scoped objects with its cluster-wide rights;
// keyless refuses them unless a person approves them.
const OutOfNamespaceNote = "note: a chart whose render holds CRDs, cluster-scoped objects (ClusterRoles, webhook configurations) or objects of other namespaces is refused whole by default; " +
	"set spec.syncPolicy.outOfNamespace: approve to hold such a revision until a cluster admin applies those objects with their own credential (keyless approve APP -n NS), " +
	"the rest synced by the controller (docs/gitops.md)"

// clusterWideCharts are charts whose purpose needs CRDs, cluster-scoped
// objects or webhooks (the common ones of the 113 real app folders keyless
// was measured on).
var clusterWideCharts = []string{"cert-manager", "ingress-nginx", "kube-prometheus-stack", "argo-rollouts", "kyverno", "kyverno-policies",
	"external-secrets", "sealed-secrets", "keda", "strimzi-kafka-operator", "cloudnative-pg", "crossplane", "prometheus-operator-crds",
	"fluent-bit", "grafana", "external-dns", "metrics-server", "velero", "trivy-operator", "gatekeeper", "istiod", "base"}

func knownClusterWideChart(chart string) bool {
	return chart != "" && slices.Contains(clusterWideCharts, chart)
}

// Convert reads one argoproj.io/v1alpha1 Application (YAML or JSON).
func Convert(data []byte) (*Result, error) {
	if len(data) > MaxInput {
		return nil, fmt.Errorf("input is larger than %d bytes", MaxInput)
	}
	var in map[string]any
	if err := yaml.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	if in == nil {
		return nil, errors.New("empty input")
	}
	c := &converter{in: in}
	app, err := c.convert()
	if err != nil {
		return nil, err
	}
	for _, path := range c.leftovers(in, "") {
		c.warnf("%s is not supported by keyless and was dropped", path)
	}
	if c.clusterWideChart || knownClusterWideChart(app.Spec.Source.Chart) {
		c.warnf("%s", OutOfNamespaceNote)
	}
	sort.Strings(c.warnings)
	return &Result{Application: app, Warnings: c.warnings}, nil
}

type converter struct {
	in map[string]any
	// where names in in messages: "" for the Application, "spec.source" or
	// "spec.sources[i]" for one source.
	where string
	// namespace is the destination namespace (the Application's).
	namespace string
	warnings  []string
	// clusterWideChart: the Application says its chart holds CRDs or
	// cluster-scoped objects (helm.skipCrds, or syncOptions only such
	// charts need).
	clusterWideChart bool
}

// path is p (a path inside in) as messages name it.
func (c *converter) path(p string) string {
	if c.where == "" {
		return p
	}
	return c.where + "." + p
}

func (c *converter) warnf(format string, a ...any) {
	c.warnings = append(c.warnings, fmt.Sprintf(format, a...))
}

// take removes and returns the value at path (dot-separated).
func (c *converter) take(path string) (any, bool) {
	parts := strings.Split(path, ".")
	m := c.in
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			return nil, false
		}
		m = next
	}
	v, ok := m[parts[len(parts)-1]]
	delete(m, parts[len(parts)-1])
	return v, ok
}

func (c *converter) str(path string) string {
	v, _ := c.take(path)
	s, _ := v.(string)
	return s
}

func (c *converter) convert() (*kv1.Application, error) {
	if av, kind := c.str("apiVersion"), c.str("kind"); av != "argoproj.io/v1alpha1" || kind != "Application" {
		return nil, fmt.Errorf("expected apiVersion argoproj.io/v1alpha1, kind Application; got %s %s", av, kind)
	}
	name := c.str("metadata.name")
	if name == "" {
		return nil, errors.New("metadata.name is missing")
	}
	if ns := c.str("metadata.namespace"); ns != "" && ns != "argocd" {
		c.warnf("metadata.namespace %q: a keyless Application lives in the namespace it deploys to (spec.destination.namespace)", ns)
	}
	if v, ok := c.take("metadata.finalizers"); ok {
		c.warnf("metadata.finalizers %v dropped: keyless deletes what an Application deployed by default (annotate keyless.dev/deletion-policy: orphan to keep it)", v)
	}
	labels, _ := c.take("metadata.labels")
	annotations, _ := c.take("metadata.annotations")

	dest := c.str("spec.destination.namespace")
	if dest == "" {
		return nil, errors.New("spec.destination.namespace is missing: keyless deploys an Application into its own namespace, which must be named")
	}
	if server := c.str("spec.destination.server"); server != "" && strings.TrimSuffix(server, "/") != kv1.InClusterServer {
		return nil, fmt.Errorf("spec.destination.server %q is another cluster: keyless is pull-based; run a keyless controller in that cluster and create the Application there", server)
	}
	if dn := c.str("spec.destination.name"); dn != "" && dn != "in-cluster" {
		return nil, fmt.Errorf("spec.destination.name %q is another cluster: keyless is pull-based; run a keyless controller in that cluster", dn)
	}
	if p := c.str("spec.project"); p != "" && p != "default" {
		c.warnf("spec.project %q dropped: keyless confines each Application to its namespace and deployer Role instead of Argo CD projects", p)
	}

	app := &kv1.Application{
		TypeMeta:   metav1.TypeMeta{APIVersion: kv1.GroupVersion.String(), Kind: "Application"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: dest, Labels: toStringMap(labels), Annotations: toStringMap(annotations)},
	}
	if err := c.sources(&app.Spec, dest); err != nil {
		return nil, err
	}

	if auto, ok := c.take("spec.syncPolicy.automated"); ok {
		m, _ := auto.(map[string]any)
		a := &kv1.AutomatedSyncPolicy{}
		a.Prune, _ = m["prune"].(bool)
		a.SelfHeal, _ = m["selfHeal"].(bool)
		a.AllowEmpty, _ = m["allowEmpty"].(bool)
		for k := range m {
			if k != "prune" && k != "selfHeal" && k != "allowEmpty" {
				c.warnf("spec.syncPolicy.automated.%s is not supported by keyless and was dropped", k)
			}
		}
		app.Spec.SyncPolicy = &kv1.SyncPolicy{Automated: a}
	}
	if opts, ok := c.take("spec.syncPolicy.syncOptions"); ok {
		for _, o := range toStrings(opts) {
			switch {
			case o == "CreateNamespace=true":
				c.warnf("syncOption CreateNamespace=true dropped: keyless never creates namespaces; a cluster admin creates %q with its deployer Role", dest)
			case o == "SkipDryRunOnMissingResource=true":
				// Custom resources of CRDs the same sync installs.
				c.clusterWideChart = true
				c.warnf("syncOption %s dropped: keyless dry-runs custom resources after the CRDs they need are applied", o)
			case slices.Contains(kv1.HonouredSyncOptions, o):
				if app.Spec.SyncPolicy == nil {
					app.Spec.SyncPolicy = &kv1.SyncPolicy{}
				}
				app.Spec.SyncPolicy.SyncOptions = append(app.Spec.SyncPolicy.SyncOptions, o)
			default:
				c.warnf("syncOption %s is not supported by keyless and was dropped (keyless honours %s)", o, strings.Join(kv1.HonouredSyncOptions, ", "))
			}
		}
	}
	return app, nil
}

// helmOf returns the source's Helm settings, creating them.
func helmOf(s *kv1.ApplicationSource) *kv1.HelmSource {
	if s.Helm == nil {
		s.Helm = &kv1.HelmSource{}
	}
	return s.Helm
}

// leftovers lists the paths of every value not consumed.
func (c *converter) leftovers(m map[string]any, prefix string) []string {
	var out []string
	for k, v := range m {
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok {
			out = append(out, c.leftovers(sub, path)...)
			continue
		}
		if path == "status" || strings.HasPrefix(path, "status.") || strings.HasPrefix(path, "metadata.") || path == "operation" {
			continue
		}
		out = append(out, path)
	}
	return out
}

func toStringMap(v any) map[string]string {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		return nil
	}
	out := map[string]string{}
	for k, val := range m {
		if s, ok := val.(string); ok {
			out[k] = s
		}
	}
	return out
}

func toSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func toStrings(v any) []string {
	var out []string
	for _, x := range toSlice(v) {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
