package main

import (
	"github.com/sshlateral/sshlateral/cmd/internal/cli"
	"github.com/sshlateral/sshlateral/consumer/decode"

	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/consumer"
	"github.com/sshlateral/sshlateral/processor"
)

func testGenConfig(t testing.TB, format string, events int) genConfig {
	t.Helper()
	c := defaultGenConfig()
	c.Format = format
	c.Events = events
	c.Hosts = 50
	c.PositiveRate = 0.01
	c.SSHRate = 0.05
	c.SSHDRate = 0.1
	return c
}

// generate returns the records of cfg, each value in its own slice.
func generate(t testing.TB, cfg genConfig) []genRecord {
	t.Helper()
	g, err := newGenerator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]genRecord, cfg.Events)
	for i := range recs {
		var buf []byte
		buf, recs[i] = g.next(buf, i, time.Time{})
		_ = buf
	}
	return recs
}

// TestGeneratedRecordsDecode checks the generator against the real decoders
// and matcher: every record decodes, its kind agrees with the matcher, and
// the fields the bench joins on (host, pid, time) survive decoding.
func TestGeneratedRecordsDecode(t *testing.T) {
	for _, format := range genFormats {
		t.Run(format, func(t *testing.T) {
			cfg := testGenConfig(t, format, 2000)
			f, err := decode.ParseFormat(format)
			if err != nil {
				t.Fatal(err)
			}
			dec, err := decode.NewDecoder(f)
			if err != nil {
				t.Fatal(err)
			}
			kinds := map[recordKind]int{}
			for i, rec := range generate(t, cfg) {
				kinds[rec.Kind]++
				var ev processor.Event
				out, err := dec.DecodeFull(rec.Value, &ev)
				if err != nil || out != decode.OutcomeEvent {
					t.Fatalf("record %d: outcome %v, err %v\n%s", i, out, err, rec.Value)
				}
				if ev.Dest != rec.Host || string(rec.Key) != rec.Host {
					t.Errorf("record %d: dest %q, key %q, want %q", i, ev.Dest, rec.Key, rec.Host)
				}
				if ev.ProcessID != rec.PID {
					t.Errorf("record %d: process id %q, want %q", i, ev.ProcessID, rec.PID)
				}
				if !ev.Time.Equal(rec.Time) {
					t.Errorf("record %d: time %s, want %s", i, ev.Time, rec.Time)
				}
				if got, want := processor.Match(processor.MatchESCU, &ev), rec.Kind == kindPositive; got != want {
					t.Errorf("record %d (kind %d): match %v, want %v: %q", i, rec.Kind, got, want, ev.Process)
				}
				if rec.Kind == kindSSH && ev.ProcessName != "ssh" {
					t.Errorf("record %d: ssh record with process name %q", i, ev.ProcessName)
				}
				// The prefilter may pass what cannot match, never the reverse.
				var pev processor.Event
				pout, err := dec.Decode(rec.Value, &pev)
				if err != nil {
					t.Fatalf("record %d: prefiltered decode: %v", i, err)
				}
				if rec.Kind == kindPlain && pout != decode.OutcomeNoMatch {
					t.Errorf("record %d: plain record not rejected by the prefilter: %v", i, pout)
				}
				if (rec.Kind == kindSSH || rec.Kind == kindPositive) && pout != decode.OutcomeEvent {
					t.Errorf("record %d (kind %d): outcome %v, want a full decode", i, rec.Kind, pout)
				}
			}
			for _, k := range []recordKind{kindPlain, kindSSHDChild, kindSSH, kindPositive} {
				if kinds[k] == 0 {
					t.Errorf("no record of kind %d in %d", k, cfg.Events)
				}
			}
		})
	}
}

