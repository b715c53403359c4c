// Package cli holds what the sshlateral and sshlateral-bench commands share
// about their command lines: subcommand dispatch, flags filled from
// SSHLATERAL_* variables and a YAML file, and the logger.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Env is how commands reach their environment, so tests can supply their own.
type Env struct {
	Getenv func(string) string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// ErrUsage means the flag package already printed the problem and usage;
// ErrHelp that it printed the usage the user asked for.
var (
	ErrUsage = errors.New("usage")
	ErrHelp  = errors.New("help")
)

// ExitCode maps a command's error to the process exit code: 0 success or
// help, 2 usage, 1 anything else. An error implementing ExitCode() int
// chooses its own code.
func ExitCode(err error) int {
	var coded interface{ ExitCode() int }
	switch {
	case err == nil, errors.Is(err, ErrHelp):
		return 0
	case errors.Is(err, ErrUsage):
		return 2
	case errors.As(err, &coded):
		return coded.ExitCode()
	}
	return 1
}

// Command is one subcommand.
type Command struct {
	Name    string
	Summary string
	Run     func(ctx context.Context, e Env, args []string) error
}

// Dispatch runs the subcommand args[0] names and returns the exit code.
func Dispatch(ctx context.Context, prog string, cmds []Command, e Env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		Usage(e.Stderr, prog, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range cmds {
		if c.Name != args[0] {
			continue
		}
		err := c.Run(ctx, e, args[1:])
		code := ExitCode(err)
		if code != 0 && !errors.Is(err, ErrUsage) {
			fmt.Fprintf(e.Stderr, "%s %s: %v\n", prog, c.Name, err)
		}
		return code
	}
	fmt.Fprintf(e.Stderr, "%s: unknown command %q\n", prog, args[0])
	Usage(e.Stderr, prog, cmds)
	return 2
}

// Usage prints the command list.
func Usage(w io.Writer, prog string, cmds []Command) {
	fmt.Fprintf(w, "usage: %s <command> [flags]\n\ncommands:\n", prog)
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-8s %s\n", c.Name, c.Summary)
	}
	fmt.Fprintln(w, "\nEvery flag can also be set as SSHLATERAL_<FLAG> (upper case, - as _); flags win.")
}

// ParseFlags parses args, then fills every flag not given on the command line
// from SSHLATERAL_<FLAG>: flags win over the environment, which wins over
// defaults.
func ParseFlags(fs *flag.FlagSet, e Env, args []string) error {
	fs.SetOutput(e.Stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ErrHelp
		}
		return ErrUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		name := EnvName(f.Name)
		if v := e.Getenv(name); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("--%s (from %s=%q): %w", f.Name, name, v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// EnvName is the environment variable of a flag.
func EnvName(flagName string) string {
	return "SSHLATERAL_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// SplitList splits a comma-separated flag value, dropping empty items.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// NewLogger builds the slog logger of --log-format and --log-level.
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: want json or text, got %q", format)
}

// Sum adds up a map of counters.
func Sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// SignalContext is cancelled by the first SIGINT or SIGTERM, which starts a
// graceful shutdown (with its own deadline); a second one exits the process
// at once with status 130.
func SignalContext(prog string) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
		again := make(chan os.Signal, 1)
		signal.Notify(again, os.Interrupt, syscall.SIGTERM)
		<-again
		fmt.Fprintf(os.Stderr, "%s: second signal, exiting now\n", prog)
		os.Exit(130)
	}()
	return ctx, stop
}
