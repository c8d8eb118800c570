package controller

import (
	"fmt"
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
	s.wrote(web, "12") // a progress write, then the final one
	s.wrote(web, "13")
	if !s.isStale(web, "10") || !s.isStale(web, "12") || !s.isStale(web, "13") || s.isStale(web, "14") {
		t.Fatal("every version keyless replaced is stale, the latest is not")
	}
	for i := range 2 * maxReplacedVersions {
		s.wrote(web, fmt.Sprint(100+i))
	}
	if s.isStale(web, "10") || !s.isStale(web, fmt.Sprint(100+2*maxReplacedVersions-1)) {
		t.Fatal("the remembered versions are bounded, the newest kept")
	}
	s.forget(web)
	if s.isStale(web, "10") {
		t.Fatal("stale after forget")
	}
}
