package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/sshlateral/sshlateral/cmd/internal/kafkaclient"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestRunOnKfake runs `sshlateral run` against an in-process kfake cluster
// with the bundled sample: /readyz turns ready once partitions are owned,
// /metrics counters move with the input (consumed, written, dead-lettered),
// and SIGINT-style cancellation shuts it down cleanly.
func TestRunOnKfake(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	brokers := strings.Join(cluster.ListenAddrs(), ",")
	httpAddr := freeAddr(t)
	base := "http://" + httpAddr

	ctx, cancel := context.WithCancel(context.Background())
	logs, err := os.CreateTemp(t.TempDir(), "run.log")
	if err != nil {
		t.Fatal(err)
	}
	logText := func() string { b, _ := os.ReadFile(logs.Name()); return string(b) }
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"run", "--brokers", brokers, "--create-topics", "--partitions", "3",
			"--http-addr", httpAddr, "--idle-close", "1s", "--log-level", "warn"},
			func(string) string { return "" }, strings.NewReader(""), io.Discard, logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("run did not stop")
		}
	})

	waitStatus := func(path string, want int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := http.Get(base + path)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == want {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never answered %d (last: %v)\nlogs:\n%s", path, want, err, logText())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitStatus("/healthz", http.StatusOK)
	waitStatus("/readyz", http.StatusOK)
	before := scrapeMetrics(t, base)
	if v := before["sshlateral_consumed_records_total"]; v != 0 {
		t.Fatalf("consumed %v records before any input", v)
	}

	produced := produceSample(t, cluster.ListenAddrs(), "endpoint.processes")
	var after map[string]float64
	deadline := time.Now().Add(30 * time.Second)
	for {
		after = scrapeMetrics(t, base)
		results := after[`sshlateral_results_total{emission="EARLY"}`] + after[`sshlateral_results_total{emission="FINAL"}`]
		// Results are counted when made, risk records once acknowledged.
		if after["sshlateral_consumed_records_total"] == float64(produced) &&
			after[`sshlateral_results_total{emission="FINAL"}`] > 0 &&
			after["sshlateral_risk_records_written_total"] == 2*results &&
			after[`sshlateral_dead_lettered_records_total{reason="decode_error"}`] > 0 { // counted once acknowledged
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics did not move to %d consumed records, FINAL results and two risk records per result: %v\nlogs:\n%s", produced, after, logText())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if v := after[`sshlateral_dead_lettered_records_total{reason="decode_error"}`]; v != 1 {
		t.Errorf("dead-lettered %v, want the sample's one malformed line", v)
	}
	if v := after["sshlateral_assigned_partitions"]; v != 3 {
		t.Errorf("assigned partitions %v, want 3", v)
	}
}

// produceSample produces the bundled sample to topic as replay does.
func produceSample(t *testing.T, brokers []string, topic string) int64 {
	t.Helper()
	ctx := context.Background()
	cl, err := kafkaclient.NewConfig(brokers).NewClient(ctx, kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	lr := lineReader{stdin: bytes.NewReader(sampleEvents), max: defaultMaxRecordBytes}
	n, err := produceLines(ctx, cl, topic, lr.each, []string{"-"}, replayOptions{}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// scrapeMetrics reads /metrics with the Prometheus text parser; keys are
// name{label="value",...}, labels sorted.
func scrapeMetrics(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Untyped != nil:
				out[key] = m.GetUntyped().GetValue()
			}
		}
	}
	return out
}
