package main

import (
	"github.com/sshlateral/sshlateral/consumer/decode"

	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/consumer"
	"github.com/sshlateral/sshlateral/processor"
)

type replayOptions struct {
	// rate is records per second; 0 means as fast as the broker takes them.
	rate float64
	// rebase shifts every timestamp in the data so the first event happens now.
	rebase bool
	// now is the time rebase aims at; zero means time.Now().
	now time.Time
}

func cmdReplay(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	brokers := fs.String("brokers", "", "comma-separated seed brokers (required)")
	topic := fs.String("topic", consumer.DefaultConfig().InputTopic, "input topic to produce to")
	rate := fs.Float64("rate", 0, "records per second (0: unlimited)")
	rebase := fs.Bool("rebase", false, "shift timestamps so the first event happens now (ESCU replay style); default keeps them")
	quiet := fs.Bool("quiet", false, "no progress bar")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if *brokers == "" {
		return errors.New("--brokers: at least one seed broker is required")
	}
	if *rate < 0 {
		return fmt.Errorf("--rate: must be >= 0, got %g", *rate)
	}
	files := fs.Args()
	if len(files) == 0 {
		return errors.New("no input: give one or more files, or - for stdin")
	}
	var data bytes.Buffer
	if err := eachLine(e.stdin, files, func(_ string, _ int, line []byte) error {
		data.Write(line)
		data.WriteByte('\n')
		return nil
	}); err != nil {
		return err
	}
	progress := e.stderr
	if *quiet {
		progress = io.Discard
	}
	n, err := produceFile(ctx, splitList(*brokers), *topic, &data, replayOptions{rate: *rate, rebase: *rebase}, progress)
	fmt.Fprintf(e.stderr, "replayed %d records to %s\n", n, *topic)
	return err
}

// produceFile produces every line of r to topic, keyed by host, and waits
// until the broker has acknowledged all of them.
func produceFile(ctx context.Context, brokers []string, topic string, r io.Reader, opts replayOptions, progress io.Writer) (int64, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return 0, err
	}
	lines := bytes.Split(bytes.TrimRight(raw, "\n"), []byte("\n"))
	if len(raw) == 0 {
		lines = nil
	}
	keyer, err := newHostKeyer()
	if err != nil {
		return 0, err
	}
	var delta time.Duration
	if opts.rebase {
		now := opts.now
		if now.IsZero() {
			now = time.Now()
		}
		if first, ok := firstEventTime(lines); ok {
			delta = now.Sub(first)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(kgo.ZstdCompression()), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return 0, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()

	var (
		mu       sync.Mutex
		firstErr error
		acked    int64
	)
	bar := newProgressBar(progress, len(lines))
	start := time.Now()
	for i, line := range lines {
		if opts.rate > 0 {
			due := start.Add(time.Duration(float64(i) / opts.rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return acked, ctx.Err()
				}
			}
		}
		value := bytes.Clone(line)
		if delta != 0 {
			value = rebaseTimes(value, delta)
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
		bar.update(i + 1)
	}
	if err := cl.Flush(ctx); err != nil {
		return acked, err
	}
	bar.done()
	mu.Lock()
	defer mu.Unlock()
	return acked, firstErr
}

// firstEventTime is the event time of the first process event in lines.
func firstEventTime(lines [][]byte) (time.Time, bool) {
	dec, err := decode.NewDecoder(decode.FormatAuto)
	if err != nil {
		return time.Time{}, false
	}
	var ev processor.Event
	for _, l := range lines {
		if out, err := dec.DecodeFull(l, &ev); err == nil && out == decode.OutcomeEvent && !ev.Time.IsZero() {
			return ev.Time, true
		}
	}
	return time.Time{}, false
}

var (
	reUtcTime  = regexp.MustCompile(`\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}`)
	reRFC3339  = regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})`)
	reRFC3164  = regexp.MustCompile(`^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d{2}:\d{2}:\d{2}`)
	reCIMEpoch = regexp.MustCompile(`("(?:Processes\.)?_time"\s*:\s*"?)(\d+(?:\.\d+)?)`)
)

// rebaseTimes shifts every timestamp shape the decoders read (Sysmon UtcTime
// and SystemTime, syslog stamps, CIM _time) by delta, keeping each format.
func rebaseTimes(line []byte, delta time.Duration) []byte {
	shift := func(re *regexp.Regexp, layout string, b []byte) []byte {
		return re.ReplaceAllFunc(b, func(m []byte) []byte {
			t, err := time.Parse(layout, string(m))
			if err != nil {
				return m
			}
			return []byte(t.Add(delta).Format(layout))
		})
	}
	line = shift(reUtcTime, "2006-01-02 15:04:05.000", line)
	line = reRFC3339.ReplaceAllFunc(line, func(m []byte) []byte {
		t, err := time.Parse(time.RFC3339Nano, string(m))
		if err != nil {
			return m
		}
		layout := time.RFC3339
		if i := bytes.IndexByte(m, '.'); i >= 0 {
			end := bytes.IndexAny(m[i:], "Z+-")
			layout = "2006-01-02T15:04:05." + strings.Repeat("0", end-1) + "Z07:00"
		}
		return []byte(t.Add(delta).In(t.Location()).Format(layout))
	})
	line = shift(reRFC3164, time.Stamp, line)
	line = reCIMEpoch.ReplaceAllFunc(line, func(m []byte) []byte {
		sub := reCIMEpoch.FindSubmatch(m)
		f, err := strconv.ParseFloat(string(sub[2]), 64)
		if err != nil {
			return m
		}
		v := f + delta.Seconds()
		prec := 0
		if i := bytes.IndexByte(sub[2], '.'); i >= 0 {
			prec = len(sub[2]) - i - 1
		}
		return append(append([]byte{}, sub[1]...), strconv.FormatFloat(v, 'f', prec, 64)...)
	})
	return line
}

// progressBar draws "[#####.....] 50% 500/1000 812 rec/s" on one line.
type progressBar struct {
	w     io.Writer
	total int
	start time.Time
	last  time.Time
}

func newProgressBar(w io.Writer, total int) *progressBar {
	return &progressBar{w: w, total: total, start: time.Now()}
}

func (p *progressBar) update(n int) {
	if time.Since(p.last) < 200*time.Millisecond && n != p.total {
		return
	}
	p.last = time.Now()
	const width = 30
	filled := width
	pct := 100
	if p.total > 0 {
		filled = n * width / p.total
		pct = n * 100 / p.total
	}
	rate := float64(n) / time.Since(p.start).Seconds()
	fmt.Fprintf(p.w, "\r[%s%s] %3d%% %d/%d %.0f rec/s", strings.Repeat("#", filled), strings.Repeat(".", width-filled), pct, n, p.total, rate)
}

func (p *progressBar) done() {
	if p.total > 0 {
		fmt.Fprintln(p.w)
	}
}
