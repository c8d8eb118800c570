package renderproc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime/debug"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/keyless-cd/keyless/internal/render"
)

// maxRequestBytes bounds a render request read by a child.
const maxRequestBytes = 16 << 20

// maxStackBytes fails a runaway recursion (a template including itself)
// long before it reaches the memory limit.
const maxStackBytes = 64 << 20

// testHook, when set, runs in a render child before its render. Only this
// package's tests set it (their test binary is also their render child), to
// make a child crash in ways no real render does on demand; in any other
// binary it is nil.
var testHook func(render.Options)

// ServeIfWorker serves one render request and exits when this process was
// started as a render child (EnvWorker=1); otherwise it returns at once.
// Call it first thing in main, and in TestMain of packages whose tests
// render through a Runner.
func ServeIfWorker() {
	if os.Getenv(EnvWorker) != "1" {
		return
	}
	os.Exit(serve(os.Stdin, os.Stdout))
}

func serve(in io.Reader, out io.Writer) int {
	if err := applyLimits(); err != nil {
		_, _ = fmt.Fprintln(os.Stderr, "render process: setting limits:", err)
		return 3
	}
	var req request
	data, err := io.ReadAll(io.LimitReader(in, maxRequestBytes))
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		err = dec.Decode(&req)
	}
	if err == nil {
		req.Options.Helm.Values, _ = numbers(req.Options.Helm.Values).(map[string]any)
	}
	if err != nil {
		_, _ = fmt.Fprintln(os.Stderr, "render process: reading the request:", err)
		return 3
	}
	if testHook != nil {
		testHook(req.Options)
	}
	res, err := render.Render(context.Background(), req.Options) //nolint:forbidigo // the worker process entry: its parent bounds it by killing it
	var resp response
	if err != nil {
		resp.Error = toWire(err)
	} else {
		resp.Kind = res.Kind
		resp.Warnings = res.Warnings
		resp.Decrypted = res.Decrypted
		resp.Inputs = res.Inputs
		for _, o := range res.Objects {
			js, err := o.MarshalJSON()
			if err != nil {
				resp = response{Error: toWire(err)}
				break
			}
			resp.Objects = append(resp.Objects, wireObject{Source: res.Source(o), Object: js})
		}
	}
	if err := json.NewEncoder(out).Encode(resp); err != nil {
		_, _ = fmt.Fprintln(os.Stderr, "render process: writing the result:", err)
		return 3
	}
	return 0
}

// numbers gives JSON numbers back the Go types Helm's --set parser made:
// int64 when integral (strvals types integers as int64), else float64.
func numbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		for k, e := range v {
			v[k] = numbers(e)
		}
		return v
	case []any:
		for i, e := range v {
			v[i] = numbers(e)
		}
		return v
	}
	return v
}

// applyLimits sets this process's own limits from the environment the
// parent gave it, before the request is even read.
func applyLimits() error {
	mem, err := strconv.ParseInt(os.Getenv(envMemory), 10, 64)
	if err != nil || mem <= 0 {
		return fmt.Errorf("%s=%q: %w", envMemory, os.Getenv(envMemory), errors.ErrUnsupported)
	}
	cpu, err := strconv.ParseUint(os.Getenv(envCPU), 10, 64)
	if err != nil || cpu == 0 {
		return fmt.Errorf("%s=%q: %w", envCPU, os.Getenv(envCPU), errors.ErrUnsupported)
	}
	debug.SetMaxStack(maxStackBytes)
	for _, l := range []struct {
		res int
		val uint64
	}{
		{unix.RLIMIT_DATA, uint64(mem)},
		{unix.RLIMIT_CPU, cpu},
		{unix.RLIMIT_FSIZE, 0}, // a render writes no file
		{unix.RLIMIT_CORE, 0},
	} {
		if err := unix.Setrlimit(l.res, &unix.Rlimit{Cur: l.val, Max: l.val}); err != nil {
			return fmt.Errorf("setrlimit %d: %w", l.res, err)
		}
	}
	return nil
}

// Error classes carried from a child to its parent.
const (
	classLimit   = "limit"
	classRemote  = "remote"
	classOutside = "outside"
	classCycle   = "cycle"
	classMissing = "missing"
	classDecrypt = "decryption"
	classOther   = "other"
)

type wireError struct {
	Message string             `json:"message"`
	Class   string             `json:"class"`
	Limit   *render.LimitError `json:"limit,omitempty"`
}

func toWire(err error) *wireError {
	w := &wireError{Message: err.Error(), Class: classOther}
	var le *render.LimitError
	switch {
	case errors.As(err, &le):
		w.Class, w.Limit = classLimit, le
	case errors.Is(err, render.ErrRemoteReference):
		w.Class = classRemote
	case errors.Is(err, render.ErrOutsideRoot):
		w.Class = classOutside
	case errors.Is(err, render.ErrSymlinkCycle):
		w.Class = classCycle
	case errors.Is(err, render.ErrDecryption):
		w.Class = classDecrypt
	case errors.Is(err, fs.ErrNotExist):
		w.Class = classMissing
	}
	return w
}

// childError is a render error reported by a child: its message as the
// child wrote it, and the sentinel it wrapped there.
type childError struct {
	msg   string
	class error
}

func (e *childError) Error() string { return e.msg }
func (e *childError) Unwrap() error { return e.class }

func (w *wireError) toError() error {
	switch w.Class {
	case classLimit:
		if w.Limit != nil {
			return w.Limit
		}
		return &childError{msg: w.Message, class: render.ErrLimit}
	case classRemote:
		return &childError{msg: w.Message, class: render.ErrRemoteReference}
	case classOutside:
		return &childError{msg: w.Message, class: render.ErrOutsideRoot}
	case classCycle:
		return &childError{msg: w.Message, class: render.ErrSymlinkCycle}
	case classMissing:
		return &childError{msg: w.Message, class: fs.ErrNotExist}
	case classDecrypt:
		return &childError{msg: w.Message, class: render.ErrDecryption}
	}
	return &childError{msg: w.Message, class: ErrWorker}
}
