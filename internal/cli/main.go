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
	"strings"
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
	refuseUnknownSubcommands(cmd)
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

// refuseUnknownSubcommands makes every command group under root (a command
// with subcommands and no Run of its own: `audit`, `oidc`, `get`, and cobra's
// `completion`) refuse an unknown subcommand as the root does: `keyless audit
// clustr` fails with `unknown command "clustr" for "keyless audit"` and
// cobra's "Did you mean this?". Left alone, cobra prints a group's help and
// succeeds whatever follows it. Run without arguments, a group still prints
// its help and succeeds.
func refuseUnknownSubcommands(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.HasParent() && c.HasSubCommands() && !c.Runnable() {
			c.Args, c.DisableFlagsInUseLine = unknownSubcommand, true
			c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
		}
	}
	walk(root)
}

// unknownSubcommand is the error cobra gives for an unknown command at the
// root, for any group: args are what follows the group on the command line.
func unknownSubcommand(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2 // cobra's default, set only when the root suggests
	}
	if s := c.SuggestionsFor(args[0]); len(s) > 0 && !c.DisableSuggestions {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	return errors.New(msg)
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
