package httpserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/cmd/sshlateral/internal/metrics"
	"github.com/sshlateral/sshlateral/consumer"
)

// fakePipeline is a metrics.PipelineStats whose numbers the test moves.
type fakePipeline struct {
	mu       sync.Mutex
	stats    consumer.Stats
	parts    []consumer.PartitionStat
	notReady string
}

func (f *fakePipeline) NotReady() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.notReady
}

func (f *fakePipeline) Stats() consumer.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

func (f *fakePipeline) Partitions() []consumer.PartitionStat {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]consumer.PartitionStat(nil), f.parts...)
}

func (f *fakePipeline) set(st consumer.Stats, parts ...consumer.PartitionStat) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats, f.parts = st, parts
}

type fakeAllowlist struct {
	rules       int
	loads, fail int64
	last        time.Time
}

func (f fakeAllowlist) RuleCount() int                { return f.rules }
func (f fakeAllowlist) ReloadCounts() (int64, int64)  { return f.loads, f.fail }
func (f fakeAllowlist) LastSuccess() (last time.Time) { return f.last }

var testNow = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// startTestOps serves the operations endpoint on 127.0.0.1 and returns its
// base URL and readiness.
func startTestOps(t *testing.T, src metrics.PipelineStats, opts metrics.Options, maxLag int64, pprofOn bool) (string, *Readiness) {
	t.Helper()
	opts.Now = func() time.Time { return testNow }
	reg, err := metrics.NewRegistry(src, opts)
	if err != nil {
		t.Fatal(err)
	}
	ready := &Readiness{Src: src, MaxLag: maxLag}
	logger, _ := testLogger(t)
	srv, err := Start("127.0.0.1:0", NewHandler(reg, ready, Options{Pprof: pprofOn}), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return "http://" + srv.Addr().String(), ready
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// scrape returns every sample of /metrics, keyed by name{labels} as
// exposed (labels sorted by name, a histogram's le last).
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	code, body := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: status %d", code)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return samples
}

func wantSamples(t *testing.T, got map[string]float64, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("missing sample %s", k)
			continue
		}
		if g != v {
			t.Errorf("%s = %v, want %v", k, g, v)
		}
	}
}

