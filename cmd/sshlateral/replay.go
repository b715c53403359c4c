package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/cmd/internal/cli"
	"github.com/sshlateral/sshlateral/cmd/internal/kafkaclient"
	"github.com/sshlateral/sshlateral/consumer"
)

type replayOptions struct {
	// rate is records per second; 0 means as fast as the broker takes them.
	rate float64
	// shift moves every timestamp of a line; nil keeps them.
	shift *rebaser
}

func cmdReplay(ctx context.Context, e cli.Env, args []string) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	kf := kafkaclient.AddFlags(fs)
	topic := fs.String("topic", consumer.DefaultConfig().InputTopic, "input topic to produce to")
	rate := fs.Float64("rate", 0, "records per second (0: unlimited)")
	rebase := fs.Bool("rebase", false, "shift timestamps so the first event happens now (ESCU replay style); default keeps them")
	maxRecord := fs.Int("max-record-bytes", defaultMaxRecordBytes, "lines longer than this are reported and skipped")
	deliveryTimeout := fs.Duration("delivery-timeout", 2*time.Minute, "give up when a record is not acknowledged within this long (broker outage)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	if err := cli.ParseFlags(fs, e, args); err != nil {
		return err
	}
	kc, err := kf.Build()
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if *rate < 0 {
		errs = append(errs, fmt.Errorf("--rate: must be >= 0, got %g", *rate))
	}
	if *deliveryTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--delivery-timeout: must be positive, got %s", *deliveryTimeout))
	}
	if *maxRecord <= 0 {
		errs = append(errs, fmt.Errorf("--max-record-bytes: must be positive, got %d", *maxRecord))
	}
	files := fs.Args()
	if len(files) == 0 {
		errs = append(errs, errors.New("no input: give one or more files, or - for stdin"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	skipped := 0
	lr := lineReader{stdin: e.Stdin, max: *maxRecord, tooLong: func(file string, lineNo int, size int64) {
		skipped++
		fmt.Fprintf(e.Stderr, "%s:%d: line of %d bytes skipped (over --max-record-bytes %d)\n", file, lineNo, size, *maxRecord)
	}}
	opts := replayOptions{rate: *rate}
	if *rebase {
		// --rebase needs the first event time before the first record goes
		// out: one pass to find it, then the replay. Stdin is read once, so
		// it is spooled to a temporary file first.
		cleanup, err := spoolStdin(&lr, files)
		defer cleanup()
		if err != nil {
			return err
		}
		quietLR := lr
		quietLR.tooLong = nil
		if opts.shift, err = newRebaser(quietLR, files, time.Now()); err != nil {
			return err
		}
	}
	cl, err := kc.NewClient(ctx, kgo.DefaultProduceTopic(*topic), kgo.ProducerBatchCompression(kgo.ZstdCompression()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.RecordDeliveryTimeout(*deliveryTimeout))
	if err != nil {
		return err
	}
	defer cl.Close()
	progress := e.Stderr
	if *quiet {
		progress = io.Discard
	}
	n, err := produceLines(ctx, cl, *topic, lr.each, files, opts, progress)
	fmt.Fprintf(e.Stderr, "replayed %d records to %s", n, *topic)
	if skipped > 0 {
		fmt.Fprintf(e.Stderr, ", skipped %d oversized lines", skipped)
	}
	fmt.Fprintln(e.Stderr)
	return err
}

// spoolStdin copies stdin to a temporary file when files name it, so that
// it can be read twice; files is rewritten in place.
func spoolStdin(lr *lineReader, files []string) (cleanup func(), err error) {
	cleanup = func() {}
	for i, f := range files {
		if f != "-" {
			continue
		}
		tmp, err := os.CreateTemp("", "sshlateral-replay-*.log")
		if err != nil {
			return cleanup, err
		}
		cleanup = func() { os.Remove(tmp.Name()) }
		if _, err := io.Copy(tmp, lr.stdin); err != nil {
			tmp.Close()
			return cleanup, fmt.Errorf("read stdin: %w", err)
		}
		if err := tmp.Close(); err != nil {
			return cleanup, err
		}
		for j := i; j < len(files); j++ {
			if files[j] == "-" {
				files[j] = tmp.Name()
			}
		}
		break
	}
	return cleanup, nil
}

// eachLineFunc is how produceLines reads its input: lineReader.each, or one
// in-memory file.
type eachLineFunc func(files []string, fn func(file string, lineNo int, line []byte) error) error

// produceLines produces every line to topic, keyed by host, streaming (one
// line in memory at a time, plus what the client buffers), and waits until
// the broker has acknowledged all of them.
func produceLines(ctx context.Context, cl *kgo.Client, topic string, each eachLineFunc, files []string, opts replayOptions, progress io.Writer) (int64, error) {
	keyer, err := newHostKeyer()
	if err != nil {
		return 0, err
	}
	var (
		mu       sync.Mutex
		firstErr error
		acked    int64
	)
	bar := newProgressBar(progress)
	start := time.Now()
	i := 0
	err = each(files, func(_ string, _ int, line []byte) error {
		if opts.rate > 0 {
			due := start.Add(time.Duration(float64(i) / opts.rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		mu.Lock()
		ferr := firstErr
		mu.Unlock()
		if ferr != nil {
			return ferr
		}
		value := bytes.Clone(line)
		if opts.shift != nil {
			value = opts.shift.apply(value)
		}
		rec := &kgo.Record{Key: keyer.key(value), Value: value}
		cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("produce to topic %s: %w", topic, err)
			}
			if err == nil {
				acked++
			}
		})
		i++
		bar.update(i)
		return nil
	})
	if ferr := cl.Flush(ctx); err == nil {
		err = ferr
	}
	bar.done()
	mu.Lock()
	defer mu.Unlock()
	if err == nil {
		err = firstErr
	}
	return acked, err
}

// rebaser shifts every timestamp form the decoders read by delta, keeping
// each form's layout: Sysmon UtcTime, RFC 3339 (Sysmon SystemTime, syslog
// RFC 5424 headers, JSON time strings), RFC 3164 syslog headers, epoch
// times (CIM _time, HEC and OCSF time, ECS @timestamp; seconds or
// milliseconds, number or numeric string) and auditd record stamps.
type rebaser struct {
	delta time.Duration
	// year is the year of the first event: RFC 3164 stamps carry none, and
	// shifting them in the right year keeps leap days right.
	year int
}

// newRebaser reads lines until the first process event, and aims it at now.
func newRebaser(lr lineReader, files []string, now time.Time) (*rebaser, error) {
	keyer, err := newHostKeyer()
	if err != nil {
		return nil, err
	}
	var first time.Time
	errFound := errors.New("found")
	err = lr.each(files, func(_ string, _ int, line []byte) error {
		if ev, ok := keyer.eventTime(line); ok {
			first = ev.Time
			return errFound
		}
		if t, ok := auditStamp(line); ok {
			// auditd: no single record is an event; its stamp is.
			first = t
			return errFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFound) {
		return nil, err
	}
	if first.IsZero() {
		return &rebaser{}, nil // no process event: nothing to aim
	}
	return &rebaser{delta: now.Sub(first), year: first.UTC().Year()}, nil
}

var (
	reUtcTime = regexp.MustCompile(`\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}`)
	reRFC3339 = regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})`)
	reRFC3164 = regexp.MustCompile(`^(?:<\d{1,3}>)?(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d{2}:\d{2}:\d{2}`)
	// reEpoch is an epoch time under a key the decoders read one from
	// (CIM _time, HEC and OCSF time, ECS @timestamp): a JSON number, or a
	// numeric string (both quotes, checked in apply: "2026-… is RFC 3339).
	// Its unit is seconds, or milliseconds from 1e11 up (OCSF, ECS): 1e11
	// seconds is the year 5138, 1e11 milliseconds 1973.
	reEpoch = regexp.MustCompile(`("(?:_time|time|@timestamp)"\s*:\s*)("?)(\d+(?:\.\d+)?)("?)`)
	// reAuditStamp is an auditd record's stamp, msg=audit(SECONDS.MS:SERIAL).
	reAuditStamp = regexp.MustCompile(`(msg=audit\()(\d+)\.(\d{3})(:\d+\))`)
)

// apply returns line with every timestamp shifted.
func (rb *rebaser) apply(line []byte) []byte {
	if rb.delta == 0 {
		return line
	}
	line = reUtcTime.ReplaceAllFunc(line, func(m []byte) []byte {
		const layout = "2006-01-02 15:04:05.000"
		t, err := time.Parse(layout, string(m))
		if err != nil {
			return m
		}
		return []byte(t.Add(rb.delta).Format(layout))
	})
	line = reRFC3339.ReplaceAllFunc(line, func(m []byte) []byte {
		t, err := time.Parse(time.RFC3339Nano, string(m))
		if err != nil {
			return m
		}
		// Keep the layout: the fraction's digits, and +00:00 rather than Z
		// when the line spelt the offset out.
		zone := "Z07:00"
		if m[len(m)-1] != 'Z' {
			zone = "-07:00"
		}
		layout := "2006-01-02T15:04:05" + zone
		if i := bytes.IndexByte(m, '.'); i >= 0 {
			end := bytes.IndexAny(m[i:], "Z+-")
			layout = "2006-01-02T15:04:05." + strings.Repeat("0", end-1) + zone
		}
		return []byte(t.Add(rb.delta).In(t.Location()).Format(layout))
	})
	line = reRFC3164.ReplaceAllFunc(line, func(m []byte) []byte {
		pri := m[:bytes.IndexAny(m, "JFMASOND")]
		t, err := time.Parse(time.Stamp, string(m[len(pri):]))
		if err != nil {
			return m
		}
		t = t.AddDate(rb.year, 0, 0)
		return append(append([]byte{}, pri...), t.Add(rb.delta).Format(time.Stamp)...)
	})
	line = reAuditStamp.ReplaceAllFunc(line, func(m []byte) []byte {
		sub := reAuditStamp.FindSubmatch(m)
		t, ok := parseAuditStamp(sub)
		if !ok {
			return m
		}
		t = t.Add(rb.delta)
		return fmt.Appendf(nil, "%s%d.%03d%s", sub[1], t.Unix(), t.UnixMilli()%1000, sub[4])
	})
	return reEpoch.ReplaceAllFunc(line, func(m []byte) []byte {
		sub := reEpoch.FindSubmatch(m)
		if !bytes.Equal(sub[2], sub[4]) {
			return m // "2026-11-02T…: an RFC 3339 string, shifted above
		}
		f, err := strconv.ParseFloat(string(sub[3]), 64)
		if err != nil {
			return m
		}
		prec := 0
		if i := bytes.IndexByte(sub[3], '.'); i >= 0 {
			prec = len(sub[3]) - i - 1
		}
		shift := rb.delta.Seconds()
		if f >= 1e11 {
			shift = float64(rb.delta.Milliseconds())
		}
		out := append([]byte{}, sub[1]...)
		out = append(out, sub[2]...)
		out = strconv.AppendFloat(out, f+shift, 'f', prec, 64)
		return append(out, sub[4]...)
	})
}

// auditStamp is the time of an auditd record.
func auditStamp(line []byte) (time.Time, bool) {
	if !bytes.HasPrefix(line, []byte("type=")) && !bytes.HasPrefix(line, []byte("node=")) {
		return time.Time{}, false
	}
	sub := reAuditStamp.FindSubmatch(line)
	if sub == nil {
		return time.Time{}, false
	}
	return parseAuditStamp(sub)
}

// parseAuditStamp reads the seconds and milliseconds of a reAuditStamp
// match.
func parseAuditStamp(sub [][]byte) (time.Time, bool) {
	sec, err1 := strconv.ParseInt(string(sub[2]), 10, 64)
	ms, err2 := strconv.ParseInt(string(sub[3]), 10, 64)
	if err1 != nil || err2 != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(sec*1000 + ms).UTC(), true
}

// progressBar draws "500 records 812 rec/s" on one line; a streamed input
// has no known total.
type progressBar struct {
	w     io.Writer
	start time.Time
	last  time.Time
	n     int
}

func newProgressBar(w io.Writer) *progressBar {
	return &progressBar{w: w, start: time.Now()}
}

func (p *progressBar) update(n int) {
	p.n = n
	if time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.draw()
}

func (p *progressBar) draw() {
	rate := float64(p.n) / max(time.Since(p.start).Seconds(), 1e-9)
	fmt.Fprintf(p.w, "\r%d records %.0f rec/s", p.n, rate)
}

func (p *progressBar) done() {
	if p.n > 0 {
		p.draw()
		fmt.Fprintln(p.w)
	}
}
