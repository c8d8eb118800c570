package syncwindow

import (
	"errors"
	"strings"
	"testing"
	"time"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

func win(kind, schedule, duration, tz string) Window {
	return Window{SyncWindow: kv1.SyncWindow{Kind: kind, Schedule: schedule, Duration: duration, TimeZone: tz}, Source: "test"}
}

func TestAt(t *testing.T) {
	// Friday 2026-12-04 21:30 UTC = 22:30 in Stockholm (UTC+1 in winter).
	friday := time.Date(2026, 12, 4, 21, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		windows    []Window
		now        time.Time
		blocked    bool
		until      time.Time
		manualSync bool
	}{
		{"no windows", nil, friday, false, time.Time{}, false},
		{"a deny window from Friday 22:00 UTC for 60h is not open at 21:30 UTC", []Window{win("deny", "0 22 * * 5", "60h", "")}, friday, false, time.Time{}, false},
		{"the same window in Stockholm time is open at 22:30 local", []Window{win("deny", "0 22 * * 5", "60h", "Europe/Stockholm")}, friday, true,
			time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC), false},
		{"open an hour later in UTC, until Monday 10:00", []Window{win("deny", "0 22 * * 5", "60h", "")}, friday.Add(time.Hour), true,
			time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC), false},
		{"closed again after its duration", []Window{win("deny", "0 22 * * 5", "60h", "")}, time.Date(2026, 12, 7, 10, 0, 1, 0, time.UTC), false, time.Time{}, false},
		{"inside an allow window", []Window{win("allow", "0 8 * * 1-5", "10h", "")}, time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC), false, time.Time{}, false},
		{"outside every allow window: until the next one opens", []Window{win("allow", "0 8 * * 1-5", "10h", "")}, friday, true,
			time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC), false},
		{"deny wins over an open allow window", []Window{win("allow", "0 0 * * *", "24h", ""), win("deny", "0 21 * * *", "2h", "")}, friday, true,
			time.Date(2026, 12, 4, 23, 0, 0, 0, time.UTC), false},
		{"manual sync through a deny window that allows it", []Window{{SyncWindow: kv1.SyncWindow{Kind: "deny", Schedule: "0 21 * * *", Duration: "1h", ManualSync: true}, Source: "t"}}, friday, true,
			friday.Add(30 * time.Minute), true},
		{"a window that keeps reopening stays closed until it stops", []Window{win("deny", "*/10 21-22 * * *", "15m", "")}, friday, true,
			time.Date(2026, 12, 4, 23, 5, 0, 0, time.UTC), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Compile(tc.windows)
			if err != nil {
				t.Fatal(err)
			}
			d := s.At(tc.now)
			if d.Blocked != tc.blocked || !d.Until.Equal(tc.until) || d.ManualSync != tc.manualSync {
				t.Fatalf("At(%s) = %+v, want blocked %v until %s manualSync %v", tc.now, d, tc.blocked, tc.until, tc.manualSync)
			}
			if d.Blocked && !strings.Contains(d.Window, "test") && !strings.Contains(d.Window, "t)") {
				t.Errorf("the decision does not name the window's source: %q", d.Window)
			}
		})
	}
}

func TestCompileRefuses(t *testing.T) {
	for _, w := range []Window{
		win("maybe", "* * * * *", "1h", ""),
		win("deny", "61 * * * *", "1h", ""),
		win("deny", "* * * * *", "forever", ""),
		win("deny", "* * * * *", "-1h", ""),
		win("deny", "* * * * *", "1h", "Mars/Olympus"),
	} {
		if _, err := Compile([]Window{w}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "test") {
			t.Errorf("%+v: %v, want ErrInvalid naming the window", w.SyncWindow, err)
		}
	}
}

func TestAdminWindows(t *testing.T) {
	data := []byte(`
- namespaces: ["*"]
  kind: deny
  schedule: "0 22 24 12 *"
  duration: 48h
  timeZone: Europe/Stockholm
- namespaces: [payments]
  kind: allow
  schedule: "0 8 * * 1-5"
  duration: 10h
`)
	got, err := AdminWindows(data, "payments")
	if err != nil || len(got) != 2 || got[1].Source != "keyless-sync-windows[1]" || got[0].TimeZone != "Europe/Stockholm" {
		t.Fatalf("payments: %+v, %v", got, err)
	}
	if got, _ := AdminWindows(data, "shop"); len(got) != 1 {
		t.Fatalf("shop gets %d windows, want the one for every namespace", len(got))
	}
	for _, bad := range []string{"- kind: deny\n  schedule: '* * * * *'\n  duration: 1h\n", "- namespaces: [a]\n  kind: deny\n  color: red\n", "not: a list\n"} {
		if _, err := AdminWindows([]byte(bad), "a"); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v, want ErrInvalid", bad, err)
		}
	}
}
