package consumer

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/processor"
)

// TestInputKeyingAnyMatchesHost: the synthetic positives, keyed by host
// and read with InputKeying host, and the same lines with no key spread
// round-robin over the partitions and read with InputKeying any, give the
// same committed risk records, in both guarantees.
func TestInputKeyingAnyMatchesHost(t *testing.T) {
	lines := sampleLines(t)
	const partitions = 3
	closer := []byte(`{"_time":"2026-11-03T12:00:00Z","dest":"closer","process_name":"true","process":"/usr/bin/true"}`)
	run := func(t *testing.T, keying InputKeying, guarantee Guarantee, want int64) []string {
		c, err := kfake.NewCluster(kfake.Ports(0), kfake.DefaultNumPartitions(partitions))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		cfg := testConfig(c.ListenAddrs())
		cfg.InputKeying, cfg.Guarantee = keying, guarantee
		cfg.Processor.Emit = processor.EmitFinal
		cfg.TransactionTimeout = 3 * time.Second
		opts := []kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}
		if keying == KeyingAny {
			// No key, round-robin: a host's events spread over every partition.
			opts = append(opts, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		full := cfg.WithDefaults()
		topics := []string{full.InputTopic, full.OutputTopic, full.DLQTopic, full.ChangelogTopic}
		if keying == KeyingAny {
			topics = append(topics, full.RepartitionTopic)
		}
		if _, err := kadm.NewClient(cl).CreateTopics(context.Background(), partitions, 1, nil, topics...); err != nil {
			t.Fatal(err)
		}
		recs := make([]*kgo.Record, 0, len(lines)+partitions)
		for _, l := range lines {
			r := &kgo.Record{Topic: cfg.InputTopic, Value: l}
			if keying == KeyingHost {
				r.Key = []byte("one host-keyed partition")
			}
			recs = append(recs, r)
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		// Closers last, one per partition: they close every window.
		recs = recs[:0]
		for p := range int32(partitions) {
			recs = append(recs, &kgo.Record{Topic: cfg.InputTopic, Partition: p, Value: closer})
		}
		cl.Close()
		if cl, err = kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner())); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		st := runUntil(t, cfg, func(s Stats) bool {
			return s.Consumed >= int64(len(lines)+partitions) && s.Results["FINAL"] > 0 &&
				(want == 0 || s.RecordsWritten >= want)
		})
		t.Logf("%s: %+v", keying, st)
		if keying == KeyingAny && st.Repartitioned == 0 {
			t.Errorf("nothing repartitioned: %+v", st)
		}
		if st.Results["LATE"] != 0 {
			t.Errorf("%d LATE results", st.Results["LATE"])
		}
		return outputRecords(t, cfg.Brokers, cfg.OutputTopic)
	}
	for _, g := range []Guarantee{AtLeastOnce, ExactlyOnce} {
		t.Run(g.String(), func(t *testing.T) {
			want := run(t, KeyingHost, g, 0)
			got := run(t, KeyingAny, g, int64(len(want)))
			if len(want) != 48 { // testdata/synthetic/positives.expected.json: 24 rows, two records each
				t.Fatalf("host: %d risk records, want 48", len(want))
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("any: %d risk records, host: %d; differ:\n%s", len(got), len(want), diffLines(want, got))
			}
		})
	}
}

// diffLines lists the lines of a missing from b and of b missing from a.
func diffLines(a, b []string) string {
	count := map[string]int{}
	for _, s := range a {
		count[s]++
	}
	for _, s := range b {
		count[s]--
	}
	var out []string
	for s, n := range count {
		if n != 0 {
			out = append(out, fmt.Sprintf("%+d %q", n, s[:min(len(s), 120)]))
		}
	}
	return strings.Join(out, "\n")
}
