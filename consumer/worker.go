package consumer

import (
	"github.com/sshlateral/sshlateral/consumer/decode"

	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/processor"
)

// Dead-letter headers: the reason code, the decoder's message and where the
// record came from.
const (
	HeaderDLQReason    = "sshlateral.dlq.reason"
	HeaderDLQError     = "sshlateral.dlq.error"
	HeaderSourceTopic  = "sshlateral.source.topic"
	HeaderSourcePart   = "sshlateral.source.partition"
	HeaderSourceOffset = "sshlateral.source.offset"
)

// DLQReasonDecode is the reason code of a record no decoder could read.
const DLQReasonDecode = "decode_error"

// worker owns one input partition: its decoder, its window state and the
// changelog position. Only its own goroutine touches them.
type worker struct {
	p       *Pipeline
	cl      *kgo.Client
	tp      tp
	part    *processor.Partition
	dec     *decode.Decoder
	batches chan kgo.FetchTopicPartition
	quit    chan struct{}
	done    chan struct{}

	// skipBelow: records before this offset are already reflected in the
	// restored state (at-least-once can commit offsets after the changelog).
	skipBelow  int64
	nextOffset int64
	highWater  int64
	consumed   int64
	lastEvent  time.Time

	// exactly-once: the poll loop hands batches and collects records.
	jobs chan eosJob

	ev      processor.Event
	results []processor.Result
	changes []processor.StateChange
}

func (p *Pipeline) newWorker(cl *kgo.Client, partition int32, st restoredState) (*worker, error) {
	part, err := processor.NewPartition(p.cfg.Processor)
	if err != nil {
		return nil, fmt.Errorf("partition %d state: %w", partition, err)
	}
	for _, c := range st.changes {
		if err := part.Restore(c); err != nil {
			return nil, fmt.Errorf("restore changelog topic %s partition %d: %w", p.cfg.ChangelogTopic, partition, err)
		}
	}
	dec, err := decode.NewDecoder(p.cfg.Format)
	if err != nil {
		return nil, err
	}
	w := &worker{
		p:         p,
		cl:        cl,
		tp:        tp{p.cfg.InputTopic, partition},
		part:      part,
		dec:       dec,
		batches:   make(chan kgo.FetchTopicPartition, 4),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
		jobs:      make(chan eosJob),
		skipBelow: st.nextOffset,
	}
	// Restoring may itself have produced nothing to emit, but the changes
	// replayed must not be written back.
	w.changes = part.DrainChanges(w.changes[:0])
	w.publishStats()
	return w, nil
}

func (w *worker) runAtLeastOnce() {
	defer close(w.done)
	tick := time.NewTicker(w.p.cfg.TickInterval)
	defer tick.Stop()
	for {
		select {
		case <-w.quit:
			return
		case ftp := <-w.batches:
			w.highWater = ftp.HighWatermark
			if w.nextOffset == 0 && len(ftp.Records) > 0 {
				// Lag is visible before the first batch is done.
				w.nextOffset = ftp.Records[0].Offset
				w.publishStats()
			}
			w.handleAtLeastOnce(ftp.Records)
		case <-tick.C:
			w.handleAtLeastOnce(nil)
		}
	}
}

// handleAtLeastOnce processes a batch (or a tick), waits until the broker has
// every output and dead letter, then the changelog, then marks the offsets.
// Outputs go first: a crash in between repeats outputs (harmless, same
// alert ids) rather than losing them.
func (w *worker) handleAtLeastOnce(recs []*kgo.Record) {
	start := time.Now()
	out, changelog, err := w.step(recs, start)
	if err != nil {
		w.p.fail(err)
		return
	}
	ctx := context.Background()
	if err := w.produce(ctx, out); err != nil {
		w.p.fail(err)
		return
	}
	if err := w.produce(ctx, changelog); err != nil {
		w.p.fail(err)
		return
	}
	if len(recs) > 0 {
		w.cl.MarkCommitRecords(recs[len(recs)-1])
	}
	w.publishStats()
	w.observe(start, len(recs))
}

func (w *worker) observe(start time.Time, records int) {
	if obs := w.p.cfg.ObserveBatch; obs != nil && records > 0 {
		obs(time.Since(start), records)
	}
}

func (w *worker) produce(ctx context.Context, recs []*kgo.Record) error {
	if len(recs) == 0 {
		return nil
	}
	results := w.cl.ProduceSync(ctx, recs...)
	for _, r := range results {
		if r.Err != nil {
			return fmt.Errorf("produce to topic %s for input topic %s partition %d: %w", r.Record.Topic, w.tp.topic, w.tp.partition, r.Err)
		}
	}
	w.countWritten(recs)
	return nil
}

func (w *worker) countWritten(recs []*kgo.Record) {
	var n int64
	for _, r := range recs {
		if r.Topic == w.p.cfg.OutputTopic {
			n++
		}
	}
	w.p.stats.written.Add(n)
}