func TestGeneratorProportions(t *testing.T) {
	cfg := testGenConfig(t, "sysmon", 100000)
	cfg.PositiveRate, cfg.SSHRate, cfg.SSHDRate = 0.001, 0.01, 0.02
	g, err := newGenerator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[recordKind]int{}
	for i := 0; i < cfg.Events; i++ {
		kinds[g.kindOf(i)]++
	}
	tests := []struct {
		name string
		kind recordKind
		want int
	}{
		{"positives", kindPositive, 100},
		{"other ssh", kindSSH, 900},
		{"sshd children", kindSSHDChild, 1980},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := kinds[tc.kind]; got < tc.want-2 || got > tc.want+2 {
				t.Errorf("%d records, want %d±2", got, tc.want)
			}
		})
	}
}

func TestGeneratorDeterministic(t *testing.T) {
	cfg := testGenConfig(t, "sysmon", 200)
	a, b := generate(t, cfg), generate(t, cfg)
	for i := range a {
		if !bytes.Equal(a[i].Value, b[i].Value) {
			t.Fatalf("record %d differs between two runs with seed %d", i, cfg.Seed)
		}
	}
	cfg.Seed++
	c := generate(t, cfg)
	same := 0
	for i := range a {
		if bytes.Equal(a[i].Value, c[i].Value) {
			same++
		}
	}
	if same == len(a) {
		t.Errorf("seeds %d and %d generate the same stream", cfg.Seed-1, cfg.Seed)
	}
}

func TestGeneratorRecordSize(t *testing.T) {
	for _, format := range []string{"sysmon", "cim"} {
		t.Run(format, func(t *testing.T) {
			cfg := testGenConfig(t, format, 500)
			cfg.RecordSize = 4096
			f, _ := decode.ParseFormat(format)
			dec, err := decode.NewDecoder(f)
			if err != nil {
				t.Fatal(err)
			}
			for i, rec := range generate(t, cfg) {
				if rec.Kind != kindPlain {
					continue
				}
				if n := len(rec.Value); n < 4096-256 || n > 4096+256 {
					t.Errorf("record %d: %d bytes, want about 4096", i, n)
				}
				var ev processor.Event
				if out, err := dec.Decode(rec.Value, &ev); err != nil || out != decode.OutcomeNoMatch {
					t.Errorf("record %d: padded plain record: outcome %v, err %v", i, out, err)
				}
			}
		})
	}
}

func TestBenchFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"defaults", nil, ""},
		{"quick", []string{"--quick"}, ""},
		{"zero events", []string{"--events", "0"}, "--events"},
		{"ssh rate below positive rate", []string{"--positive-rate", "0.1", "--ssh-rate", "0.01"}, "--ssh-rate"},
		{"unknown format", []string{"--format", "evtx"}, "--format"},
		{"unknown guarantee", []string{"--guarantee", "maybe"}, "--guarantee"},
		{"negative rate", []string{"--rate", "-1"}, "--rate"},
		{"no partitions", []string{"--partitions", "0"}, "--partitions"},
		{"broker process", []string{"--broker-process", "thread"}, "--broker-process"},
		{"real broker", []string{"--broker", "kafka", "--kafka-image", "sshlateral/kafka:x"}, ""},
		{"unknown broker", []string{"--broker", "redpanda"}, "--broker"},
		{"own broker and external brokers", []string{"--broker", "kafka", "--brokers", "127.0.0.1:9092"}, "--broker kafka"},
		{"no rounds", []string{"--rounds", "0"}, "--rounds"},
		{"unknown compression", []string{"--compression", "brotli"}, "--compression"},
		{"raw split", []string{"--raw-split", "2,3"}, ""},
		{"raw split of one", []string{"--raw-split", "1"}, "--raw-split"},
		{"raw split beyond partitions", []string{"--raw-split", "13"}, "--raw-split"},
		{"raw split not a number", []string{"--raw-split", "two"}, "--raw-split"},
		{"missing peer jar", []string{"--peer-jar", "/nonexistent/peer.jar"}, "--peer-jar"},
		{"peer idle too short", []string{"--peer-idle", "10ms"}, "--peer-idle"},
		{"peer guarantee", []string{"--peer-guarantee", "at-least-once"}, ""},
		{"unknown peer guarantee", []string{"--peer-guarantee", "exactly_once_v2"}, "--peer-guarantee"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			e := cli.Env{Getenv: func(string) string { return "" }, Stdout: &bytes.Buffer{}, Stderr: &stderr}
			_, err := parseBenchFlags(e, tc.args)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one naming %s", err, tc.wantErr)
			}
		})
	}
}

