package consumer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/consumer/decode"
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

// Headers of a dead letter whose value or headers were cut to fit.
const (
	HeaderDLQTruncated      = "sshlateral.dlq.truncated"       // "true"
	HeaderDLQOriginalSize   = "sshlateral.dlq.original.size"   // the value's size before truncation
	HeaderDLQHeadersDropped = "sshlateral.dlq.headers.dropped" // the source headers left out
)

// Dead-letter reason codes.
const (
	// DLQReasonDecode: no decoder could read the record.
	DLQReasonDecode = "decode_error"
	// DLQReasonTooLarge: the record exceeds MaxRecordBytes; it is not decoded.
	DLQReasonTooLarge = "record_too_large"
	// DLQReasonFuture: the event time is more than Processor.MaxFuture
	// ahead of the wall clock; it would move no clock, so it is set aside.
	DLQReasonFuture = "future_event_time"
	// DLQReasonUnmapped: the record is in a known format but carries no
	// process field.
	DLQReasonUnmapped = "unmapped"
)

const (
	// maxErrorHeader bounds the error text in a dead letter's header and
	// log line: a decoder message may quote the hostile input it failed on.
	maxErrorHeader = 256
	// maxSourceHeaders and maxSourceHeaderCount bound the source record's
	// headers copied into its dead letter; headerOverhead is what each
	// header costs on the wire besides its key and value.
	maxSourceHeaders     = 8 << 10
	maxSourceHeaderCount = 64
	headerOverhead       = 3
	// dlqHeadroom is kept below the DLQ topic's max.message.bytes for the
	// headers, key and batch overhead of a dead letter.
	dlqHeadroom = 16 << 10
)

// State is where a partition worker is in its life.
type State int32

const (
	// StateRestoring: the worker is reading its window state from the
	// changelog; fetching for its partition is paused. (The zero State is
	// none of these: a PartitionStat made by hand says nothing.)
	StateRestoring State = iota + 1
	// StateRunning: the worker processes records.
	StateRunning
	// StateStopped: the worker has ended (revoked, lost, shut down or failed).
	StateStopped
)

