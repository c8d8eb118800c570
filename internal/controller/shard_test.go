package controller

import (
	"testing"

	"k8s.io/apimachinery/pkg/labels"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

func TestShardSelector(t *testing.T) {
	for _, tc := range []struct {
		shard  string
		labels map[string]string
		owns   bool
	}{
		{"", nil, true},
		{"", map[string]string{"app": "x"}, true},
		{"", map[string]string{kv1.ShardLabel: "b"}, false},
		{"b", map[string]string{kv1.ShardLabel: "b"}, true},
		{"b", map[string]string{kv1.ShardLabel: "c"}, false},
		{"b", nil, false},
	} {
		if got := shardSelector(tc.shard).Matches(labels.Set(tc.labels)); got != tc.owns {
			t.Errorf("shard %q, labels %v: owns = %v, want %v", tc.shard, tc.labels, got, tc.owns)
		}
	}
	if leaderElectionID("") == leaderElectionID("b") || leaderElectionID("b") != "keyless-controller-b" {
		t.Error("shards must elect their leaders on separate Leases")
	}
	for _, bad := range []string{"B", "a b", "-x", "x/y"} {
		if ValidateShard(bad) == nil {
			t.Errorf("--shard %q accepted", bad)
		}
	}
	if ValidateShard("team-a") != nil || ValidateShard("") != nil {
		t.Error("a valid shard refused")
	}
}
