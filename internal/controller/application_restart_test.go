package controller_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
)

// TestRestartedControllerWritesNothingAndWatchesAgain: a controller
// restarted over a synced Application makes no write on its first
// reconcile, and watches what the Application deployed again, so a drift is
// reverted at once though the interval is an hour.
func TestRestartedControllerWritesNothingAndWatchesAgain(t *testing.T) {
	e, _ := seedApp(t, time.Hour)
	e.stopController()
	// Only keyless's writes count (the controller's own, and the deployer's
	// it makes by impersonation): kube-controller-manager still updates
	// EndpointSlices and the like on its own schedule.
	keylessWrites := func() []clustertest.AuditEvent {
		var out []clustertest.AuditEvent
		for _, w := range e.cluster.Writes(t, appNS) {
			if w.User.Username == controllerU {
				out = append(out, w)
			}
		}
		return out
	}
	before := len(keylessWrites())
	reconciles := reconcileCount(t)
	e.startController(time.Hour)
	waitFor(t, 20*time.Second, "the first reconcile after the restart", func() (bool, string) {
		n := reconcileCount(t)
		return n > reconciles, fmt.Sprint(n)
	})
	time.Sleep(time.Second) // the audit log is written after the response
	if after := keylessWrites(); len(after) != before {
		var extra []string
		for _, w := range after[before:] {
			extra = append(extra, w.User.Username+" "+w.Verb+" "+w.RequestURI)
		}
		t.Fatalf("restart made writes:\n%s", strings.Join(extra, "\n"))
	}

	t.Log("after the restart, drift is seen by a watch again")
	e.editUntilReverted("web")
}
