// Command sshlateral-bench measures the sshlateral pipeline against the raw
// franz-go consumer over a synthetic endpoint stream: throughput per
// guarantee, early-detection latency under steady load, and state cost per
// open group. It runs on Linux (it reads /proc and getrusage); the service
// binary, cmd/sshlateral, does not carry it.
//
// With --serve-kfake it serves an embedded kfake cluster instead, printing
// its address and stopping when stdin closes: the broker child of a bench
// run, and the kfake process of the integration tests.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/sshlateral/sshlateral/cmd/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := cli.Env{Getenv: os.Getenv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	err := cmdBench(ctx, e, os.Args[1:])
	if code := cli.ExitCode(err); code != 0 {
		if code != 2 {
			os.Stderr.WriteString("sshlateral-bench: " + err.Error() + "\n")
		}
		stop()
		os.Exit(code)
	}
}
