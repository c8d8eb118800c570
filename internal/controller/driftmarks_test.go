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

func TestProgressingPollsOnlyWhenAnEventMayHaveBeenMissed(t *testing.T) {
	d := &driftTracker{marks: newDriftMarks(nil)}
	web := types.NamespacedName{Namespace: "team-a", Name: "web"}
	if got := d.progressingRequeue(web, false); got != progressingPoll {
		t.Fatalf("a kind not watched: requeue after %s, want the %s poll", got, progressingPoll)
	}
	seen, _ := d.marks.healthSettled(web, time.Now(), time.Minute)
	d.marks.healthChecked(web, seen, time.Now(), true)
	if got := d.progressingRequeue(web, true); got != progressingFallback {
		t.Fatalf("all watched, no event since the read: requeue after %s, want the %s fallback", got, progressingFallback)
	}
	seen, _ = d.marks.healthSettled(web, time.Now(), time.Minute)
	d.marks.markStirred(web) // a status update after the read, before setProgressing
	d.marks.healthChecked(web, seen, time.Now(), true)
	if got := d.progressingRequeue(web, true); got != progressingPoll {
		t.Fatalf("an update the handler may not have enqueued: requeue after %s, want the %s poll", got, progressingPoll)
	}
}
