package controller

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

func TestHealthSettledOnlyAfterAWatchedCheckWithNoEventSince(t *testing.T) {
	d := newDriftMarks(nil) // markDirty, the only user of metrics, is not called
	web := types.NamespacedName{Namespace: "team-a", Name: "web"}
	now := time.Now()
	if _, ok := d.healthSettled(web, now, time.Minute); ok {
		t.Fatal("settled before any check")
	}
	seen, _ := d.healthSettled(web, now, time.Minute)
	d.healthChecked(web, seen, now, false)
	if _, ok := d.healthSettled(web, now, time.Minute); ok {
		t.Fatal("settled after a check made while a kind was not watched")
	}
	d.healthChecked(web, seen, now, true)
	if _, ok := d.healthSettled(web, now, time.Minute); !ok {
		t.Fatal("not settled after a watched check")
	}
	if _, ok := d.healthSettled(web, now.Add(2*time.Minute), time.Minute); ok {
		t.Fatal("settled past maxAge")
	}

	d.markStirred(web) // a status update of one of its objects
	seen, ok := d.healthSettled(web, now, time.Minute)
	if ok {
		t.Fatal("settled after an event")
	}
	d.markStirred(web) // another one while the check reads
	d.healthChecked(web, seen, now, true)
	if _, ok := d.healthSettled(web, now, time.Minute); ok {
		t.Fatal("an event during the check was forgotten")
	}
	seen, _ = d.healthSettled(web, now, time.Minute)
	d.healthChecked(web, seen, now, true)
	if _, ok := d.healthSettled(web, now, time.Minute); !ok {
		t.Fatal("not settled after checking the newest event")
	}
	d.unsettle(web) // a sync
	if _, ok := d.healthSettled(web, now, time.Minute); ok {
		t.Fatal("settled after a sync")
	}
}
