package consumer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sshlateral/sshlateral/processor"
)

// testCluster is a kfake cluster with the pipeline's topics.
type testCluster struct {
	seeds []string
	adm   *kadm.Client
	kfake *kfake.Cluster // closed at the end of the test (Close is idempotent)
}

func newTestCluster(t *testing.T, partitions int32, topics ...string) testCluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.Ports(0), kfake.DefaultNumPartitions(int(partitions)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopics(context.Background(), partitions, 1, nil, topics...); err != nil {
		t.Fatal(err)
	}
	return testCluster{seeds: c.ListenAddrs(), adm: adm, kfake: c}
}

func testConfig(seeds []string) Config {
	cfg := DefaultConfig()
	cfg.Brokers = seeds
	cfg.Processor.IdleClose = 0
	cfg.TickInterval = 50 * time.Millisecond
	cfg.SessionTimeout = 6 * time.Second
	cfg.HeartbeatInterval = time.Second
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return cfg
}

func topicsOf(cfg Config) []string {
	return []string{cfg.InputTopic, cfg.OutputTopic, cfg.DLQTopic, cfg.Group + ".state-changelog"}
}

func produceValues(t *testing.T, seeds []string, topic string, values ...[]byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Key: []byte("host"), Value: v}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// runUntil runs a pipeline until cond holds (or 30s), then stops it and
// returns its stats.
func runUntil(t *testing.T, cfg Config, cond func(Stats) bool) Stats {
	t.Helper()
	p := newPipeline(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for !cond(p.Stats()) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	return p.Stats()
}

func sampleLines(t *testing.T) [][]byte {
	t.Helper()
	raw, err := os.ReadFile("../testdata/synthetic/positives.log")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Split(bytes.TrimSpace(raw), []byte("\n"))
}

// TestPrefilterOption: Config.Prefilter decides whether non-matching
// process events are decoded fully; results do not change.
func TestPrefilterOption(t *testing.T) {
	lines := sampleLines(t)
	for _, tc := range []struct {
		name      string
		prefilter bool
	}{
		{"prefilter on", true},
		{"prefilter off", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(nil)
			cl := newTestCluster(t, 1, topicsOf(cfg)...)
			cfg.Brokers = cl.seeds
			cfg.Prefilter = tc.prefilter
			cfg.Processor.Emit = processor.EmitEarly
			produceValues(t, cl.seeds, cfg.InputTopic, lines...)
			st := runUntil(t, cfg, func(s Stats) bool { return s.Consumed >= int64(len(lines)) })
			if st.Consumed != int64(len(lines)) {
				t.Fatalf("consumed %d of %d", st.Consumed, len(lines))
			}
			if tc.prefilter && st.Prefiltered == 0 {
				t.Errorf("prefilter on: nothing prefiltered (events %d)", st.Events)
			}
			if !tc.prefilter && st.Prefiltered != 0 {
				t.Errorf("prefilter off: %d records prefiltered, want 0", st.Prefiltered)
			}
			if st.Results["EARLY"] == 0 {
				t.Errorf("no EARLY results: %+v", st.Results)
			}
		})
	}
}

// outputRecords reads topic from the start, read_committed, until quiet.
func outputRecords(t *testing.T, seeds []string, topic string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []string
	for quiet := 0; quiet < 5; {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			out = append(out, string(r.Key)+"/"+string(r.Value))
		})
		if n == 0 {
			quiet++
		}
	}
	sort.Strings(out)
	return out
}

