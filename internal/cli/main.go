// Package cli holds keyless's cobra commands: one file per command. Commands
// only parse flags and delegate to the use-case packages under internal/.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// IOStreams are the standard streams a command reads and writes; tests inject
// buffers.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// Getenv reads the environment (CI variables, token variables). Default
	// os.Getenv; `keyless-dev demo` and tests inject a CI job's environment.
	Getenv func(string) string
}

// getenv reads an environment variable through Getenv, else os.Getenv.
func (s IOStreams) getenv(key string) string {
	if s.Getenv != nil {
		return s.Getenv(key)
	}
	return os.Getenv(key)
}

// StdStreams returns the process's standard streams.
func StdStreams() IOStreams {
	return IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
}

// ExitError carries a specific exit code (e.g. `keyless diff` exits 1 when
// there are changes). A nil Err means the command already printed what it had
// to say.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Main runs keyless with args and returns the process exit code. SIGINT and
// SIGTERM cancel the command's context so long-running commands clean up.
func Main(args []string, streams IOStreams) int {
	return MainWith(NewRootCommand, args, streams)
}

// MainWith is Main for the command tree newRoot builds (keyless-dev's).
func MainWith(newRoot func(IOStreams) *cobra.Command, args []string, streams IOStreams) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM) //nolint:forbidigo // the process entry point: no caller context exists
	defer stop()
	return Execute(ctx, newRoot(streams), args, streams)
}

// Run executes the command line args with ctx and returns the exit code.
func Run(ctx context.Context, args []string, streams IOStreams) int {
	return Execute(ctx, NewRootCommand(streams), args, streams)
}

// Execute runs cmd (a root command built on streams) with args and returns
// the exit code: an *ExitError's code, 1 for any other error (printed as
// "Error: …" on ErrOut), else 0. keyless-dev's root runs through it too.
func Execute(ctx context.Context, cmd *cobra.Command, args []string, streams IOStreams) int {
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var exit *ExitError
	if errors.As(err, &exit) {
		if exit.Err != nil {
			_, _ = fmt.Fprintln(streams.ErrOut, "Error:", exit.Err)
		}
		return exit.Code
	}
	_, _ = fmt.Fprintln(streams.ErrOut, "Error:", err)
	return 1
}

// errorExits2 gives err exit status 2 unless it carries its own: for the
// commands whose status 1 means "found something" (diff, preview, audit,
// oidc check), as kubectl diff does.
func errorExits2(err error) error {
	var exit *ExitError
	if err != nil && !asExit(err, &exit) {
		return &ExitError{Code: 2, Err: err}
	}
	return err
}

// asExit reports whether err is (or wraps) an *ExitError, storing it in target.
func asExit(err error, target **ExitError) bool { return errors.As(err, target) }
