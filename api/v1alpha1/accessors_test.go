package v1alpha1

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestAccessors(t *testing.T) {
	for name, tc := range map[string]struct {
		spec                                    ApplicationSpec
		automated, prune, selfHeal, allowsEmpty bool
		interval                                time.Duration
	}{
		"manual":               {spec: ApplicationSpec{}, interval: time.Minute},
		"manual with a policy": {spec: ApplicationSpec{SyncPolicy: &SyncPolicy{}}, interval: time.Minute},
		"automated, all on": {spec: ApplicationSpec{SyncPolicy: &SyncPolicy{Automated: &AutomatedSyncPolicy{Prune: true, SelfHeal: true, AllowEmpty: true}},
			Interval: &metav1.Duration{Duration: 2 * time.Minute}}, automated: true, prune: true, selfHeal: true, allowsEmpty: true, interval: 2 * time.Minute},
		"automated, interval below the minimum": {spec: ApplicationSpec{SyncPolicy: &SyncPolicy{Automated: &AutomatedSyncPolicy{}},
			Interval: &metav1.Duration{Duration: time.Second}}, automated: true, interval: MinInterval},
	} {
		a := &Application{Spec: tc.spec}
		if a.Automated() != tc.automated || a.Prunes() != tc.prune || a.SelfHeals() != tc.selfHeal || a.AllowsEmpty() != tc.allowsEmpty || a.IntervalOr(time.Minute) != tc.interval {
			t.Errorf("%s: automated %v prune %v selfHeal %v allowEmpty %v interval %s", name, a.Automated(), a.Prunes(), a.SelfHeals(), a.AllowsEmpty(), a.IntervalOr(time.Minute))
		}
	}
}