func (s State) String() string {
	switch s {
	case StateRestoring:
		return "restoring"
	case StateRunning:
		return "running"
	case StateStopped:
		return "stopped"
	case 0:
		return "unknown"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// job is a batch of one partition's records (nil: a tick). reply, when set,
// receives the outcome once the batch is handed to the delivery.
type job struct {
	recs      []*kgo.Record
	highWater int64 // -1: unknown (a tick)
	now       time.Time
	// flush writes the coalesced changelog (and, at-least-once, marks the
	// offsets it covers) whatever the interval.
	flush bool
	reply chan<- error
}

// worker owns one input partition: its decoder, its window state and the
// changelog position. Only its own goroutine touches them; others see the
// state and a published snapshot of its counters.
type worker struct {
	// audit is the decoder's auditd count already added to the stats.
	audit decode.AuditStats
	// lastAppend is the append time of the last record read: the arrival
	// of an assembly that completes without a record of its own.
	lastAppend time.Time
	p          *Pipeline
	cl         *kgo.Client
	d          delivery
	tp         tp
	state      atomic.Int32
	jobs       chan job
	quit       chan struct{} // closed by stop: finish the job in hand, then end
	done       chan struct{} // closed when the goroutine has ended
	stopOnce   sync.Once
	// discard: the partition is lost (or its transaction aborted): write
	// nothing more on the way out.
	discard atomic.Bool

	part *processor.Partition
	dec  *decode.Decoder
	// decode is dec.Decode, or dec.DecodeFull without the prefilter.
	decode func(raw []byte, ev *processor.Event) (decode.Outcome, error)
	// skipBelow: records before this offset are already reflected in the
	// restored state (at-least-once can commit offsets after the changelog).
	skipBelow  int64
	nextOffset int64
	highWater  int64
	consumed   int64
	lastEvent  time.Time

	ev      processor.Event
	results []processor.Result
	changes []processor.StateChange

	// The changelog is written once per CommitInterval, not per batch:
	// pending holds each changed key's latest value since the last flush
	// (pendingAt indexes it), unflushed the last input record whose state
	// is not in the changelog yet. Its offset is marked only after the flush.
	pending   []processor.StateChange
	pendingAt map[string]int
	unflushed *kgo.Record
	lastFlush time.Time
	// heldPos is the offset of the first record of the oldest auditd
	// assembly still open at the last flush (-1: none): offsets are
	// committed no further. Read by the exactly-once commit.
	heldPos atomic.Int64
	// replaying: records below skipBelow are being read again to rebuild
	// the assemblies open at the last flush (restoredOpen); the ones that
	// completed before it were applied then and are dropped when the
	// replay ends.
	replaying    bool
	restoredOpen map[string]bool
	openWritten  bool // the last flush stored open assemblies

	// With InputKeying any, split is stage 1's progress (it matches and
	// re-keys instead of windowing) and merge stage 2's view of stage 1
	// (repartition.go); both nil otherwise.
	split *splitState
	merge *mergeState
}

// batch is what one job produced, handed to the delivery as a whole.
type batch struct {
	risk        []*kgo.Record
	deadLetters []*kgo.Record
	reasons     []string // parallel to deadLetters
	changelog   []*kgo.Record
	last        *kgo.Record // the last input record, nil on a tick
}

func (p *Pipeline) newWorker(cl *kgo.Client, d delivery, partition int32) *worker {
	w := &worker{
		p:         p,
		cl:        cl,
		d:         d,
		tp:        tp{p.cfg.InputTopic, partition},
		jobs:      make(chan job, 4),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
		highWater: -1,
	}
	switch p.stage {
	case stageSplit:
		w.split = newSplitState(p, partition)
	case stageMerge:
		w.merge = newMergeState(p)
	}
	w.state.Store(int32(StateRestoring))
	w.heldPos.Store(-1)
	w.publishStats()
	return w
}

func (w *worker) State() State { return State(w.state.Load()) }

func (w *worker) setState(s State) {
	w.state.Store(int32(s))
	w.publishStats()
}

// stop asks the worker to end after the job in hand.
func (w *worker) stop() { w.stopOnce.Do(func() { close(w.quit) }) }

// run is the worker's life: restore, then process jobs until stopped or the
// first failure. hard ends in-flight writes at the shutdown deadline.
func (w *worker) run(hard context.Context) {
	defer close(w.done)
	defer w.setState(StateStopped)
	ctx, cancel := context.WithCancel(hard)
	defer cancel()
	defer func() {
		if w.part != nil {
			w.part.Release() // its bytes leave the process budget
		}
	}()
	go func() {
		// A stop during the restore ends the restore; a stop while
		// running lets the job in hand finish (the loop checks quit).
		select {
		case <-w.quit:
			if w.State() == StateRestoring {
				cancel()
			}
		case <-ctx.Done():
		}
	}()
	if err := w.restore(ctx); err != nil {
		if ctx.Err() == nil {
			w.p.fail(err)
		}
		return
	}
	w.setState(StateRunning)
	w.cl.ResumeFetchPartitions(map[string][]int32{w.tp.topic: {w.tp.partition}})

	var tick <-chan time.Time
	if w.p.cfg.Guarantee == AtLeastOnce {
		// Exactly-once ticks come as jobs, inside a transaction.
		t := time.NewTicker(w.p.cfg.TickInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		var j job
		select {
		case <-w.quit:
			// At-least-once leaves the partition's state and offset
			// durable for the next owner. Exactly-once does not: a revoke
			// aborts the open transaction anyway, and a write from inside
			// the group's callback could wait on the session behind it.
			if !w.discard.Load() && w.p.cfg.Guarantee == AtLeastOnce && (w.unflushed != nil || len(w.pending) > 0) {
				if err := w.handle(ctx, job{flush: true, highWater: -1}); err != nil {
					w.p.fail(err)
				}
			}
			return
		case <-w.p.failed:
			return
		case j = <-w.jobs:
		case now := <-tick:
			j = job{now: now, highWater: -1}
		}
		err := w.handle(ctx, j)
		if j.reply != nil {
			j.reply <- err
		}
		if err != nil {
			// Nothing of this job is marked, and the worker takes no
			// other: the partition's committed offset stays before it.
			w.p.fail(err)
			return
		}
	}
}

// restore rebuilds the partition's window state from the changelog.
func (w *worker) restore(ctx context.Context) error {
	st, err := w.p.restore(ctx, w.tp.partition)
	if err != nil {
		return err
	}
	part, err := processor.NewPartition(w.p.cfg.Processor)
	if err != nil {
		return fmt.Errorf("partition %d state: %w", w.tp.partition, err)
	}
	for _, c := range st.changes {
		if w.merge != nil && isRepartitionKey(c.Key) {
			if err := w.merge.restore(c); err != nil {
				return fmt.Errorf("restore changelog topic %s partition %d: %w", w.p.cfg.ChangelogTopic, w.tp.partition, err)
			}
			continue
		}
		if err := part.Restore(c); err != nil {
			return fmt.Errorf("restore changelog topic %s partition %d: %w", w.p.cfg.ChangelogTopic, w.tp.partition, err)
		}
	}
	var opts []decode.Option
	if w.p.cfg.EnvelopeField != "" {
		opts = append(opts, decode.WithEnvelopeField(w.p.cfg.EnvelopeField))
	}
	dec, err := decode.NewDecoder(w.p.cfg.Format, opts...)
	if err != nil {
		return err
	}
	w.part, w.dec, w.skipBelow = part, dec, st.nextOffset
	// Stage 2 reads repartitioned records, never raw auditd lines.
	w.replaying, w.restoredOpen = dec.Assembles() && w.merge == nil && st.nextOffset > 0, st.openAssembled
	w.decode = dec.DecodeFull
	if w.p.cfg.Prefilter {
		w.decode = dec.Decode
	}
	// The replayed changes are already in the changelog.
	w.changes = part.DrainChanges(w.changes[:0])
	w.lastFlush = time.Now()
	w.p.cfg.Logger.Info("partition restored", "topic", w.tp.topic, "partition", w.tp.partition,
		"restored_entries", len(st.changes), "resume_offset", st.nextOffset)
	return nil
}

// handle runs one job and hands its output to the delivery. Any error is
// fatal to the worker: the job's records are not marked, and neither is
// anything after them.
func (w *worker) handle(ctx context.Context, j job) error {
	start := time.Now()
	if j.now.IsZero() {
		j.now = start
	}
	if j.highWater >= 0 {
		w.highWater = j.highWater
	}
	if w.nextOffset == 0 && len(j.recs) > 0 {
		// Lag is visible before the first batch is done.
		w.nextOffset = j.recs[0].Offset
	}
	b, err := w.step(j.recs, j.now)
	if err != nil {
		return err
	}
	if j.flush || (w.p.cfg.Guarantee == AtLeastOnce && j.now.Sub(w.lastFlush) >= w.p.cfg.CommitInterval) {
		if w.split != nil {
			// Stage 1: the offsets this flush commits carry their
			// progress marker with them.
			b.risk = w.split.appendMarkers(b.risk, j.now)
		}
		b.changelog, b.last = w.flushChangelog(), w.unflushed
		w.heldPos.Store(-1)
		w.p.held.Delete(w.tp.partition)
		if pos, ok := w.dec.HeldFrom(); ok {
			w.heldPos.Store(pos)
			w.p.held.Store(w.tp.partition, pos)
			if b.last != nil && pos <= b.last.Offset {
				// Mark up to just before the open assembly's first record.
				b.last = &kgo.Record{Topic: b.last.Topic, Partition: b.last.Partition, Offset: pos - 1, LeaderEpoch: b.last.LeaderEpoch}
			}
		}
		w.unflushed, w.lastFlush = nil, j.now
	}
	if err := w.d.deliver(ctx, w, b); err != nil {
		return fmt.Errorf("input topic %s partition %d offset %d: %w", w.tp.topic, w.tp.partition, w.nextOffset-1, err)
	}
	w.publishStats()
	if obs := w.p.cfg.ObserveBatch; obs != nil && len(j.recs) > 0 {
		obs(time.Since(start), len(j.recs))
	}
	return nil
}

// step runs the detection over recs (nil on a tick) and returns the records
// to produce: risk records and dead letters, then changelog records.
func (w *worker) step(recs []*kgo.Record, now time.Time) (*batch, error) {
	b := &batch{}
	w.results = w.results[:0]
	var n stepCounts
	for _, r := range recs {
		w.nextOffset = r.Offset + 1
		w.consumed++
		w.lastAppend = r.Timestamp
		if r.Offset < w.skipBelow {
			// Already reflected in the restored state. Only a decoder
			// that assembles events over several records (auditd) reads
			// it again, to rebuild an assembly left open at the offset
			// committed; what completes here was applied before.
			if w.replaying && len(r.Value) <= w.p.cfg.MaxRecordBytes {
				w.dec.SetPosition(r.Offset)
				_, _ = w.decode(r.Value, &w.ev)
				for { // completed then, applied then
					if _, ok, _ := w.dec.Ready(&w.ev); !ok {
						break
					}
				}
			}
			if w.replaying && r.Offset+1 >= w.skipBelow {
				w.endReplay()
			}
			continue
		}
		w.lastEvent = now
		if w.merge != nil {
			// Stage 2: a match or progress marker from stage 1.
			n.events += w.merge.apply(w, r, now, b)
			continue
		}
		if len(r.Value) > w.p.cfg.MaxRecordBytes {
			b.deadLetter(w.deadLetter(r, DLQReasonTooLarge,
				fmt.Errorf("record of %d bytes exceeds MaxRecordBytes (%d)", len(r.Value), w.p.cfg.MaxRecordBytes)), DLQReasonTooLarge)
			continue
		}
		if w.replaying {
			w.endReplay()
		}
		w.dec.SetPosition(r.Offset)
		outcome, derr := w.decode(r.Value, &w.ev)
		w.apply(b, r, outcome, derr, now, &n)
		if w.dec.Assembles() {
			// Assemblies the stream's time completed while decoding r.
			w.drainReady(b, now, &n)
		}
	}
	if w.split != nil && now.Sub(w.split.lastMarker) >= w.p.cfg.CommitInterval {
		b.risk = w.split.appendMarkers(b.risk, now)
	}
	if len(recs) == 0 {
		if w.merge != nil {
			w.merge.tick(w, now)
		}
		// A tick: assemblies that waited too long complete now (not
		// while replaying: those were applied before).
		if w.dec.Assembles() && !w.replaying && w.dec.Expire(now) > 0 {
			w.drainReady(b, now, &n)
		}
		w.results = w.part.Tick(now, w.results)
	} else {
		w.unflushed = recs[len(recs)-1]
	}
	w.p.stats.consumed.Add(int64(len(recs)))
	w.p.stats.events.Add(n.events)
	w.p.stats.prefiltered.Add(n.prefiltered)
	// Results count before the allowlist (sshlateral_results_total).
	w.p.stats.countResults(w.results)
	w.suppress()
	if len(w.results) > 0 {
		var err error
		b.risk, err = w.p.enc.Records(w.results, b.risk)
		if err != nil {
			return nil, fmt.Errorf("encode risk records for topic %s partition %d offset %d: %w", w.tp.topic, w.tp.partition, w.nextOffset-1, err)
		}
	}
	w.collectChanges()
	return b, nil
}

type stepCounts struct{ events, prefiltered int64 }

// apply gives one decoded outcome to the partition, or dead-letters r with
// the reason. r is the record that completed the event (for an assembly
// completed on a tick, a value-less stand-in at the last offset read).
func (w *worker) apply(b *batch, r *kgo.Record, outcome decode.Outcome, derr error, now time.Time, n *stepCounts) {
	if derr == nil && (outcome == decode.OutcomeEvent || outcome == decode.OutcomeNoMatch) {
		derr = processor.CheckEventTime(w.ev.Time, now, w.p.cfg.Processor.MaxFuture)
	}
	if derr != nil {
		reason := DLQReasonDecode
		switch {
		case errors.Is(derr, processor.ErrFutureEventTime):
			reason = DLQReasonFuture
		case errors.Is(derr, decode.ErrUnmapped):
			reason = DLQReasonUnmapped
		}
		b.deadLetter(w.deadLetter(r, reason, derr), reason)
		return
	}
	// The event is accepted by the wall clock (CheckEventTime above: a
	// shipper's clock behind the host's must not lose a true positive),
	// but the partition clock is bounded by the append time, so that an
	// event dated ahead of its append time closes no other host's windows
	// (ProcessArrived).
	arrival := arrivalOf(r, now)
	switch outcome {
	case decode.OutcomeEvent:
		n.events++
		if w.split != nil {
			w.split.event(r, &w.ev, raisedArrival(arrival, w.ev.Time, now), b) // stage 1: re-key a match
		} else {
			w.results = w.part.ProcessArrived(&w.ev, arrival, now, w.results)
		}
	case decode.OutcomeNoMatch:
		n.prefiltered++
		if w.split != nil {
			w.split.progress(w.ev.Time, raisedArrival(arrival, w.ev.Time, now))
		} else {
			w.results = w.part.AdvanceArrived(w.ev.Time, arrival, now, w.results)
		}
	case decode.OutcomeSkip:
		w.p.stats.countSkip(w.dec.LastSkipReason())
	case decode.OutcomePending:
	}
}

// drainReady applies the assemblies Expire completed.
func (w *worker) drainReady(b *batch, now time.Time, n *stepCounts) {
	at := &kgo.Record{Topic: w.tp.topic, Partition: w.tp.partition, Offset: w.nextOffset - 1, Timestamp: w.lastAppend}
	for {
		outcome, ok, derr := w.dec.Ready(&w.ev)
		if !ok {
			break
		}
		w.apply(b, at, outcome, derr, now, n)
	}
}

// endReplay keeps, of the assemblies the replay rebuilt, those open at the
// last flush.
func (w *worker) endReplay() {
	w.dec.KeepOnly(w.restoredOpen)
	w.replaying = false
}

// raisedArrival is arrival, raised to the event time t (at most now): the
// repartition path carries one time per match, which stage 2 checks the
// event against and bounds its clock by, so a shipper's clock behind the
// host's must not make the match a future event there. (Host-keyed
// partitions keep the two apart: Partition.ProcessArrived.)
func raisedArrival(arrival, t, now time.Time) time.Time {
	switch {
	case !arrival.Before(t):
		return arrival
	case now.Before(t):
		return now
	}
	return t
}

// arrivalOf is r's arrival for the partition clock: its append time, never
// later than now, so that a backlog read at once does not look like live
// data.
func arrivalOf(r *kgo.Record, now time.Time) time.Time {
	if !r.Timestamp.IsZero() && r.Timestamp.Before(now) {
		return r.Timestamp
	}
	return now
}

func (b *batch) deadLetter(r *kgo.Record, reason string) {
	b.deadLetters = append(b.deadLetters, r)
	b.reasons = append(b.reasons, reason)
}

// collectChanges moves the partition's state changes into pending, keeping
// each key's latest value only.
func (w *worker) collectChanges() {
	// Drained even without a changelog, so the changes do not pile up.
	w.changes = w.part.DrainChanges(w.changes[:0])
	if w.merge != nil {
		w.changes = w.merge.drainChanges(w.changes)
	}
	if w.p.cfg.DisableChangelog {
		return
	}
	if w.pendingAt == nil {
		w.pendingAt = map[string]int{}
	}
	for _, c := range w.changes {
		if i, ok := w.pendingAt[string(c.Key)]; ok {
			w.pending[i] = c
			continue
		}
		w.pendingAt[string(c.Key)] = len(w.pending)
		w.pending = append(w.pending, c)
	}
}

// flushChangelog turns the pending changes into records for the changelog
// partition of the same number, then the resume offset, last: records of
// one partition are acknowledged in order, so a stored offset implies the
// state before it.
func (w *worker) flushChangelog() []*kgo.Record {
	if w.p.cfg.DisableChangelog || (len(w.pending) == 0 && w.unflushed == nil) {
		return nil
	}
	recs := make([]*kgo.Record, 0, len(w.pending)+1)
	for _, c := range w.pending {
		recs = append(recs, &kgo.Record{Topic: w.p.cfg.ChangelogTopic, Partition: w.tp.partition, Key: c.Key, Value: c.Value})
	}
	if w.dec.Assembles() {
		// The assemblies open now, so that a restart drops the ones it
		// rebuilds but had applied (see endReplay).
		if ids := strings.Join(w.dec.OpenAssemblies(), "\n"); ids != "" || w.openWritten {
			recs = append(recs, &kgo.Record{Topic: w.p.cfg.ChangelogTopic, Partition: w.tp.partition,
				Key: []byte(openAssembliesKey), Value: []byte(ids)})
			w.openWritten = ids != ""
		}
	}
	if w.unflushed != nil {
		recs = append(recs, &kgo.Record{Topic: w.p.cfg.ChangelogTopic, Partition: w.tp.partition,
			// Never below the restored offset: the state already reflects
			// everything before it, even while those records are replayed.
			Key: []byte(offsetKey), Value: encodeOffset(max(w.nextOffset, w.skipBelow))})
	}
	clear(w.pendingAt)
	w.pending = w.pending[:0]
	return recs
}

// deadLetter builds the dead letter of r, its value cut to the DLQ bound;
// it is counted and logged only once the broker has it.
func (w *worker) deadLetter(r *kgo.Record, reason string, cause error) *kgo.Record {
	return buildDeadLetter(w.p.cfg.DLQTopic, r, reason, cause.Error(), w.p.dlqMax)
}

// buildDeadLetter returns the dead letter of r with at most maxValue bytes
// of its value and a bounded share of its headers, saying in headers what
// was cut.
func buildDeadLetter(topic string, r *kgo.Record, reason, cause string, maxValue int) *kgo.Record {
	headers := make([]kgo.RecordHeader, 0, len(r.Headers)+8)
	headers = append(headers,
		kgo.RecordHeader{Key: HeaderDLQReason, Value: []byte(reason)},
		kgo.RecordHeader{Key: HeaderDLQError, Value: []byte(truncateText(cause, maxErrorHeader))},
		kgo.RecordHeader{Key: HeaderSourceTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: HeaderSourcePart, Value: []byte(strconv.FormatInt(int64(r.Partition), 10))},
		kgo.RecordHeader{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
	)
	value, key := r.Value, r.Key
	if len(value) > maxValue {
		headers = append(headers,
			kgo.RecordHeader{Key: HeaderDLQTruncated, Value: []byte("true")},
			kgo.RecordHeader{Key: HeaderDLQOriginalSize, Value: []byte(strconv.Itoa(len(value)))})
		value = value[:maxValue]
	}
	if len(key) > maxErrorHeader {
		key = key[:maxErrorHeader]
	}
	// Each header costs its framing too: count it, and their number.
	size := 0
	for _, h := range r.Headers {
		size += len(h.Key) + len(h.Value) + headerOverhead
	}
	if size <= maxSourceHeaders && len(r.Headers) <= maxSourceHeaderCount {
		headers = append(headers, r.Headers...)
	} else {
		headers = append(headers, kgo.RecordHeader{Key: HeaderDLQHeadersDropped, Value: []byte(strconv.Itoa(len(r.Headers)))})
	}
	return &kgo.Record{Topic: topic, Key: key, Value: value, Headers: headers}
}

// truncateText cuts s to at most n bytes on a rune boundary, marking the cut.
func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…(truncated)"
	return processor.CutUTF8(s, n-len(mark)) + mark
}

// acknowledged counts and logs what the broker now has.
func (w *worker) acknowledged(b *batch) {
	w.p.stats.written.Add(int64(len(b.risk)))
	for i, r := range b.deadLetters {
		w.p.stats.countDeadLetter(b.reasons[i])
		w.p.logs.warn("dlq", "record dead-lettered", "topic", w.tp.topic, "partition", w.tp.partition,
			"offset", headerValue(r, HeaderSourceOffset), "reason", b.reasons[i], "err", headerValue(r, HeaderDLQError))
	}
}

func headerValue(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
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
		w.p.stats.countSuppressed(rule)
		w.p.logs.info("suppressed", "result suppressed by allowlist", "rule", rule, "alert_id", r.AlertID,
			"dest", r.Key.Dest, "user", r.Key.User, "emission", r.Emission.String(), "topic", w.tp.topic, "partition", w.tp.partition)
	}
	w.results = kept
}

func (w *worker) publishStats() {
	if w.dec != nil && w.dec.Assembles() {
		cur := w.dec.AuditStats()
		w.p.stats.addAuditd(decode.AuditStats{EOE: cur.EOE - w.audit.EOE, TimedOut: cur.TimedOut - w.audit.TimedOut, Evicted: cur.Evicted - w.audit.Evicted})
		w.audit = cur
	}
	ps := PartitionStat{
		Topic:      w.tp.topic,
		Partition:  w.tp.partition,
		State:      w.State(),
		Consumed:   w.consumed,
		NextOffset: w.nextOffset,
		HighWater:  w.highWater,
		LastEvent:  w.lastEvent,
	}
	if w.part != nil {
		st := w.part.Stats()
		ps.Watermark = w.part.Watermark()
		ps.OpenGroups, ps.OpenWindows = st.OpenGroups, st.OpenWindows
		ps.Hosts, ps.StateBytes, ps.Ignored = st.Hosts, st.StateBytes, st.Ignored
	}
	w.p.stats.setPartition(w.tp, ps)
}

var errStopped = errors.New("partition worker stopped")
