// Command sshlateral runs the ESCU "Linux SSH Remote Services Script Execute"
// detection as a Kafka stream processor. main only wires: signals, the
// subcommand, the exit code.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal starts a graceful shutdown (with its own
		// deadline); a second one exits at once.
		<-ctx.Done()
		stop()
		again := make(chan os.Signal, 1)
		signal.Notify(again, os.Interrupt, syscall.SIGTERM)
		<-again
		fmt.Fprintln(os.Stderr, "sshlateral: second signal, exiting now")
		os.Exit(130)
	}()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}

// env is how subcommands read the environment, so tests can supply their own.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

type subcommand struct {
	name    string
	summary string
	run     func(ctx context.Context, e env, args []string) error
}

func subcommands() []subcommand {
	return []subcommand{
		{"run", "run the detection service on a Kafka cluster", cmdRun},
		{"demo", "run the pipeline on an embedded Kafka with bundled sample events", cmdDemo},
		{"scan", "run the detection over files offline (no Kafka)", cmdScan},
		{"replay", "produce a dataset file to the input topic", cmdReplay},
		{"alerts", "print risk records from the output topic as JSON lines", cmdAlerts},
		{"bench", "measure throughput and latency against the raw consumer", cmdBench},
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range subcommands() {
		if c.name != args[0] {
			continue
		}
		if err := c.run(ctx, e, args[1:]); err != nil {
			switch err {
			case errHelp:
				return 0
			case errUsage:
				return 2
			}
			fmt.Fprintf(stderr, "sshlateral %s: %v\n", c.name, err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "sshlateral: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: sshlateral <command> [flags]\n\ncommands:")
	for _, c := range subcommands() {
		fmt.Fprintf(w, "  %-7s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nEvery flag can also be set as SSHLATERAL_<FLAG> (upper case, - as _); flags win.")
}
