package controller

import "github.com/go-logr/logr"

// maxLogVerbosity caps the verbosity of everything the controller logs,
// whatever the handler accepts: client-go logs request URLs from V(6),
// headers from V(7) and request and response bodies — a Secret's data among
// them — from V(8). No level a user can set prints an object's content.
const maxLogVerbosity = 5

// capVerbosity returns l with levels above limit dropped.
func capVerbosity(l logr.Logger, limit int) logr.Logger {
	if l.GetSink() == nil {
		return l
	}
	return logr.New(&cappedSink{LogSink: l.GetSink(), max: limit})
}

// cappedSink drops Info calls above max; everything else is the sink's.
type cappedSink struct {
	logr.LogSink
	max int
}

// Enabled is false above max.
func (s *cappedSink) Enabled(level int) bool { return level <= s.max && s.LogSink.Enabled(level) }

// Info drops levels above max (callers may skip Enabled).
func (s *cappedSink) Info(level int, msg string, kv ...any) {
	if level <= s.max {
		s.LogSink.Info(level, msg, kv...)
	}
}

// WithValues keeps the cap.
func (s *cappedSink) WithValues(kv ...any) logr.LogSink {
	return &cappedSink{LogSink: s.LogSink.WithValues(kv...), max: s.max}
}

// WithName keeps the cap.
func (s *cappedSink) WithName(name string) logr.LogSink {
	return &cappedSink{LogSink: s.LogSink.WithName(name), max: s.max}
}
