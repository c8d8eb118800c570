package audit

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestWriteSARIFValidates: the repository fixture's findings, written as
// SARIF, validate against the OASIS SARIF 2.1.0 schema shipped in testdata,
// and carry what code-scanning UIs show: rule, level, file and line.
func TestWriteSARIFValidates(t *testing.T) {
	findings, err := ScanRepo("testdata/repo", ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	findings = append(findings,
		Finding{Rule: "KL101", Severity: High, File: "secret/ci/ci-token", What: "static token", Fix: "delete it"},
		Finding{Rule: "KL001", Severity: Critical, File: "old/kubeconfig", Line: 3, Commit: "abc1234", What: "kubeconfig", Fix: "rotate"})
	var buf bytes.Buffer
	if err := WriteSARIF(&buf, findings, "v0.0.0-test"); err != nil {
		t.Fatal(err)
	}
	validateSARIF(t, buf.Bytes())

	var log struct {
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Name  string `json:"name"`
					Rules []struct {
						ID string `json:"id"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID    string `json:"ruleId"`
				Level     string `json:"level"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct {
							URI string `json:"uri"`
						} `json:"artifactLocation"`
						Region *struct {
							StartLine int `json:"startLine"`
						} `json:"region"`
					} `json:"physicalLocation"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(buf.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 || log.Runs[0].Tool.Driver.Name != "keyless" {
		t.Fatalf("not one keyless 2.1.0 run: %s", buf.String()[:200])
	}
	run := log.Runs[0]
	if len(run.Results) != len(findings) {
		t.Fatalf("%d results for %d findings", len(run.Results), len(findings))
	}
	found := false
	for _, r := range run.Results {
		pl := r.Locations[0].PhysicalLocation
		if r.RuleID == "KL001" && pl.ArtifactLocation.URI == "stored/kubeconfig.yaml" {
			found = true
			if r.Level != "error" || pl.Region == nil || pl.Region.StartLine != 9 {
				t.Errorf("KL001 result: level %q region %+v", r.Level, pl.Region)
			}
		}
		if pl.ArtifactLocation.URI == "secret/ci/ci-token" && pl.Region != nil {
			t.Errorf("a cluster finding has a line region: %+v", pl.Region)
		}
	}
	if !found {
		t.Error("the stored kubeconfig is not a SARIF result")
	}
	ruleIDs := map[string]bool{}
	for _, r := range run.Tool.Driver.Rules {
		ruleIDs[r.ID] = true
	}
	for _, f := range findings {
		if !ruleIDs[f.Rule] {
			t.Errorf("rule %s fired but is not described", f.Rule)
		}
	}
}

// TestWriteSARIFEmpty: no findings is still a valid log (GitHub requires results: []).
func TestWriteSARIFEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteSARIF(&buf, nil, "dev"); err != nil {
		t.Fatal(err)
	}
	validateSARIF(t, buf.Bytes())
	if !bytes.Contains(buf.Bytes(), []byte(`"results": []`)) {
		t.Errorf("no empty results array:\n%s", buf.String())
	}
}

// TestSchemaRejectsInvalid keeps the validation honest: a log with a level
// outside the schema's enum fails.
func TestSchemaRejectsInvalid(t *testing.T) {
	bad := []byte(`{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"keyless"}},"results":[{"message":{"text":"x"},"level":"critical"}]}]}`)
	if err := compileSARIFSchema(t).Validate(mustJSON(t, bad)); err == nil {
		t.Fatal("the schema accepted level \"critical\"")
	}
}

func validateSARIF(t *testing.T, data []byte) {
	t.Helper()
	if err := compileSARIFSchema(t).Validate(mustJSON(t, data)); err != nil {
		t.Fatalf("SARIF does not validate against 2.1.0: %v", err)
	}
}

func compileSARIFSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("testdata/sarif-schema-2.1.0.json")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("sarif-schema-2.1.0.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("sarif-schema-2.1.0.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustJSON(t *testing.T, data []byte) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return v
}
