// Command sshlateral runs the ESCU "Linux SSH Remote Services Script Execute"
// detection as a Kafka stream processor. main only wires: signals, the
// subcommand, the exit code.
package main

import (
	"context"
	"io"
	"os"

	"github.com/sshlateral/sshlateral/cmd/internal/cli"
)

func main() {
	ctx, stop := cli.SignalContext("sshlateral")
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func subcommands() []cli.Command {
	return []cli.Command{
		{Name: "run", Summary: "run the detection service on a Kafka cluster", Run: cmdRun},
		{Name: "demo", Summary: "run the pipeline on an embedded Kafka with bundled sample events", Run: cmdDemo},
		{Name: "scan", Summary: "run the detection over files offline (no Kafka)", Run: cmdScan},
		{Name: "replay", Summary: "produce a dataset file to the input topic", Run: cmdReplay},
		{Name: "alerts", Summary: "print risk records from the output topic as JSON lines", Run: cmdAlerts},
		{Name: "version", Summary: "print the version, commit and Go version", Run: cmdVersion},
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := cli.Env{Getenv: getenv, Stdin: stdin, Stdout: stdout, Stderr: stderr}
	return cli.Dispatch(ctx, "sshlateral", subcommands(), e, args)
}
