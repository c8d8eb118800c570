package controller

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func TestStaleReads(t *testing.T) {
	s := newStaleReads()
	web := types.NamespacedName{Namespace: "team-a", Name: "web"}
	if s.isStale(web, "10") {
		t.Fatal("stale before any write")
	}
	s.wrote(web, "10") // our status write replaced version 10 (the cache may still hold it)
	if !s.isStale(web, "10") || s.isStale(web, "11") || s.isStale(web, "") {
		t.Fatal("only the replaced version is stale")
	}
	if s.isStale(types.NamespacedName{Namespace: "team-b", Name: "web"}, "10") {
		t.Fatal("another Application is not stale")
	}
	s.forget(web)
	if s.isStale(web, "10") {
		t.Fatal("stale after forget")
	}
}
