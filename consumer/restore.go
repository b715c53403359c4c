package consumer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/processor"
)

// offsetKey is the changelog key under which a worker stores the next input
// offset its state reflects. Window-state keys come from the processor and
// never start with this prefix.
const offsetKey = "sshlateral/consumer/next-offset"

// openAssembliesKey holds the ids of the auditd assemblies open at a flush,
// newline-separated (decode.Decoder.OpenAssemblies).
const openAssembliesKey = "sshlateral/consumer/open-assemblies"

// restoreQuiet is how long an exactly-once restore waits without data
// before it takes an aborted tail for the end (see restore).
const restoreQuiet = 1500 * time.Millisecond

func encodeOffset(o int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(o))
}

type restoredState struct {
	changes       []processor.StateChange
	nextOffset    int64
	openAssembled map[string]bool
}

// restore reads changelog partition part from the start to its current end
// and returns the latest value of every key (compaction may not have run
// yet). In exactly-once mode it reads committed data only, so state and
// committed offsets always agree.
func (p *Pipeline) restore(ctx context.Context, part int32) (restoredState, error) {
	if p.cfg.DisableChangelog {
		return restoredState{}, nil
	}
	parts := []int32{part}
	isolation := kgo.ReadUncommitted()
	if p.cfg.Guarantee == ExactlyOnce {
		isolation = kgo.ReadCommitted()
	}
	offsets := map[int32]kgo.Offset{}
	for _, part := range parts {
		offsets[part] = kgo.NewOffset().AtStart()
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(p.cfg.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{p.cfg.ChangelogTopic: offsets}),
		kgo.FetchIsolationLevel(isolation),
		// Transaction markers come back as control records, so the end
		// offset is reached exactly instead of waiting out empty polls.
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(100 * time.Millisecond),
	}, p.cfg.ClientOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return restoredState{}, fmt.Errorf("changelog client: %w", err)
	}
	defer cl.Close()

	adm := kadm.NewClient(cl)
	var ends kadm.ListedOffsets
	if p.cfg.Guarantee == ExactlyOnce {
		ends, err = adm.ListCommittedOffsets(ctx, p.cfg.ChangelogTopic)
	} else {
		ends, err = adm.ListEndOffsets(ctx, p.cfg.ChangelogTopic)
	}
	if err != nil {
		return restoredState{}, fmt.Errorf("list end offsets of changelog topic %s: %w", p.cfg.ChangelogTopic, err)
	}
	if err := ends.Error(); err != nil {
		return restoredState{}, fmt.Errorf("list end offsets of changelog topic %s: %w", p.cfg.ChangelogTopic, err)
	}

	latest := map[int32]map[string][]byte{}
	pending := map[int32]int64{} // partition -> end offset still to reach
	for _, part := range parts {
		latest[part] = map[string][]byte{}
		end, ok := ends.Lookup(p.cfg.ChangelogTopic, part)
		if !ok {
			return restoredState{}, fmt.Errorf("changelog topic %s has no partition %d: it must have as many partitions as input topic %s", p.cfg.ChangelogTopic, part, p.cfg.InputTopic)
		}
		if end.Offset > 0 {
			pending[part] = end.Offset
		}
	}
	// Markers arrive as control records, so the end offset is normally
	// reached exactly. Only a tail of aborted records can hide it (not every
	// broker returns the abort marker to a read_committed reader): then a
	// partition is done once polls come back empty for restoreQuiet after
	// its data stopped. A restore runs after every aborted transaction, so
	// the span is short; a leader move longer than it during an
	// exactly-once restore can still end the restore early.
	lastData := time.Now()
	for len(pending) > 0 {
		pollCtx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fetches := cl.PollFetches(pollCtx)
		cancel()
		if err := ctx.Err(); err != nil {
			return restoredState{}, fmt.Errorf("restore changelog topic %s: %w", p.cfg.ChangelogTopic, err)
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				p.stats.countKafkaError("fetch")
				p.logs.warn("changelog-fetch", "changelog fetch error", "topic", topic, "partition", partition, "err", err)
			}
		})
		fetches.EachRecord(func(r *kgo.Record) {
			lastData = time.Now()
			if end, ok := pending[r.Partition]; ok && r.Offset+1 >= end {
				delete(pending, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			if r.Value == nil {
				delete(latest[r.Partition], string(r.Key))
			} else {
				latest[r.Partition][string(r.Key)] = r.Value
			}
		})
		// At-least-once changelogs carry no markers: an empty poll there
		// means the broker is catching up, so keep waiting (ctx bounds it).
		if p.cfg.Guarantee == ExactlyOnce && time.Since(lastData) >= restoreQuiet {
			break
		}
	}
	st := restoredState{}
	for k, v := range latest[part] {
		if k == offsetKey {
			if len(v) == 8 {
				st.nextOffset = int64(binary.BigEndian.Uint64(v))
			}
			continue
		}
		if k == openAssembliesKey {
			st.openAssembled = map[string]bool{}
			for _, id := range strings.Split(string(v), "\n") {
				if id != "" {
					st.openAssembled[id] = true
				}
			}
			continue
		}
		st.changes = append(st.changes, processor.StateChange{Key: []byte(k), Value: v})
	}
	return st, nil
}