// TestBenchRun runs the whole bench command, small, on an in-process kfake,
// and checks what it counted (never how fast).
func TestBenchRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kfake cluster and three pipelines")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	var stdout, stderr bytes.Buffer
	e := cli.Env{Getenv: func(string) string { return "" }, Stdout: &stdout, Stderr: &stderr}
	args := []string{"--events", "3000", "--hosts", "40", "--partitions", "3", "--positive-rate", "0.01",
		"--latency-rate", "2000", "--latency-duration", "1s", "--state-groups", "300",
		"--broker-process", "in-process", "--rounds", "2", "--raw-split", "2", "--json"}
	if err := cmdBench(ctx, e, args); err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr.String())
	}
	var rep benchReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("output is not the JSON report: %v\n%s", err, stdout.String())
	}
	// The generator spreads kinds with a Weyl sequence: count its choice.
	gcfg := defaultGenConfig()
	gcfg.Events, gcfg.Hosts, gcfg.PositiveRate = 3000, 40, 0.01
	g, err := newGenerator(gcfg)
	if err != nil {
		t.Fatal(err)
	}
	positives := 0
	for i := 0; i < gcfg.Events; i++ {
		if g.kindOf(i) == kindPositive {
			positives++
		}
	}
	if positives < 28 || rep.Stream.Positives != positives {
		t.Errorf("stream has %d positives, the generator chose %d (about 30 expected)", rep.Stream.Positives, positives)
	}
	if len(rep.Warnings) > 0 {
		t.Errorf("warnings: %q", rep.Warnings)
	}
	if len(rep.Failures) > 0 {
		t.Errorf("failures: %q", rep.Failures)
	}
	// Two rounds in alternating order.
	round := []string{phaseRaw, rawSplitPhaseName(2), "sshlateral at-least-once", "sshlateral exactly-once"}
	wantPhases := append(slices.Clone(round), round[3], round[2], round[1], round[0])
	if len(rep.Phases) != len(wantPhases) {
		t.Fatalf("%d phases, want %d", len(rep.Phases), len(wantPhases))
	}
	for i, ph := range rep.Phases {
		t.Run(fmt.Sprintf("%d %s", i, ph.Name), func(t *testing.T) {
			if ph.Name != wantPhases[i] || ph.Round != 1+i/len(round) {
				t.Errorf("phase %d is %q of round %d, want %q of round %d", i, ph.Name, ph.Round, wantPhases[i], 1+i/len(round))
			}
			// The stream and one closing record per partition.
			if ph.Events < 3003 {
				t.Errorf("consumed %d events, want 3003", ph.Events)
			}
			if ph.CPUSeconds <= 0 || ph.CPUPerEvent <= 0 {
				t.Errorf("CPU %.3f s, %.3f µs/event; want both positive", ph.CPUSeconds, ph.CPUPerEvent)
			}
			if strings.HasPrefix(ph.Name, "sshlateral") {
				// Every group has one event: EARLY only, and its settled row.
				if ph.Results["EARLY"] != int64(positives) || ph.RecordsWritten != 2*int64(positives) {
					t.Errorf("results %v, records written %d; want %d EARLY, %d records", ph.Results, ph.RecordsWritten, positives, 2*positives)
				}
				if ph.Rows != positives || ph.RowsDiffer {
					t.Errorf("%d result rows (differ: %v), want %d equal rows", ph.Rows, ph.RowsDiffer, positives)
				}
				if ph.DeadLettered != 0 {
					t.Errorf("%d records dead-lettered", ph.DeadLettered)
				}
			}
		})
	}
	wantSummary := append(round, "kafka streams at_least_once", "kafka streams exactly_once_v2")
	if len(rep.Summary) != len(wantSummary) {
		t.Fatalf("summary rows %+v, want %q", rep.Summary, wantSummary)
	}
	for i, r := range rep.Summary {
		switch {
		case r.Name != wantSummary[i]:
			t.Errorf("summary row %d is %q, want %q", i, r.Name, wantSummary[i])
		case strings.HasPrefix(r.Name, "kafka streams"):
			if r.NotRun == "" || r.Runs != 0 {
				t.Errorf("%s: %+v, want not run", r.Name, r)
			}
		case r.Runs != 2 || r.XRaw <= 0 || r.CPUXRaw <= 0:
			t.Errorf("%s: %+v, want 2 runs and ratios to raw", r.Name, r)
		}
	}
	if len(rep.Latency) != 2 {
		t.Fatalf("%d latency phases, want 2", len(rep.Latency))
	}
	for _, l := range rep.Latency {
		if l.Positives < 15 || l.Detected != l.Positives {
			t.Errorf("%s latency: %d of %d matching events detected, want all of about 20", l.Guarantee, l.Detected, l.Positives)
		}
	}
	if rep.State == nil || rep.State.Groups != 300 || rep.State.BytesPerGroup <= 0 {
		t.Errorf("state cost %+v, want 300 groups of positive size", rep.State)
	}
}

