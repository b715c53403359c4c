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
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sshlateral/sshlateral/processor"
)

// offsetKey is the changelog key under which a worker stores the next input
// offset its state reflects. Window-state keys come from the processor and
// never start with this prefix.
const offsetKey = "sshlateral/consumer/next-offset"

// openAssembliesKey holds the ids of the auditd assemblies open at a flush,
// newline-separated (decode.Decoder.OpenAssemblies).
const openAssembliesKey = "sshlateral/consumer/open-assemblies"

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
// yet). It applies committed data only, so that exactly-once state and
// committed offsets always agree: it reads every record and control
// record up to the high watermark taken at start (read_uncommitted), holds
// each transaction's records until its marker says commit or abort, and
// drops those of a transaction still open at that point. Reading to an
// exact offset, not to a quiet span, a slow broker delays the restore and
// never shortens it.
func (p *Pipeline) restore(ctx context.Context, part int32) (restoredState, error) {
	if p.cfg.DisableChangelog {
		return restoredState{}, nil
	}
	parts := []int32{part}
	offsets := map[int32]kgo.Offset{}
	for _, part := range parts {
		offsets[part] = kgo.NewOffset().AtStart()
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(p.cfg.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{p.cfg.ChangelogTopic: offsets}),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		// Transaction markers come back as control records: they decide
		// the records held, and the end offset is reached exactly.
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(100 * time.Millisecond),
	}, p.cfg.ClientOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return restoredState{}, fmt.Errorf("changelog client: %w", err)
	}
	defer cl.Close()

	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, p.cfg.ChangelogTopic)
	if err != nil {
		return restoredState{}, fmt.Errorf("list end offsets of changelog topic %s: %w", p.cfg.ChangelogTopic, err)
	}
	if err := ends.Error(); err != nil {
		return restoredState{}, fmt.Errorf("list end offsets of changelog topic %s: %w", p.cfg.ChangelogTopic, err)
	}
	// Records below the log start are gone (deleted, or a changelog
	// created with delete instead of compact): nothing to wait for there.
	starts, err := adm.ListStartOffsets(ctx, p.cfg.ChangelogTopic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return restoredState{}, fmt.Errorf("list start offsets of changelog topic %s: %w", p.cfg.ChangelogTopic, err)
	}

	latest := map[int32]map[string][]byte{}
	pending := map[int32]int64{} // partition -> end offset still to reach
	for _, part := range parts {
		latest[part] = map[string][]byte{}
		end, ok := ends.Lookup(p.cfg.ChangelogTopic, part)
		if !ok {
			return restoredState{}, fmt.Errorf("changelog topic %s has no partition %d: it must have as many partitions as input topic %s", p.cfg.ChangelogTopic, part, p.cfg.InputTopic)
		}
		if start, ok := starts.Lookup(p.cfg.ChangelogTopic, part); end.Offset > 0 && (!ok || start.Offset < end.Offset) {
			pending[part] = end.Offset
		}
	}
	apply := func(r *kgo.Record) {
		if r.Value == nil {
			delete(latest[r.Partition], string(r.Key))
		} else {
			latest[r.Partition][string(r.Key)] = r.Value
		}
	}
	// held: records of transactions whose marker is not read yet, by
	// producer id (a producer has one open transaction at a time).
	held := map[int64][]*kgo.Record{}
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
			end, ok := pending[r.Partition]
			if !ok {
				return
			}
			if r.Offset+1 >= end {
				delete(pending, r.Partition) // at the end, or past it after a gap
			}
			if r.Offset >= end {
				return // written after the start of the restore
			}
			switch {
			case r.Attrs.IsControl():
				var key kmsg.ControlRecordKey
				if key.ReadFrom(r.Key) == nil && key.Type == kmsg.ControlRecordKeyTypeCommit {
					for _, h := range held[r.ProducerID] {
						apply(h)
					}
				}
				delete(held, r.ProducerID) // committed, or aborted: dropped
			case r.Attrs.IsTransactional():
				held[r.ProducerID] = append(held[r.ProducerID], r)
			default:
				apply(r)
			}
		})
	}
	// What is still held belongs to transactions open at the end: not
	// committed (yet), so not state.
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
