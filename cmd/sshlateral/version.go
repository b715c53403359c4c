package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"

	"github.com/sshlateral/sshlateral/cmd/internal/cli"
	"github.com/sshlateral/sshlateral/cmd/sshlateral/internal/metrics"
)

// version and commit are set at build time:
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=$(git rev-parse HEAD)" ./cmd/sshlateral
var (
	version = "dev"
	commit  = "dev"
)

// buildInfo is the build of this binary, as `version` prints it and
// sshlateral_build_info exports it.
func buildInfo() metrics.BuildInfo {
	return metrics.BuildInfo{Version: version, Commit: commit, GoVersion: runtime.Version()}
}

func cmdVersion(_ context.Context, e cli.Env, args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if err := cli.ParseFlags(fs, e, args); err != nil {
		return err
	}
	b := buildInfo()
	fmt.Fprintf(e.Stdout, "sshlateral %s (commit %s, %s)\n", b.Version, b.Commit, b.GoVersion)
	return nil
}
