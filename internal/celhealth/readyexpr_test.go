package celhealth

import (
	"errors"
	"testing"
)

func TestReadyExpr(t *testing.T) {
	self := map[string]any{"status": map[string]any{"lastAppliedRevision": "abc"}}
	dep := func(rev string) map[string]any {
		return map[string]any{"status": map[string]any{"lastAppliedRevision": rev}}
	}
	r, err := CompileReadyExpr("dep.status.lastAppliedRevision == self.status.lastAppliedRevision")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := r.Eval(self, dep("abc")); err != nil || !ok {
		t.Fatalf("same revision: %v %v", ok, err)
	}
	if ok, err := r.Eval(self, dep("def")); err != nil || ok {
		t.Fatalf("other revision: %v %v", ok, err)
	}
	if _, err := CompileReadyExpr("dep.status.("); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a broken expression: %v, want ErrInvalid", err)
	}
	if _, err := CompileReadyExpr("'not a bool'"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a string expression: %v, want ErrInvalid", err)
	}
	missing, err := CompileReadyExpr("dep.status.nothing == 'x'")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := missing.Eval(self, dep("abc")); err == nil {
		t.Fatal("a missing field evaluated without error")
	}
}
