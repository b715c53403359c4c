package main

import (
	"github.com/sshlateral/sshlateral/cmd/internal/cli"
	"github.com/sshlateral/sshlateral/cmd/sshlateral/internal/allowlist"
	"github.com/sshlateral/sshlateral/consumer/decode"

	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/sshlateral/sshlateral/processor"
	"github.com/sshlateral/sshlateral/producer"
)

// scanSummary counts what a scan saw; it goes to stderr.
type scanSummary struct {
	Lines, Events, Prefiltered, Skipped, Errors, Oversized int64
	Results                                                map[string]int64
	Suppressed                                             map[string]int64
	RiskRecords                                            int64
	Audit                                                  decode.AuditStats
}

// exitInputErrors is scan's exit code when it ran to the end but some
// lines failed to decode or were too long: their results may be missing.
const exitInputErrors = 3

// inputErrors is the error of a scan that lost lines.
type inputErrors struct{ decode, oversized int64 }

func (e inputErrors) Error() string {
	return fmt.Sprintf("%d lines failed to decode and %d were over --max-record-bytes (see above)", e.decode, e.oversized)
}

func (inputErrors) ExitCode() int { return exitInputErrors }

func cmdScan(ctx context.Context, e cli.Env, args []string) error {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	// scan is a batch run over a finished file, like the scheduled search:
	// one FINAL row per group by default.
	proc := addProcessorFlags(fs, processor.EmitFinal)
	format := decode.FormatAuto
	fs.Var(&format, "input-format", "input record `format`: auto (default; decided per record), sysmon, cim, envelope, hec, ecs, ocsf or auditd")
	envelopeField := fs.String("envelope-field", "", "JSON field (dotted path) holding the event in an envelope, besides message, log, event, _raw and event.original")
	output := fs.String("output", "json", "json (one risk record per line on stdout) or avro (object container file, needs --out)")
	maxRecord := fs.Int("max-record-bytes", defaultMaxRecordBytes, "lines longer than this are reported (file:line, size) and skipped")
	outFile := fs.String("out", "", "output file (default stdout for json)")
	noPrefilter := fs.Bool("no-prefilter", false, "decode every record fully")
	filterPath := fs.String("filter", "", "allowlist file (.yaml, .yml or .json) applied to results, as in run")
	if err := cli.ParseFlags(fs, e, args); err != nil {
		return err
	}
	files := fs.Args()
	if len(files) == 0 {
		return errors.New("no input: give one or more files, or - for stdin")
	}
	if *maxRecord <= 0 {
		return fmt.Errorf("--max-record-bytes: must be positive, got %d", *maxRecord)
	}
	if err := flagErrors(proc.Validate()); err != nil {
		return err
	}
	var w io.Writer = e.Stdout
	if *outFile != "" {
		f, err := os.Create(*outFile)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	var sink func([]processor.Result) error
	var closeSink func() error
	summary := scanSummary{Results: map[string]int64{}, Suppressed: map[string]int64{}}
	var allow *allowlist.Holder
	if *filterPath != "" {
		var err error
		if allow, err = allowlist.Load(*filterPath, slog.New(slog.NewTextHandler(e.Stderr, nil))); err != nil {
			return err
		}
	}
	// The allowlist applies after aggregation, to results, as the macro does.
	allowed := func(rs []processor.Result) []processor.Result {
		if allow == nil {
			return rs
		}
		kept := rs[:0]
		for _, r := range rs {
			if rule, ok := allow.Suppress(&r); ok {
				summary.Suppressed[rule]++
				continue
			}
			kept = append(kept, r)
		}
		return kept
	}
	switch *output {
	case "json":
		var buf []byte
		sink = func(rs []processor.Result) error {
			for _, r := range allowed(rs) {
				var err error
				if buf, err = producer.AppendJSONLines(buf[:0], &r); err != nil {
					return err
				}
				bw.Write(buf)
				summary.RiskRecords += 2
			}
			return nil
		}
		closeSink = bw.Flush
	case "avro":
		if *outFile == "" {
			return errors.New("--output avro: needs --out FILE")
		}
		ocf, err := producer.NewOCFWriter(bw)
		if err != nil {
			return err
		}
		sink = func(rs []processor.Result) error {
			rs = allowed(rs)
			summary.RiskRecords += 2 * int64(len(rs))
			return ocf.Write(rs)
		}
		closeSink = func() error {
			if err := ocf.Close(); err != nil {
				return err
			}
			return bw.Flush()
		}
	default:
		return fmt.Errorf("--output: want json or avro, got %q", *output)
	}

	lr := lineReader{stdin: e.Stdin, max: *maxRecord, tooLong: func(file string, lineNo int, size int64) {
		summary.Oversized++
		fmt.Fprintf(e.Stderr, "%s:%d: line of %d bytes skipped (over --max-record-bytes %d)\n", file, lineNo, size, *maxRecord)
	}}
	var decOpts []decode.Option
	if *envelopeField != "" {
		decOpts = append(decOpts, decode.WithEnvelopeField(*envelopeField))
	}
	if err := scan(ctx, e, lr, files, format, decOpts, !*noPrefilter, *proc, sink, &summary); err != nil {
		return err
	}
	if err := closeSink(); err != nil {
		return err
	}
	fmt.Fprintf(e.Stderr, "scan: lines %d, process events %d (prefiltered %d), skipped %d, decode errors %d, oversized %d, results %v, suppressed %v, risk records %d\n",
		summary.Lines, summary.Events+summary.Prefiltered, summary.Prefiltered, summary.Skipped, summary.Errors, summary.Oversized,
		summary.Results, summary.Suppressed, summary.RiskRecords)
	if a := summary.Audit; a.EOE+a.TimedOut+a.Evicted > 0 {
		fmt.Fprintf(e.Stderr, "scan: auditd events completed at EOE %d, by time %d, evicted %d\n", a.EOE, a.TimedOut, a.Evicted)
	}
	if summary.Errors > 0 || summary.Oversized > 0 {
		return inputErrors{decode: summary.Errors, oversized: summary.Oversized}
	}
	return nil
}

// scan runs one Partition over every line: a file is one stream, so windows
// follow its event time, and end of input closes every open window.
func scan(ctx context.Context, e cli.Env, lr lineReader, files []string, format decode.Format, decOpts []decode.Option, prefilter bool, cfg processor.Config,
	sink func([]processor.Result) error, s *scanSummary) error {
	// Idle close is wall-clock; a file has no idle time. Without a
	// changelog no state change is kept, so memory stays bounded by the
	// open groups rather than every group ever seen.
	cfg.IdleClose = 0
	cfg.DiscardChanges = true
	part, err := processor.NewPartition(cfg)
	if err != nil {
		return err
	}
	dec, err := decode.NewDecoder(format, decOpts...)
	if err != nil {
		return err
	}
	var ev processor.Event
	var results []processor.Result
	emit := func() error {
		for _, r := range results {
			s.Results[r.Emission.String()]++
		}
		err := sink(results)
		results = results[:0]
		return err
	}
	var changes []processor.StateChange
	now := time.Now()
	apply := func(where string, outcome decode.Outcome, derr error) error {
		if derr == nil && (outcome == decode.OutcomeEvent || outcome == decode.OutcomeNoMatch) {
			// A clock from the future would move no window; say so.
			derr = processor.CheckEventTime(ev.Time, now, cfg.MaxFuture)
		}
		if derr != nil {
			s.Errors++
			fmt.Fprintf(e.Stderr, "%s: %s\n", where, boundedError(derr))
			return nil
		}
		switch outcome {
		case decode.OutcomeEvent:
			s.Events++
			results = part.Process(&ev, now, results)
		case decode.OutcomeNoMatch:
			s.Prefiltered++
			results = part.Advance(ev.Time, now, results)
		case decode.OutcomeSkip:
			s.Skipped++
		}
		if len(results) > 0 {
			return emit()
		}
		return nil
	}
	// drainReady applies the auditd assemblies that completed (by the
	// stream's time, or at the end of input).
	drainReady := func(where string) error {
		for {
			outcome, ok, derr := dec.Ready(&ev)
			if !ok {
				return nil
			}
			if err := apply(where, outcome, derr); err != nil {
				return err
			}
		}
	}
	err = lr.each(files, func(file string, lineNo int, line []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.Lines++
		changes = part.DrainChanges(changes[:0]) // only the meta entry
		var outcome decode.Outcome
		var derr error
		if prefilter {
			outcome, derr = dec.Decode(line, &ev)
		} else {
			outcome, derr = dec.DecodeFull(line, &ev)
		}
		if err := apply(fmt.Sprintf("%s:%d", file, lineNo), outcome, derr); err != nil {
			return err
		}
		return drainReady(fmt.Sprintf("%s:%d (auditd assembly)", file, lineNo))
	})
	if err != nil {
		return err
	}
	// End of input: auditd assemblies still open are complete now.
	dec.Expire(time.Time{})
	if err := drainReady("end of input (auditd assembly)"); err != nil {
		return err
	}
	s.Audit = dec.AuditStats()
	results = part.Flush(results)
	return emit()
}

// maxScanErrorBytes bounds a decode error as scan prints it: errors quote
// the record, which may be hostile and megabytes long.
const maxScanErrorBytes = 1024

func boundedError(err error) string {
	s := err.Error()
	if len(s) <= maxScanErrorBytes {
		return s
	}
	kept := processor.CutUTF8(s, maxScanErrorBytes)
	return fmt.Sprintf("%s…(%d bytes cut)", kept, len(s)-len(kept))
}