// step runs the detection over recs (nil on a tick) and returns the records
// to produce: risk records and dead letters, then changelog records.
func (w *worker) step(recs []*kgo.Record, now time.Time) (out, changelog []*kgo.Record, err error) {
	w.results = w.results[:0]
	var events, prefiltered int64
	for _, r := range recs {
		w.nextOffset = r.Offset + 1
		w.consumed++
		if r.Offset < w.skipBelow {
			continue
		}
		w.lastEvent = now
		outcome, derr := w.dec.Decode(r.Value, &w.ev)
		if derr != nil {
			out = append(out, w.deadLetter(r, DLQReasonDecode, derr))
			continue
		}
		switch outcome {
		case decode.OutcomeEvent:
			events++
			w.results = w.part.Process(&w.ev, now, w.results)
		case decode.OutcomeNoMatch:
			prefiltered++
			w.results = w.part.Advance(w.ev.Time, now, w.results)
		case decode.OutcomeSkip:
			w.countSkip(w.dec.LastSkipReason())
		}
	}
	if len(recs) == 0 {
		w.results = w.part.Tick(now, w.results)
	}
	w.p.stats.consumed.Add(int64(len(recs)))
	w.p.stats.events.Add(events)
	w.p.stats.prefiltered.Add(prefiltered)
	w.suppress()
	if len(w.results) > 0 {
		w.countResults()
		out, err = w.p.enc.Records(w.results, out)
		if err != nil {
			return nil, nil, fmt.Errorf("encode risk records for topic %s partition %d offset %d: %w", w.tp.topic, w.tp.partition, w.nextOffset-1, err)
		}
	}
	changelog = w.changelogRecords(len(recs) > 0)
	return out, changelog, nil
}

// changelogRecords turns the state changes into records for the changelog
// partition of the same number, then the resume offset, last: records of
// one partition are acknowledged in order, so a stored offset implies the
// state before it.
func (w *worker) changelogRecords(advanced bool) []*kgo.Record {
	// Drained even without a changelog, so the changes do not pile up.
	w.changes = w.part.DrainChanges(w.changes[:0])
	if w.p.cfg.DisableChangelog || len(w.changes) == 0 {
		return nil
	}
	recs := make([]*kgo.Record, 0, len(w.changes)+1)
	for _, c := range w.changes {
		recs = append(recs, &kgo.Record{Topic: w.p.cfg.ChangelogTopic, Partition: w.tp.partition, Key: c.Key, Value: c.Value})
	}
	if advanced {
		recs = append(recs, &kgo.Record{Topic: w.p.cfg.ChangelogTopic, Partition: w.tp.partition,
			Key: []byte(offsetKey), Value: encodeOffset(w.nextOffset)})
	}
	return recs
}

func (w *worker) deadLetter(r *kgo.Record, reason string, cause error) *kgo.Record {
	w.p.stats.mu.Lock()
	w.p.stats.deadLettered[reason]++
	w.p.stats.mu.Unlock()
	w.p.cfg.Logger.Warn("record dead-lettered", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset,
		"reason", reason, "err", cause)
	headers := make([]kgo.RecordHeader, 0, len(r.Headers)+5)
	headers = append(headers,
		kgo.RecordHeader{Key: HeaderDLQReason, Value: []byte(reason)},
		kgo.RecordHeader{Key: HeaderDLQError, Value: []byte(cause.Error())},
		kgo.RecordHeader{Key: HeaderSourceTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: HeaderSourcePart, Value: []byte(strconv.FormatInt(int64(r.Partition), 10))},
		kgo.RecordHeader{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
	)
	headers = append(headers, r.Headers...)
	return &kgo.Record{Topic: w.p.cfg.DLQTopic, Key: r.Key, Value: r.Value, Headers: headers}
}

// suppress drops allowlisted results in place, counting and logging each
// with the rule that matched.
func (w *worker) suppress() {
	s := w.p.cfg.Suppressor
	if s == nil || len(w.results) == 0 {
		return
	}
	kept := w.results[:0]
	for i := range w.results {
		r := &w.results[i]
		rule, ok := s.Suppress(r)
		if !ok {
			kept = append(kept, *r)
			continue
		}
		w.p.stats.mu.Lock()
		w.p.stats.suppressed[rule]++
		w.p.stats.mu.Unlock()
		w.p.cfg.Logger.Info("result suppressed by allowlist", "rule", rule, "alert_id", r.AlertID,
			"dest", r.Key.Dest, "user", r.Key.User, "emission", r.Emission.String(), "topic", w.tp.topic, "partition", w.tp.partition)
	}
	w.results = kept
}

func (w *worker) countSkip(reason string) {
	w.p.stats.mu.Lock()
	w.p.stats.skipped[reason]++
	w.p.stats.mu.Unlock()
}

func (w *worker) countResults() {
	w.p.stats.mu.Lock()
	for i := range w.results {
		w.p.stats.results[w.results[i].Emission.String()]++
	}
	w.p.stats.mu.Unlock()
}

func (w *worker) publishStats() {
	ps := w.part.Stats()
	w.p.stats.mu.Lock()
	w.p.stats.partitions[w.tp] = PartitionStat{
		Topic:       w.tp.topic,
		Partition:   w.tp.partition,
		Consumed:    w.consumed,
		NextOffset:  w.nextOffset,
		HighWater:   w.highWater,
		Watermark:   w.part.Watermark(),
		OpenGroups:  ps.OpenGroups,
		OpenWindows: ps.OpenWindows,
		LastEvent:   w.lastEvent,
	}
	w.p.stats.mu.Unlock()
}

var errStopped = errors.New("partition worker stopped")