func TestMetricsEndpoint(t *testing.T) {
	src := &fakePipeline{}
	src.set(consumer.Stats{})
	allow := fakeAllowlist{rules: 3, loads: 2, fail: 1, last: testNow.Add(-time.Minute)}
	build := metrics.BuildInfo{Version: "v1.2.3", Commit: "0123abc", GoVersion: "go1.26.0"}
	base, _ := startTestOps(t, src, metrics.Options{Allowlist: allow, Build: build}, 100, false)

	before := scrape(t, base)
	wantSamples(t, before, map[string]float64{
		`sshlateral_build_info{commit="0123abc",goversion="go1.26.0",version="v1.2.3"}`: 1,
		"sshlateral_consumed_records_total":                                             0,
		"sshlateral_results_total{emission=\"LATE\"}":                                   0,
		"sshlateral_results_total{emission=\"EARLY\"}":                                  0,
		"sshlateral_assigned_partitions":                                                0,
		"sshlateral_allowlist_rules":                                                    3,
		"sshlateral_allowlist_loads_total{result=\"success\"}":                          2,
		"sshlateral_allowlist_loads_total{result=\"failure\"}":                          1,
		"sshlateral_allowlist_last_success_timestamp_seconds":                           float64(testNow.Add(-time.Minute).Unix()),
	})
	if _, ok := before["go_goroutines"]; !ok {
		t.Error("Go runtime metrics missing")
	}

	src.set(consumer.Stats{
		Consumed: 1200, Events: 300, Prefiltered: 800,
		Skipped:        map[string]int64{"not_process_event": 100},
		DeadLettered:   map[string]int64{consumer.DLQReasonDecode: 4},
		Results:        map[string]int64{"EARLY": 5, "FINAL": 2, "LATE": 1},
		Suppressed:     map[string]int64{"ansible": 3},
		RecordsWritten: 16, Rebalances: 2, CommitFailures: 1, Aborts: 6,
		KafkaErrors:        map[string]int64{"connection": 3, "fetch": 2},
		DeadLetterFailures: 1, SessionRestarts: 2, Repartitioned: 5, RepartitionDuplicates: 1,
	},
		consumer.PartitionStat{Topic: "in", Partition: 0, State: consumer.StateRunning, Consumed: 700, NextOffset: 700, HighWater: 750,
			Watermark: testNow.Add(-90 * time.Second), OpenGroups: 4, OpenWindows: 2, LastEvent: testNow.Add(-time.Second),
			StateBytes: 4096, Ignored: 7},
		consumer.PartitionStat{Topic: "in", Partition: 1, State: consumer.StateRestoring, Consumed: 500, NextOffset: 900, HighWater: 800},
	)
	after := scrape(t, base)
	wantSamples(t, after, map[string]float64{
		"sshlateral_consumed_records_total":                                                1200,
		"sshlateral_events_total":                                                          300,
		"sshlateral_prefiltered_events_total":                                              800,
		"sshlateral_skipped_records_total{reason=\"not_process_event\"}":                   100,
		"sshlateral_dead_lettered_records_total{reason=\"decode_error\"}":                  4,
		"sshlateral_results_total{emission=\"EARLY\"}":                                     5,
		"sshlateral_results_total{emission=\"FINAL\"}":                                     2,
		"sshlateral_results_total{emission=\"LATE\"}":                                      1,
		"sshlateral_suppressed_results_total{rule=\"ansible\"}":                            3,
		"sshlateral_risk_records_written_total":                                            16,
		"sshlateral_rebalances_total":                                                      2,
		"sshlateral_commit_failures_total":                                                 1,
		"sshlateral_transaction_aborts_total":                                              6,
		"sshlateral_assigned_partitions":                                                   2,
		"sshlateral_kafka_errors_total{kind=\"connection\"}":                               3,
		"sshlateral_kafka_errors_total{kind=\"fetch\"}":                                    2,
		"sshlateral_dead_letter_failures_total":                                            1,
		"sshlateral_session_restarts_total":                                                2,
		"sshlateral_repartitioned_matches_total":                                           5,
		"sshlateral_repartition_duplicates_total":                                          1,
		"sshlateral_partition_state_bytes{partition=\"0\",topic=\"in\"}":                   4096,
		"sshlateral_partition_ignored_events_total{partition=\"0\",topic=\"in\"}":          7,
		"sshlateral_partition_restoring{partition=\"0\",topic=\"in\"}":                     0,
		"sshlateral_partition_restoring{partition=\"1\",topic=\"in\"}":                     1,
		"sshlateral_partition_consumed_records_total{partition=\"0\",topic=\"in\"}":        700,
		"sshlateral_partition_consumed_records_total{partition=\"1\",topic=\"in\"}":        500,
		"sshlateral_partition_lag_records{partition=\"0\",topic=\"in\"}":                   50,
		"sshlateral_partition_lag_records{partition=\"1\",topic=\"in\"}":                   0, // high watermark of an older fetch
		"sshlateral_partition_open_groups{partition=\"0\",topic=\"in\"}":                   4,
		"sshlateral_partition_open_windows{partition=\"0\",topic=\"in\"}":                  2,
		"sshlateral_partition_event_time_lag_seconds{partition=\"0\",topic=\"in\"}":        90,
		"sshlateral_partition_watermark_timestamp_seconds{partition=\"0\",topic=\"in\"}":   float64(testNow.Add(-90 * time.Second).Unix()),
		"sshlateral_partition_last_record_timestamp_seconds{partition=\"0\",topic=\"in\"}": float64(testNow.Add(-time.Second).Unix()),
	})
	// A partition without events has no watermark to report.
	if _, ok := after["sshlateral_partition_event_time_lag_seconds{partition=\"1\",topic=\"in\"}"]; ok {
		t.Error("event-time lag exported for a partition without a watermark")
	}
}

func TestKafkaLatencyHooks(t *testing.T) {
	lat := metrics.NewKafkaLatency("in", func() time.Time { return testNow })
	base, _ := startTestOps(t, &fakePipeline{}, metrics.Options{Latency: lat}, 100, false)

	lat.OnFetchRecordUnbuffered(&kgo.Record{Topic: "in", Timestamp: testNow.Add(-3 * time.Second)}, true)
	lat.OnFetchRecordUnbuffered(&kgo.Record{Topic: "in", Timestamp: testNow.Add(-1 * time.Second)}, true)
	lat.OnFetchRecordUnbuffered(&kgo.Record{Topic: "in", Timestamp: testNow.Add(-9 * time.Second)}, false)       // not polled
	lat.OnFetchRecordUnbuffered(&kgo.Record{Topic: "changelog", Timestamp: testNow.Add(-9 * time.Second)}, true) // restore
	lat.OnProduceRecordUnbuffered(&kgo.Record{Topic: "out", Timestamp: testNow.Add(-20 * time.Millisecond)}, nil)
	lat.OnProduceRecordUnbuffered(&kgo.Record{Topic: "out", Timestamp: testNow.Add(-time.Second)}, io.EOF) // failed
	lat.ObserveBatch(3*time.Millisecond, 500)

	wantSamples(t, scrape(t, base), map[string]float64{
		"sshlateral_input_record_age_seconds_count":                             2,
		"sshlateral_input_record_age_seconds_sum":                               4,
		"sshlateral_input_record_age_seconds_bucket{le=\"1\"}":                  1,
		"sshlateral_input_record_age_seconds_bucket{le=\"5\"}":                  2,
		"sshlateral_produce_latency_seconds_count{topic=\"out\"}":               1,
		"sshlateral_produce_latency_seconds_bucket{topic=\"out\",le=\"0.01\"}":  0,
		"sshlateral_produce_latency_seconds_bucket{topic=\"out\",le=\"0.025\"}": 1,
		"sshlateral_batch_duration_seconds_count":                               1,
		"sshlateral_batch_duration_seconds_bucket{le=\"0.002\"}":                0,
		"sshlateral_batch_duration_seconds_bucket{le=\"0.004\"}":                1,
	})
}

