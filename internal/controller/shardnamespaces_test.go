package controller

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

func TestParseShardNamespaces(t *testing.T) {
	got, err := ParseShardNamespaces([]string{"a=team-a;team-b", "b=team-c"})
	if err != nil || strings.Join(got["a"], ",") != "team-a,team-b" || strings.Join(got["b"], ",") != "team-c" {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"a", "a=", "A_B=team", "a=Team_X", "=team"} {
		if _, err := ParseShardNamespaces([]string{bad}); err == nil || !strings.Contains(err.Error(), "--shard-namespaces") {
			t.Errorf("%q: err = %v, want one naming the flag", bad, err)
		}
	}
}

// TestUnshardedControllerSeesMisplacedLabels: with --shard-namespaces, the
// unsharded controller's cache holds, per namespace, the unlabelled
// Applications and those labelled for a shard that does not serve the
// namespace; those of a shard that does serve it are that shard's alone.
func TestUnshardedControllerSeesMisplacedLabels(t *testing.T) {
	shards := ShardNamespaces{"a": {"team-a"}, "b": {"team-a", "team-b"}}
	by := applicationCache("", []string{"team-a", "team-b", "team-c"}, shards)
	for _, tc := range []struct {
		ns, shard string
		seen      bool
	}{
		{"team-a", "", true}, {"team-a", "a", false}, {"team-a", "b", false}, {"team-a", "c", true},
		{"team-b", "", true}, {"team-b", "a", true}, {"team-b", "b", false},
		{"team-c", "", true}, {"team-c", "a", true},
	} {
		set := labels.Set{}
		if tc.shard != "" {
			set[kv1.ShardLabel] = tc.shard
		}
		if got := by.Namespaces[tc.ns].LabelSelector.Matches(set); got != tc.seen {
			t.Errorf("namespace %s, shard %q: seen = %v, want %v", tc.ns, tc.shard, got, tc.seen)
		}
	}
	r := &ApplicationReconciler{shards: shards}
	app := &kv1.Application{}
	app.Namespace, app.Labels = "team-b", map[string]string{kv1.ShardLabel: "a"}
	if msg := r.shardRefusal(app); !strings.Contains(msg, "shard \"a\" does not serve namespace team-b") || !strings.Contains(msg, "[b]") {
		t.Errorf("refusal %q", msg)
	}
	app.Labels = nil
	if msg := r.shardRefusal(app); msg != "" {
		t.Errorf("an unlabelled Application refused: %q", msg)
	}
	if sharded := applicationCache("a", []string{"team-a"}, nil); sharded.Label == nil || len(sharded.Namespaces) != 0 {
		t.Error("a shard's cache selects its label")
	}
}
