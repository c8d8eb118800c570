package ui

import (
	"fmt"
	"strings"
	"testing"
)

func TestAnnotationsAreBoundedAndSkipLastApplied(t *testing.T) {
	all := map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{}", "long": strings.Repeat("x", 500)}
	for i := range 30 {
		all[fmt.Sprintf("k%02d", i)] = "v"
	}
	got := annotationsOf(all)
	if len(got) != maxAnnotations+1 || got[maxAnnotations].Value != "11 more" {
		t.Fatalf("got %d annotations, last %+v", len(got), got[len(got)-1])
	}
	for _, a := range got {
		if strings.HasPrefix(a.Key, "kubectl.kubernetes.io/") {
			t.Error("kubectl's last-applied copy is shown")
		}
	}
	if v := annotationsOf(map[string]string{"long": strings.Repeat("é", 500)})[0].Value; len([]rune(v)) != maxAnnotationValue+1 || !strings.HasSuffix(v, "…") {
		t.Errorf("a long value is not cut at %d characters: %d", maxAnnotationValue, len([]rune(v)))
	}
}
