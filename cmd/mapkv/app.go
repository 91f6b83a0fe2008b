package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// Exit statuses of the mapkv command.
const (
	exitOK          = 0   // success; for check, a clean database
	exitError       = 1   // any error not listed below
	exitUsage       = 2   // bad flags or arguments
	exitCorrupt     = 3   // check found corruption
	exitBug         = 70  // a panic inside mapkv (EX_SOFTWARE): always a bug
	exitInterrupted = 130 // stopped by SIGINT or SIGTERM, cleanly (128+SIGINT)
)

// statusError is an error that ends the command with a given exit status.
// A nil err means the command has already reported everything it had to
// say and only the status remains.
type statusError struct {
	code int
	err  error
}

func (e *statusError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *statusError) Unwrap() error { return e.err }

// exitWith returns an error that ends the command with status code after
// printing err (when not nil) on stderr.
func exitWith(code int, err error) error { return &statusError{code: code, err: err} }

// globals are the flags every command shares, and what execute learns
// while a command runs.
type globals struct {
	timeout  time.Duration // how long Open waits for the file lock
	progress string        // auto, always or never
	started  bool          // a command's RunE was reached: a later error is not a usage error
}

// commands holds the constructors of the top-level commands. Each
// command_<x>.go file registers its own in an init function, so adding a
// command touches no other file.
var commands []func(*globals) *cobra.Command

func register(f func(*globals) *cobra.Command) { commands = append(commands, f) }

// newRootCmd builds the whole command tree. It is built anew for every
// execution, so state never leaks from one run into the next (tests run
// many in one process).
func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "mapkv",
		Short: "Inspect, check, dump, load, compact and benchmark mapkv databases",
		Long: `mapkv looks inside mapkv database files: it reports, checks, dumps and
loads their contents (in the text format of LMDB's mdb_dump), edits keys,
decodes pages, compacts files, streams snapshots and runs a quick benchmark.

Every command that does not write opens the file read-only, never creates
it, and runs beside an application writing it. Bucket paths name nested
buckets: "a/b/c" is bucket c inside b inside a; write "\/" for a slash
inside a name, "\\" for a backslash and "\xHH" for any byte.

Exit status: 0 on success, 1 on errors, 2 on bad usage, 3 when check finds
corruption, 130 when interrupted.`,
		Version:       versionString(),
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			switch g.progress {
			case "auto", "always", "never":
			default:
				return exitWith(exitUsage, fmt.Errorf("--progress %q: want auto, always or never", g.progress))
			}
			g.started = true
			return nil
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.PersistentFlags().DurationVar(&g.timeout, "timeout", time.Second,
		"how long a command that writes waits for the lock of another process writing the file (0: fail at once)")
	root.PersistentFlags().StringVar(&g.progress, "progress", "auto",
		"progress bar on stderr for long operations: auto (only when stderr is a terminal), always or never")
	for _, f := range commands {
		root.AddCommand(f(g))
	}
	return root
}

// execute runs the mapkv command line args with the given streams and
// returns the exit status. main is a call to it; tests call it directly.
func execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	g := &globals{}
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	defer func() {
		// Data read from a file never panics (the engine and the page
		// package bounds-check it); a panic here is a bug. Report it in
		// one line rather than a crash dump, unless asked for the trace.
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "mapkv: internal error (a bug; please report it): %v\n", r)
			if os.Getenv("MAPKV_TRACEBACK") != "" {
				stderr.Write(debug.Stack())
			}
			code = exitBug
		}
	}()
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	code = exitError
	var se *statusError
	switch {
	case errors.As(err, &se):
		code = se.code
	case !g.started:
		code = exitUsage
	}
	if se == nil || se.err != nil {
		fmt.Fprintf(stderr, "mapkv: %s\n", message(err))
	}
	if code == exitUsage && cmd != nil {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// message renders err on one line without a repeated "mapkv: " prefix
// (the engine's errors carry one).
func message(err error) string {
	s := strings.ReplaceAll(err.Error(), "\n", "; ")
	for strings.HasPrefix(s, "mapkv: ") {
		s = strings.TrimPrefix(s, "mapkv: ")
	}
	return s
}

// interruptible returns a context that the first SIGINT or SIGTERM
// cancels, for commands that stop cleanly (load, compact, bench, snapshot
// serve and fetch, backup). After that first signal the default handling
// is restored, so a second Ctrl-C ends a process stuck on its input.
func interruptible(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx, stop
}

// errInterrupted is the cause reported when a signal stopped a command.
var errInterrupted = errors.New("interrupted")

// usageArgs returns a positional-argument validator that wants at least
// min and at most max arguments (max < 0: no limit), naming them in its
// error as the command's Use line does.
func usageArgs(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min || (max >= 0 && len(args) > max) {
			return fmt.Errorf("usage: %s", cmd.UseLine())
		}
		return nil
	}
}

// errStop ends a walk early; it is never reported.
var errStop = errors.New("stop")
