package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/sshlateral/sshlateral/processor"
	"github.com/sshlateral/sshlateral/producer"
)

// errUsage means the flag package already printed the problem and usage;
// errHelp that it printed the usage the user asked for.
var (
	errUsage = errors.New("usage")
	errHelp  = errors.New("help")
)

// parseFlags parses args, then fills every flag not given on the command line
// from SSHLATERAL_<FLAG>: flags win over the environment, which wins over
// defaults.
func parseFlags(fs *flag.FlagSet, e env, args []string) error {
	fs.SetOutput(e.stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return errUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		name := envName(f.Name)
		if v := e.getenv(name); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("--%s (from %s=%q): %w", f.Name, name, v, err))
			}
		}
	})
	return errors.Join(errs...)
}

func envName(flagName string) string {
	return "SSHLATERAL_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// processorFlags registers the matcher and window flags shared by run, demo
// and scan.
type processorFlags struct {
	match, emit                      string
	window, offset, grace, idleClose time.Duration
	maxOpenGroups                    int
}

func addProcessorFlags(fs *flag.FlagSet, defaultEmit string) *processorFlags {
	d := processor.DefaultConfig()
	pf := &processorFlags{}
	fs.StringVar(&pf.match, "match", "escu", "matcher: escu (exact ESCU parity) or robust (also catches -o Key=Value evasions)")
	fs.StringVar(&pf.emit, "emit", defaultEmit, "early (a group's first match at once, FINAL at window close if changed) or final (one record per group at window close)")
	fs.DurationVar(&pf.window, "window", d.Window, "event-time window size")
	fs.DurationVar(&pf.offset, "window-offset", d.Offset, "window boundary offset from the hour (50m: windows end at :50, as ESCU schedules)")
	fs.DurationVar(&pf.grace, "grace", d.Grace, "event-time grace before a window closes")
	fs.DurationVar(&pf.idleClose, "idle-close", d.IdleClose, "wall-clock idle time after which a quiet partition closes due windows (0 disables)")
	fs.IntVar(&pf.maxOpenGroups, "max-open-groups", d.MaxOpenGroups, "bound on open groups per partition; beyond it the oldest window closes early")
	return pf
}

func (pf *processorFlags) config() (processor.Config, error) {
	c := processor.DefaultConfig()
	var errs []error
	var err error
	if c.Match, err = processor.ParseMatchMode(pf.match); err != nil {
		errs = append(errs, err)
	}
	if c.Emit, err = processor.ParseEmitMode(pf.emit); err != nil {
		errs = append(errs, err)
	}
	c.Window, c.Offset, c.Grace, c.IdleClose, c.MaxOpenGroups = pf.window, pf.offset, pf.grace, pf.idleClose, pf.maxOpenGroups
	if len(errs) == 0 {
		if err := c.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return c, errors.Join(errs...)
}

// outputFlags registers the risk-record encoding flags.
type outputFlags struct {
	wire     string
	schemaID int
}

func addOutputFlags(fs *flag.FlagSet) *outputFlags {
	of := &outputFlags{}
	fs.StringVar(&of.wire, "wire-format", "plain", "risk record framing: plain Avro binary or confluent (magic byte + schema id)")
	fs.IntVar(&of.schemaID, "schema-id", 1, "schema registry id written with --wire-format confluent")
	return of
}

func (of *outputFlags) encoder(topic string) (*producer.Encoder, error) {
	wire, err := producer.ParseWireFormat(of.wire)
	if err != nil {
		return nil, err
	}
	return producer.NewEncoder(producer.EncoderConfig{Topic: topic, Wire: wire, SchemaID: int64(of.schemaID)})
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
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