// TestExactlyOnceUnknownOutcome: the broker never answers one EndTxn (the
// transaction's outcome is unknown to the client). The pipeline replaces
// its session in-process instead of returning, rebuilds state from the
// changelog, and its committed output equals a run without the failure:
// nothing lost, nothing twice.
func TestExactlyOnceUnknownOutcome(t *testing.T) {
	lines := sampleLines(t)
	run := func(t *testing.T, inject bool) ([]string, Stats) {
		cfg := testConfig(nil)
		c, err := kfake.NewCluster(kfake.Ports(0), kfake.DefaultNumPartitions(2))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		cfg.Brokers = c.ListenAddrs()
		cfg.Guarantee = ExactlyOnce
		cfg.TransactionTimeout = 3 * time.Second
		cfg.Processor.Emit = processor.EmitEarly
		cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if _, err := kadm.NewClient(cl).CreateTopics(context.Background(), 2, 1, nil, topicsOf(cfg)...); err != nil {
			t.Fatal(err)
		}
		var failed atomic.Bool
		if inject {
			c.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
				if r := req.(*kmsg.EndTxnRequest); !r.Commit || failed.Swap(true) {
					return nil, nil, false
				}
				// Never answered: End times out with the outcome unknown.
				return nil, nil, true
			})
		}
		produceValues(t, cfg.Brokers, cfg.InputTopic, lines...)
		st := runUntil(t, cfg, func(s Stats) bool {
			return s.Consumed >= int64(len(lines)) && (!inject || s.SessionRestarts > 0) && s.RecordsWritten > 0
		})
		if inject && !failed.Load() {
			t.Fatal("no EndTxn was failed")
		}
		// Let the last transaction commit before reading.
		return outputRecords(t, cfg.Brokers, cfg.OutputTopic), st
	}
	want, _ := run(t, false)
	got, st := run(t, true)
	t.Logf("stats: %+v", st)
	if st.SessionRestarts != 1 {
		t.Errorf("session restarts %d, want 1", st.SessionRestarts)
	}
	if len(want) == 0 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("committed output after an unknown outcome: %d records, want the %d of a clean run", len(got), len(want))
	}
}

// TestUnreachableBrokersAreVisible: with no broker answering, Run does not
// stay silent: NotReady names the brokers and the error, and the error is
// counted by kind; cancelling still ends Run promptly.
func TestUnreachableBrokersAreVisible(t *testing.T) {
	cfg := testConfig([]string{"127.0.0.1:1"})
	p := newPipeline(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for p.Stats().KafkaErrors["connection"] == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	why := p.NotReady()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	if p.Stats().KafkaErrors["connection"] == 0 || !strings.Contains(why, "cannot reach brokers 127.0.0.1:1") {
		t.Fatalf("not ready %q, kafka errors %v; want the unreachable brokers named and counted", why, p.Stats().KafkaErrors)
	}
}

// suppressAll is an allowlist that suppresses every result.
type suppressAll struct{}

func (suppressAll) Suppress(*processor.Result) (string, bool) { return "all", true }

// TestResultsCountedBeforeAllowlist: sshlateral_results_total counts
// matches before the allowlist (as its help says), so suppressed results
// still show there, and in suppressed_results_total.
func TestResultsCountedBeforeAllowlist(t *testing.T) {
	lines := sampleLines(t)
	cfg := testConfig(nil)
	cl := newTestCluster(t, 1, topicsOf(cfg)...)
	cfg.Brokers = cl.seeds
	cfg.Processor.Emit = processor.EmitEarly
	cfg.Suppressor = suppressAll{}
	produceValues(t, cl.seeds, cfg.InputTopic, lines...)
	st := runUntil(t, cfg, func(s Stats) bool { return s.Consumed >= int64(len(lines)) })
	if st.Consumed != int64(len(lines)) {
		t.Fatalf("consumed %d of %d", st.Consumed, len(lines))
	}
	var results int64
	for _, n := range st.Results {
		results += n
	}
	suppressed := st.Suppressed["all"]
	if results == 0 || results != suppressed {
		t.Errorf("results %v, suppressed %d: want every suppressed result counted as a result too", st.Results, suppressed)
	}
	if st.RecordsWritten != 0 {
		t.Errorf("%d risk records written with every result suppressed", st.RecordsWritten)
	}
}

// TestBrokerLostAfterStartIsVisible: the broker goes away while the
// pipeline runs; failed connections are counted (kafka_errors "connect")
// and logged, rate-limited, instead of the client retrying in silence.
func TestBrokerLostAfterStartIsVisible(t *testing.T) {
	cfg := testConfig(nil)
	c := newTestCluster(t, 1, topicsOf(cfg)...)
	cfg.Brokers = c.seeds
	logFile, err := os.CreateTemp(t.TempDir(), "log") // concurrent writes are safe
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cfg.Logger = slog.New(slog.NewTextHandler(logFile, nil))
	p := newPipeline(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for p.NotReady() != "" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if why := p.NotReady(); why != "" {
		t.Fatalf("not ready: %s", why)
	}
	c.kfake.Close()
	for p.Stats().KafkaErrors["connect"] == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	if p.Stats().KafkaErrors["connect"] == 0 {
		t.Fatalf("kafka errors %v after the broker went away; want connect errors counted", p.Stats().KafkaErrors)
	}
	if logged, _ := os.ReadFile(logFile.Name()); !strings.Contains(string(logged), "cannot connect to broker") {
		t.Errorf("no connection failure logged:\n%s", logged)
	}
}
