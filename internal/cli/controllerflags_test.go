package cli

import (
	"log/slog"
	"testing"
)

func TestParseLogLevel(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{"info", slog.LevelInfo, false},
		{"", slog.LevelInfo, false},
		{"error", slog.LevelError, false},
		{"debug", slog.LevelDebug - 4, false},
		{"verbose", 0, true},
		{"INFO", 0, true},
	} {
		got, err := parseLogLevel(tc.in)
		if (err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
			t.Errorf("parseLogLevel(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
	// debug shows logr's V(1) lines: their slog level is below Info.
	if lvl, _ := parseLogLevel("debug"); lvl > slog.Level(-1) {
		t.Errorf("debug level %v hides V(1)", lvl)
	}
}