func TestPercentile(t *testing.T) {
	d := make([]time.Duration, 100)
	for i := range d {
		d[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name string
		q    float64
		want time.Duration
	}{
		{"p50", 0.5, 50 * time.Millisecond},
		{"p99", 0.99, 99 * time.Millisecond},
		{"max", 1, 100 * time.Millisecond},
		{"min", 0, time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(d, tc.q); got != tc.want {
				t.Errorf("percentile(%g) = %s, want %s", tc.q, got, tc.want)
			}
		})
	}
}

// mixedCorpus is a generated Sysmon stream held in memory, one slice per
// record, for the processor benchmarks.
func mixedCorpus(b *testing.B, format string, n int) [][]byte {
	b.Helper()
	cfg := defaultGenConfig()
	cfg.Format = format
	cfg.Events = n
	g, err := newGenerator(cfg)
	if err != nil {
		b.Fatal(err)
	}
	out := make([][]byte, n)
	var buf []byte
	for i := range out {
		if cap(buf)-len(buf) < 64<<10 {
			buf = make([]byte, 0, 4<<20)
		}
		var rec genRecord
		buf, rec = g.next(buf, i, time.Time{})
		buf = buf[len(buf):]
		out[i] = rec.Value
	}
	return out
}

// BenchmarkProcessorMixed is one partition worker's detection work on one
// core: prefiltered decode, then Process or Advance, over the default mixed
// stream (0.1% matching, 1% ssh, 2% sshd children). The window state starts
// afresh at each pass over the corpus, so the event time only moves forward.
func BenchmarkProcessorMixed(b *testing.B) {
	for _, format := range []string{"sysmon", "cim"} {
		b.Run(format, func(b *testing.B) {
			corpus := mixedCorpus(b, format, 200_000)
			f, _ := decode.ParseFormat(format)
			dec, err := decode.NewDecoder(f)
			if err != nil {
				b.Fatal(err)
			}
			newPart := func() *processor.Partition {
				p, err := processor.NewPartition(processor.DefaultConfig())
				if err != nil {
					b.Fatal(err)
				}
				return p
			}
			part := newPart()
			var (
				ev      processor.Event
				results []processor.Result
				changes []processor.StateChange
				bytesIn int64
			)
			now := time.Now()
			i := 0
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				if i == len(corpus) {
					i = 0
					part = newPart()
				}
				raw := corpus[i]
				i++
				bytesIn += int64(len(raw))
				out, err := dec.Decode(raw, &ev)
				if err != nil {
					b.Fatal(err)
				}
				switch out {
				case decode.OutcomeEvent:
					results = part.Process(&ev, now, results[:0])
				case decode.OutcomeNoMatch:
					results = part.Advance(ev.Time, now, results[:0])
				}
				if i%500 == 0 {
					// A worker drains the state changes once per batch.
					changes = part.DrainChanges(changes[:0])
				}
			}
			secs := time.Since(start).Seconds()
			b.ReportMetric(float64(b.N)/secs, "events/s")
			b.SetBytes(bytesIn / int64(b.N))
		})
	}
}

