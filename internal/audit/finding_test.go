package audit

import (
	"encoding/json"
	"testing"
)

// TestFindingJSONRoundTrip: a report written with --format json reads back
// into Findings (severities by name), and a bad severity is refused.
func TestFindingJSONRoundTrip(t *testing.T) {
	in := []Finding{{Rule: "KL010", Severity: High, File: ".gitlab-ci.yml", Line: 4, What: "w"}, {Rule: "KL001", Severity: Critical}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out []Finding
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("reading %s back: %v", b, err)
	}
	if len(out) != 2 || out[0] != in[0] || out[1].Severity != Critical {
		t.Fatalf("round trip: %+v, want %+v", out, in)
	}
	if err := json.Unmarshal([]byte(`[{"severity":"urgent"}]`), &out); err == nil {
		t.Error("an unknown severity was accepted")
	}
}
