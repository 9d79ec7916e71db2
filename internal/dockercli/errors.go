package dockercli

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// StatusError is how every command here fails: Status is the message to
// print as it is (it may be empty, e.g. when `run` passes on the
// container's own exit status) and StatusCode the process exit code.
// The caller that ends the process must print Status (when not empty) and
// exit with StatusCode instead of its generic error handling.
type StatusError struct {
	Status     string
	StatusCode int
	// Cause is the underlying error, if any.
	Cause error
}

func (e StatusError) Error() string {
	if e.Status != "" {
		return e.Status
	}
	if e.Cause != nil {
		return e.Cause.Error()
	}
	return fmt.Sprintf("exit status %d", e.StatusCode)
}

func (e StatusError) Unwrap() error { return e.Cause }

// Exit codes the docker CLI uses for failures that are not the container's.
const (
	exitGeneric     = 1
	exitCLIOrEngine = 125 // the CLI or the engine failed
	exitCannotRun   = 126 // the container command cannot be invoked
	exitNotFound    = 127 // the container command was not found
)

// binName is the name of the program, for messages ("skiff: ...").
func binName(cmd *cobra.Command) string { return cmd.Root().Name() }

// flagError turns a flag parsing error into docker's 125 with usage.
func flagError(cmd *cobra.Command, err error) error {
	if err == nil {
		return nil
	}
	return StatusError{
		Status:     fmt.Sprintf("%s\n\nUsage:  %s\n\nRun '%s --help' for more information", err, cmd.UseLine(), cmd.CommandPath()),
		StatusCode: exitCLIOrEngine,
		Cause:      err,
	}
}

// invalidInput is a bad combination of flags found after parsing: 125,
// with a pointer to --help, and no request sent.
func invalidInput(cmd *cobra.Command, err error) error {
	return StatusError{Status: withHelp(cmd, err), StatusCode: exitCLIOrEngine, Cause: err}
}

func withHelp(cmd *cobra.Command, err error) string {
	return fmt.Sprintf("%s: %s\n\nRun '%s --help' for more information", binName(cmd), err, cmd.CommandPath())
}

// runFailed maps an error from creating or starting a container to
// docker run's exit codes: 127 when the command was not found, 126 when it
// could not be invoked, 125 for anything else.
func runFailed(cmd *cobra.Command, err error) error {
	var se StatusError
	if errors.As(err, &se) {
		return err
	}
	msg := err.Error()
	code := exitCLIOrEngine
	switch {
	case strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory"):
		code = exitNotFound
	case strings.Contains(msg, syscall.EACCES.Error()) || strings.Contains(msg, syscall.EISDIR.Error()):
		code = exitCannotRun
	}
	return StatusError{Status: withHelp(cmd, err), StatusCode: code, Cause: err}
}

// run wraps a command's action so that every error it returns is a
// StatusError (exit 1 unless the action chose otherwise).
func run(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := fn(cmd, args)
		if err == nil {
			return nil
		}
		var se StatusError
		if errors.As(err, &se) {
			return se
		}
		return StatusError{Status: err.Error(), StatusCode: exitGeneric, Cause: err}
	}
}

// Argument checks with docker's wording; docker exits 1 for these.

func requiresMinArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= n {
			return nil
		}
		return argsError(cmd, fmt.Sprintf("requires at least %d %s", n, plural("argument", n)), "See")
	}
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		return argsError(cmd, fmt.Sprintf("requires %d %s", n, plural("argument", n)), "Run")
	}
}

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= lo && len(args) <= hi {
			return nil
		}
		return argsError(cmd, fmt.Sprintf("requires at least %d and at most %d %s", lo, hi, plural("argument", hi)), "See")
	}
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasSubCommands() {
		return StatusError{StatusCode: exitGeneric, Status: fmt.Sprintf("%s: unknown command: %s %s\n\nUsage:  %s\n\nRun '%s --help' for more information",
			binName(cmd), cmd.CommandPath(), args[0], cmd.UseLine(), cmd.CommandPath())}
	}
	return argsError(cmd, "accepts no arguments", "Run")
}

func argsError(cmd *cobra.Command, what, verb string) error {
	return StatusError{
		Status: fmt.Sprintf("%s: '%s' %s\n\nUsage:  %s\n\n%s '%s --help' for more information",
			binName(cmd), cmd.CommandPath(), what, cmd.UseLine(), verb, cmd.CommandPath()),
		StatusCode: exitGeneric,
	}
}

func plural(word string, n int) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