// benchRuns numbers pipeline runs so that every run has a fresh group, also
// across -count repetitions.
var benchRuns atomic.Int64

// BenchmarkPipelineKfake runs the at-least-once pipeline over 100,000
// preloaded events on an in-process kfake cluster, with a fresh group per
// iteration, and the raw group consumer over the same data beside it.
func BenchmarkPipelineKfake(b *testing.B) {
	const events = 100_000
	ctx := context.Background()
	h, input := loadedHarness(b, "bench", events)
	for _, g := range []consumer.Guarantee{consumer.AtLeastOnce, consumer.ExactlyOnce} {
		b.Run(g.String(), func(b *testing.B) {
			var total time.Duration
			n := 0
			for b.Loop() {
				n++
				h.prefix = "bench-" + g.String() + "-" + strconv.FormatInt(benchRuns.Add(1), 10)
				ph, err := h.pipelinePhase(ctx, input, g, n)
				if err != nil {
					b.Fatal(err)
				}
				if len(h.rep.Failures) > 0 {
					b.Fatal(h.rep.Failures)
				}
				total += time.Duration(ph.Seconds * float64(time.Second))
			}
			b.ReportMetric(float64(events*n)/total.Seconds(), "events/s")
		})
	}
	b.Run("raw", func(b *testing.B) {
		var total time.Duration
		n := 0
		for b.Loop() {
			n++
			ph, err := h.rawPhase(ctx, input, "raw", "bench-raw-"+strconv.FormatInt(benchRuns.Add(1), 10), 1)
			if err != nil {
				b.Fatal(err)
			}
			total += time.Duration(ph.Seconds * float64(time.Second))
		}
		b.ReportMetric(float64(events*n)/total.Seconds(), "events/s")
	})
}

// TestBenchExternalBrokers runs the bench against brokers it did not start
// and checks that it leaves none of its topics behind.
func TestBenchExternalBrokers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kfake cluster and two pipelines")
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	var stdout, stderr bytes.Buffer
	e := cli.Env{Getenv: func(string) string { return "" }, Stdout: &stdout, Stderr: &stderr}
	args := []string{"--brokers", strings.Join(cluster.ListenAddrs(), ","), "--events", "2000", "--hosts", "20",
		"--partitions", "2", "--positive-rate", "0.01", "--rounds", "1", "--latency-rate", "0", "--state-groups", "0"}
	if err := cmdBench(ctx, e, args); err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{"broker external " + cluster.ListenAddrs()[0], "ratio table", "sshlateral exactly-once", " equal",
		"not run (no --peer-jar)"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, stdout.String())
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topics, err := kadm.NewClient(cl).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range topics.Names() {
		if strings.HasPrefix(name, "sshlateral-bench-") {
			t.Errorf("topic %s left behind", name)
		}
	}
}

// TestBenchLatencyOnly checks that a latency-only run describes the stream
// it loaded once, though each guarantee loads it.
func TestBenchLatencyOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kfake cluster and two pipelines")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	var stdout, stderr bytes.Buffer
	e := cli.Env{Getenv: func(string) string { return "" }, Stdout: &stdout, Stderr: &stderr}
	args := []string{"--rate", "4000", "--events", "2000", "--hosts", "20", "--partitions", "2", "--positive-rate", "0.01",
		"--broker-process", "in-process", "--json"}
	if err := cmdBench(ctx, e, args); err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr.String())
	}
	var rep benchReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("output is not the JSON report: %v\n%s", err, stdout.String())
	}
	if len(rep.Latency) != 2 {
		t.Fatalf("%d latency phases, want 2", len(rep.Latency))
	}
	if s := rep.Stream; s.Positives != rep.Latency[0].Positives || s.AvgRecord < 1000 || s.AvgRecord > 2500 {
		t.Errorf("stream %+v: want the %d matching events and about 1.7 KB a record of one load", s, rep.Latency[0].Positives)
	}
}
