package install

import (
	"fmt"

	"sigs.k8s.io/yaml"
)

// The Prometheus Operator objects (config/install/monitoring): a
// ServiceMonitor (or the PodMonitor beside it) and the alerts as a
// PrometheusRule, generated from the plain rules file.
const (
	// AlertsFile holds the alert rules for Prometheus's rule_files,
	// relative to the repository's root.
	AlertsFile = "examples/prometheus/keyless-alerts.yaml"
	// PrometheusRuleFile is AlertsFile as a PrometheusRule, relative to the
	// repository's root.
	PrometheusRuleFile = "config/install/monitoring/prometheusrule.yaml"
	monitoringPath     = "install/monitoring"
	monitoringGroup    = "monitoring.coreos.com"
)

// GeneratePrometheusRule returns the PrometheusRule holding the rule groups
// of alerts (AlertsFile's content).
func GeneratePrometheusRule(alerts []byte) ([]byte, error) {
	var rules struct {
		Groups []any `json:"groups"`
	}
	if err := yaml.Unmarshal(alerts, &rules); err != nil {
		return nil, fmt.Errorf("%s: %w", AlertsFile, err)
	}
	if len(rules.Groups) == 0 {
		return nil, fmt.Errorf("%s: no rule groups", AlertsFile)
	}
	rule := map[string]any{
		"apiVersion": "monitoring.coreos.com/v1",
		"kind":       "PrometheusRule",
		"metadata":   map[string]any{"name": "keyless", "labels": map[string]any{NameLabel: DeploymentName}},
		"spec":       map[string]any{"groups": rules.Groups},
	}
	b, err := yaml.Marshal(rule)
	if err != nil {
		return nil, err
	}
	return append([]byte(header()+"# From "+AlertsFile+" (what each alert means: docs/operations.md).\n"), b...), nil
}
