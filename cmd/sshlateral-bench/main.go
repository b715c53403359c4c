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
	"fmt"
	"os"

	"github.com/sshlateral/sshlateral/cmd/internal/cli"
)

func main() {
	ctx, stop := cli.SignalContext("sshlateral-bench")
	e := cli.Env{Getenv: os.Getenv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	err := cmdBench(ctx, e, os.Args[1:])
	stop()
	code := cli.ExitCode(err)
	if code != 0 && code != 2 {
		fmt.Fprintf(os.Stderr, "sshlateral-bench: %v\n", err)
	}
	os.Exit(code)
}
