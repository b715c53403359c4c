package main

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/sshlateral/sshlateral/cmd/internal/cli"
	"github.com/sshlateral/sshlateral/consumer"
)

// BenchmarkInputKeying runs the pipeline over 1,000,000 preloaded events on
// an in-process kfake cluster with each input keying, and measures from the
// first record consumed until every matching event's EARLY result is out:
// with any, that includes the repartition hop and the matches held until
// every input partition's marker passed them.
func BenchmarkInputKeying(b *testing.B) {
	const events = 1_000_000
	ctx := context.Background()
	h, input := loadedHarness(b, "keying", events)
	positives := int64(h.rep.Stream.Positives)
	for _, g := range []consumer.Guarantee{consumer.AtLeastOnce, consumer.ExactlyOnce} {
		for _, k := range []consumer.InputKeying{consumer.KeyingHost, consumer.KeyingAny} {
			b.Run(g.String()+"/"+k.String(), func(b *testing.B) {
				h.cfg.keying = k
				var total time.Duration
				n := 0
				for b.Loop() {
					n++
					h.prefix = "keying-" + strconv.FormatInt(benchRuns.Add(1), 10)
					cfg, enc, err := h.pipelineConfig("p", input, g)
					if err != nil {
						b.Fatal(err)
					}
					if err := h.ensureTopics(ctx, cfg); err != nil {
						b.Fatal(err)
					}
					rp, err := startPipeline(ctx, cfg, enc)
					if err != nil {
						b.Fatal(err)
					}
					var first time.Time
					for deadline := time.Now().Add(h.cfg.timeout); ; time.Sleep(time.Millisecond) {
						st := rp.p.Stats()
						if st.Consumed > 0 && first.IsZero() {
							first = time.Now()
						}
						if st.Results["EARLY"] >= positives {
							break
						}
						if time.Now().After(deadline) {
							b.Fatalf("%d of %d EARLY results after %s", st.Results["EARLY"], positives, h.cfg.timeout)
						}
					}
					total += time.Since(first)
					if err := rp.stop(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(events*n)/total.Seconds(), "events/s")
			})
		}
	}
}

// loadedHarness starts an in-process kfake cluster and loads a default
// synthetic stream of events into the 12-partition topic input.
func loadedHarness(b *testing.B, prefix string, events int) (h *benchHarness, input string) {
	b.Helper()
	ctx := context.Background()
	broker, err := startKfake(ctx, false)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(broker.stop)
	logger, _ := cli.NewLogger(&bytes.Buffer{}, "text", "error")
	gen := defaultGenConfig()
	gen.Events = events
	h = &benchHarness{cfg: benchConfig{gen: gen, partitions: 12, timeout: 5 * time.Minute, compression: "zstd"},
		brokers: broker.addrs, prefix: prefix, logger: logger, rep: &benchReport{Stream: streamInfo{Events: events}}}
	input = h.prefix + ".input"
	if err := h.createTopic(ctx, input, 12); err != nil {
		b.Fatal(err)
	}
	if _, err := h.load(ctx, input); err != nil {
		b.Fatal(err)
	}
	return h, input
}
