package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
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
	var logs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"run", "--brokers", brokers, "--create-topics", "--partitions", "3",
			"--http-addr", httpAddr, "--idle-close", "1s", "--log-level", "warn"},
			func(string) string { return "" }, strings.NewReader(""), io.Discard, &logs)
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
				t.Fatalf("%s never answered %d (last: %v)\nlogs:\n%s", path, want, err, logs.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitStatus("/healthz", http.StatusOK)
	waitStatus("/readyz", http.StatusOK)
	before := scrape(t, base)
	if v := before["sshlateral_consumed_records_total"]; v != 0 {
		t.Fatalf("consumed %v records before any input", v)
	}

	produced, err := produceFile(ctx, cluster.ListenAddrs(), "endpoint.processes", bytes.NewReader(sampleEvents), replayOptions{}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var after map[string]float64
	deadline := time.Now().Add(30 * time.Second)
	for {
		after = scrape(t, base)
		results := after[`sshlateral_results_total{emission="EARLY"}`] + after[`sshlateral_results_total{emission="FINAL"}`]
		// Results are counted when made, risk records once acknowledged.
		if after["sshlateral_consumed_records_total"] == float64(produced) &&
			after[`sshlateral_results_total{emission="FINAL"}`] > 0 &&
			after["sshlateral_risk_records_written_total"] == 2*results {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics did not move to %d consumed records, FINAL results and two risk records per result: %v\nlogs:\n%s", produced, after, logs.String())
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
