package ui

import (
	"testing"
	"time"
)

// TestAge: the dashboard and `keyless get` print ages as kubectl does
// (apimachinery's duration.HumanDuration), not as Go durations ("5m0s").
func TestAge(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Time{}, ""},
		{now.Add(time.Minute), "0s"}, // a clock ahead of ours
		{now.Add(-45 * time.Second), "45s"},
		{now.Add(-5 * time.Minute), "5m"},
		{now.Add(-(3*time.Hour + 15*time.Minute)), "3h15m"},
		{now.Add(-50 * time.Hour), "2d2h"},
		{now.Add(-30 * 24 * time.Hour), "30d"},
	} {
		if got := Age(now, tc.t); got != tc.want {
			t.Errorf("Age(%s) = %q, want %q", now.Sub(tc.t), got, tc.want)
		}
	}
}