func TestReadyz(t *testing.T) {
	src := &fakePipeline{}
	base, ready := startTestOps(t, src, metrics.Options{}, 100, false)
	caughtUp := consumer.PartitionStat{Topic: "in", Partition: 0, NextOffset: 1000, HighWater: 1050}
	lagging := consumer.PartitionStat{Topic: "in", Partition: 1, NextOffset: 1000, HighWater: 1101}
	restoring := consumer.PartitionStat{Topic: "in", Partition: 2, State: consumer.StateRestoring}
	steps := []struct {
		name     string
		parts    []consumer.PartitionStat
		notReady string
		draining bool
		code     int
		reason   string
	}{
		{"brokers unreachable", nil, "cannot reach brokers 127.0.0.1:9: dial tcp", false, http.StatusServiceUnavailable, "cannot reach brokers"},
		{"topic missing", nil, "missing topics: sshlateral.dlq", false, http.StatusServiceUnavailable, "missing topics: sshlateral.dlq"},
		{"no partition assigned", nil, "", false, http.StatusServiceUnavailable, "no input partition assigned"},
		{"restoring", []consumer.PartitionStat{caughtUp, restoring}, "", false, http.StatusServiceUnavailable, "1 of 2 partitions restoring"},
		{"assigned and caught up", []consumer.PartitionStat{caughtUp}, "", false, http.StatusOK, ""},
		{"one partition lagging", []consumer.PartitionStat{caughtUp, lagging}, "", false, http.StatusServiceUnavailable, "1 of 2 partitions lag more than 100"},
		{"lag at the bound", []consumer.PartitionStat{caughtUp, {Topic: "in", Partition: 1, NextOffset: 1000, HighWater: 1100}}, "", false, http.StatusOK, ""},
		{"shutting down", []consumer.PartitionStat{caughtUp}, "", true, http.StatusServiceUnavailable, "shutting down"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			src.set(consumer.Stats{}, s.parts...)
			src.mu.Lock()
			src.notReady = s.notReady
			src.mu.Unlock()
			ready.Draining.Store(s.draining)
			code, body := get(t, base+"/readyz")
			if code != s.code {
				t.Fatalf("status %d, want %d: %s", code, s.code, body)
			}
			var rep readyReport
			if err := json.Unmarshal([]byte(body), &rep); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if rep.Ready != (s.code == http.StatusOK) || !strings.Contains(rep.Reason, s.reason) || len(rep.Partitions) != len(s.parts) {
				t.Fatalf("report %+v, want reason containing %q and %d partitions", rep, s.reason, len(s.parts))
			}
		})
	}
}

func TestHealthzAndPprof(t *testing.T) {
	for _, pprofOn := range []bool{false, true} {
		t.Run("pprof="+strconv.FormatBool(pprofOn), func(t *testing.T) {
			base, _ := startTestOps(t, &fakePipeline{}, metrics.Options{}, 100, pprofOn)
			if code, body := get(t, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
				t.Fatalf("/healthz: %d %q", code, body)
			}
			want := http.StatusNotFound
			if pprofOn {
				want = http.StatusOK
			}
			if code, _ := get(t, base+"/debug/pprof/"); code != want {
				t.Fatalf("/debug/pprof/: status %d, want %d", code, want)
			}
		})
	}
}

func TestStartOpsServerBadAddr(t *testing.T) {
	logger, _ := testLogger(t)
	_, err := Start("127.0.0.1:99999", http.NewServeMux(), logger)
	if err == nil || !strings.Contains(err.Error(), "--http-addr") {
		t.Fatalf("error %v, want one naming --http-addr", err)
	}
}

// testLogger logs JSON into a buffer the test can read.
func testLogger(t *testing.T) (*slog.Logger, *bytes.Buffer) {
	t.Helper()
	buf := &bytes.Buffer{}
	return slog.New(slog.NewJSONHandler(buf, nil)), buf
}
