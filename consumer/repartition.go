package consumer

import (
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/processor"
)

// InputKeying says how the input topic is keyed (docs/repartition.md).
type InputKeying uint8

const (
	// KeyingHost: every event of a host is in one input partition (the
	// input is keyed by host); windows run on the input partitions.
	KeyingHost InputKeying = iota
	// KeyingAny: any keying, or none (round-robin shippers). Stage 1
	// matches on every input partition and writes the matches, keyed by
	// host, with progress markers to RepartitionTopic; stage 2 windows
	// them there.
	KeyingAny
)

// ParseInputKeying parses "host" or "any", in any case.
func ParseInputKeying(s string) (InputKeying, error) {
	switch strings.ToLower(s) {
	case "host":
		return KeyingHost, nil
	case "any":
		return KeyingAny, nil
	}
	return 0, fmt.Errorf("unknown input keying %q (want host or any)", s)
}

func (k InputKeying) String() string {
	if k == KeyingAny {
		return "any"
	}
	return "host"
}

// Set parses s into k, so that *InputKeying is a flag.Value.
func (k *InputKeying) Set(s string) error {
	v, err := ParseInputKeying(s)
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// stage is the part a pipeline plays.
type stage uint8

const (
	stageWhole stage = iota // InputKeying host: windows on the input
	stageSplit              // stage 1: match and re-key the input
	stageMerge              // stage 2: windows on the repartition topic
)

// stage1Suffix names stage 1's consumer group (and transactional id).
const stage1Suffix = "-stage1"

// splitStages turns p into stage 2 and gives it its stage-1 pipeline. Both
// configs derive from p's validated one: stage 1 is its own consumer group
// over the input, writing the repartition topic, with no window state;
// stage 2 is the windowed pipeline over the repartition topic.
func (p *Pipeline) splitStages() {
	c1 := p.cfg
	c1.Group += stage1Suffix
	c1.OutputTopic = p.cfg.RepartitionTopic
	c1.DisableChangelog, c1.ChangelogTopic = true, ""
	c1.Suppressor = nil
	if c1.TransactionalID != "" {
		c1.TransactionalID += stage1Suffix
	}
	c1.Processor.Budget = nil // stage 1 keeps no windows
	// Markers go out with each flush (once per CommitInterval); ticks
	// bring the last one of a burst without waiting for more input.
	c1.TickInterval = min(c1.TickInterval, c1.CommitInterval)
	p.split = pipelineOf(c1, p.enc)
	p.split.stage = stageSplit
	p.stage = stageMerge
	p.cfg.InputTopic = p.cfg.RepartitionTopic
}

// repartitionOutput is the repartition topic for stage 1, "" otherwise.
func (p *Pipeline) repartitionOutput() string {
	if p.stage == stageSplit {
		return p.cfg.OutputTopic
	}
	return ""
}

// runStages runs stage 1 and stage 2 until ctx ends or either fails; a
// failure of one stops the other gracefully.
func (p *Pipeline) runStages(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, sp := range []*Pipeline{p.split, p} {
		wg.Go(func() {
			defer cancel()
			if err := sp.run(ctx); err != nil {
				errs[i] = fmt.Errorf("stage %d: %w", i+1, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// mergeStageStats is the view of both stages as one pipeline: input
// counts from stage 1, results from stage 2, failures from both.
func mergeStageStats(s1, s2 Stats) Stats {
	out := s2
	out.Consumed, out.Events, out.Prefiltered, out.Skipped = s1.Consumed, s1.Events, s1.Prefiltered, s1.Skipped
	out.Repartitioned = s1.RecordsWritten
	out.DeadLettered = sumMaps(s1.DeadLettered, s2.DeadLettered)
	out.KafkaErrors = sumMaps(s1.KafkaErrors, s2.KafkaErrors)
	out.Rebalances += s1.Rebalances
	out.CommitFailures += s1.CommitFailures
	out.Aborts += s1.Aborts
	out.DeadLetterFailures += s1.DeadLetterFailures
	out.SessionRestarts += s1.SessionRestarts
	return out
}

func sumMaps(a, b map[string]int64) map[string]int64 {
	out := cloneMap(a)
	for k, v := range b {
		out[k] += v
	}
	return out
}

// repartitionPartition is where stage 1 writes a match of host dest: a
// fixed hash, so that every stage-1 member (and a re-run after a crash)
// sends a host's matches to the same stage-2 partition.
func repartitionPartition(dest string, partitions int32) int32 {
	h := fnv.New32a()
	h.Write([]byte(dest))
	return int32(h.Sum32() % uint32(partitions))
}

// splitState is a stage-1 worker's progress over its input partition: the
// newest accepted event time, which its markers carry to every stage-2
// partition.
type splitState struct {
	p      *Pipeline
	source int32

	hasTime bool
	newest  int64     // newest accepted event time, unix ns
	arrival time.Time // newest arrival (append time) read

	sent       bool // a marker went out (this worker's life)
	sentTime   int64
	lastMarker time.Time

	// lastOffset and seq number the matches one source record completes.
	lastOffset, seq int64

	key  []byte // scratch: a match's key
	recs []*kgo.Record
}

func newSplitState(p *Pipeline, source int32) *splitState {
	return &splitState{p: p, source: source, lastOffset: -1}
}

// progress records an accepted event of time t that arrived at arrival.
// As in Partition.Advance, a time beyond arrival plus MaxFuture moves no
// clock.
func (s *splitState) progress(t time.Time, arrival time.Time) {
	if t.After(arrival.Add(s.p.cfg.Processor.MaxFuture)) {
		return
	}
	if ns := t.UnixNano(); !s.hasTime || ns > s.newest {
		s.hasTime, s.newest = true, ns
	}
	if arrival.After(s.arrival) {
		s.arrival = arrival
	}
}

// event handles an accepted process event in stage 1: a match is
// re-keyed by host for the repartition topic (stage 1 keeps no windows);
// every event counts as progress.
func (s *splitState) event(r *kgo.Record, e *processor.Event, arrival time.Time, b *batch) {
	if processor.Match(s.p.cfg.Processor.Match, e) {
		b.risk = append(b.risk, s.matchRecord(r, e, arrival))
	}
	s.progress(e.Time, arrival)
}

// matchRecord is the repartition record of matching event e read from r.
func (s *splitState) matchRecord(r *kgo.Record, e *processor.Event, arrival time.Time) *kgo.Record {
	dest := e.Dest
	if dest == "" {
		dest = processor.Null // the host window KeyOf gives it
	}
	if r.Offset == s.lastOffset {
		s.seq++
	} else {
		s.lastOffset, s.seq = r.Offset, 0
	}
	return &kgo.Record{
		Topic:     s.p.cfg.OutputTopic,
		Partition: repartitionPartition(dest, s.p.repartitions),
		Key:       []byte(dest),
		Value:     appendRepartEvent(nil, r.Partition, r.Offset, s.seq, e),
		Timestamp: arrival, // stage 2's arrival, so its clock bound is the input's
	}
}

// appendMarkers appends a progress marker for every repartition partition
// when the source's progress changed since the last one: its newest event
// time, or, at first, that it exists but has none yet. The worker calls it
// once per CommitInterval and whenever it flushes, so that every input
// offset committed is covered by a marker written before it (a stopping worker's last batch too: the next
// owner starts after it and would never report its progress); markers
// follow the batch's matches, which they cover.
func (s *splitState) appendMarkers(dst []*kgo.Record, now time.Time) []*kgo.Record {
	due := !s.sent || (s.hasTime && s.newest > s.sentTime)
	if !due {
		return dst
	}
	s.sent, s.sentTime, s.lastMarker = true, s.newest, now
	value := appendRepartMarker(nil, s.source, s.p.sources, s.hasTime, s.newest)
	ts := s.arrival
	if ts.IsZero() {
		ts = now
	}
	for part := range s.p.repartitions {
		dst = append(dst, &kgo.Record{Topic: s.p.cfg.OutputTopic, Partition: part, Value: value, Timestamp: ts})
	}
	return dst
}

// Stage 2 keeps its view of stage 1 in the changelog beside the window
// state: per source partition what it has taken (key sourceKeyPrefix +
// partition; 'S' 1 varint(highest source offset taken, -1: none)
// varint(its sequence) byte(flags) varint(newest marker time) varint(wall
// clock when it last moved; not read back)), and each match it holds back until the marker line reaches it
// (key heldKeyPrefix + partition/offset/sequence; 'H' 1 varint(arrival) then the
// repartition event value).
const (
	repartKeyPrefix = "sshlateral/consumer/repartition/"
	sourceKeyPrefix = repartKeyPrefix + "source/"
	heldKeyPrefix   = repartKeyPrefix + "held/"
	sourceTag       = 'S'
	heldTag         = 'H'
	mergeVersion    = 1

	sourcePresent = 1 << 0 // a marker came: the source is known
	sourceHasTime = 1 << 1 // ... with an event time
)

func isRepartitionKey(k []byte) bool { return strings.HasPrefix(string(k), repartKeyPrefix) }

// sourceState is one source partition as a stage-2 partition sees it.
type sourceState struct {
	applied    int64 // source offset of the last match taken; -1: none
	appliedSeq int64 // and its sequence
	present    bool
	hasTime    bool
	time       int64 // newest marker time, unix ns
	// moved is the wall clock (unix ns) when a marker last raised time
	// (or first came): a source that stops moving while others move is
	// silent. Not kept across a restore: a restored source starts fresh.
	moved  int64
	queued bool
}

// heldMatch is a match waiting for the marker line.
type heldMatch struct {
	ev        processor.Event
	source    int32
	offset    int64
	seq       int64
	arrival   time.Time
	value     []byte // its changelog value
	persisted bool   // drained into the changelog: releasing it needs a tombstone
	released  bool
}

func (h *heldMatch) key() string {
	return heldKeyPrefix + strconv.Itoa(int(h.source)) + "/" + strconv.FormatInt(h.offset, 10) + "/" + strconv.FormatInt(h.seq, 10)
}

// heldHeap orders held matches by event time, then source and offset.
type heldHeap []*heldMatch

func (h heldHeap) Len() int { return len(h) }
func (h heldHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if !a.ev.Time.Equal(b.ev.Time) {
		return a.ev.Time.Before(b.ev.Time)
	}
	if a.source != b.source {
		return a.source < b.source
	}
	if a.offset != b.offset {
		return a.offset < b.offset
	}
	return a.seq < b.seq
}
func (h heldHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *heldHeap) Push(x any)   { *h = append(*h, x.(*heldMatch)) }
func (h *heldHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return x
}

// mergeState is a stage-2 worker's view of stage 1. Matches from several
// source partitions arrive interleaved in any order, while a host-keyed
// partition would have read them in its append order: so each match is
// held until every source has passed its event time (the marker line),
// then given to the partition in event-time order, and only then does the
// marker line move the partition clock. Repeats are dropped by source
// offset.
type mergeState struct {
	idle     int64 // Processor.IdleClose, ns
	maxHeld  int   // Processor.MaxOpenGroups: beyond it the oldest is released
	sources  map[int32]*sourceState
	expected int32 // source partitions, from the markers
	latest   int64 // wall clock of the last marker that moved a source
	dirty    []int32

	held      heldHeap
	heldPuts  []*heldMatch // held since the last drain
	heldTombs []string     // released after a drain wrote them
}

func newMergeState(p *Pipeline) *mergeState {
	return &mergeState{idle: int64(p.cfg.Processor.IdleClose), maxHeld: p.cfg.Processor.MaxOpenGroups,
		sources: map[int32]*sourceState{}, latest: time.Now().UnixNano()}
}

func (m *mergeState) source(n int32) *sourceState {
	s := m.sources[n]
	if s == nil {
		s = &sourceState{applied: -1}
		m.sources[n] = s
	}
	return s
}

func (m *mergeState) touch(n int32, s *sourceState) {
	if !s.queued {
		s.queued = true
		m.dirty = append(m.dirty, n)
	}
}

// apply handles one repartition record and reports whether it was a new
// match. A match whose (source offset, sequence) is not after the last
// taken from its source is a repeat (stage 1 re-read its input after a crash or
// rebalance) and is dropped: stage 1 writes each source partition's
// matches in offset order, and a given match always to the same stage-2
// partition.
func (m *mergeState) apply(w *worker, r *kgo.Record, now time.Time, b *batch) int64 {
	rec, err := decodeRepart(r.Value, &w.ev)
	if err != nil {
		b.deadLetter(w.deadLetter(r, DLQReasonDecode, err), DLQReasonDecode)
		return 0
	}
	arrival := arrivalOf(r, now)
	s := m.source(rec.source)
	if !rec.marker {
		if rec.offset < s.applied || (rec.offset == s.applied && rec.seq <= s.appliedSeq) {
			w.p.stats.repartitionDuplicates.Add(1)
			return 0
		}
		s.applied, s.appliedSeq = rec.offset, rec.seq
		m.touch(rec.source, s)
		h := &heldMatch{ev: w.ev, source: rec.source, offset: rec.offset, seq: rec.seq, arrival: arrival}
		h.value = binary.AppendVarint([]byte{heldTag, mergeVersion}, arrival.UnixNano())
		h.value = append(h.value, r.Value...)
		heap.Push(&m.held, h)
		m.heldPuts = append(m.heldPuts, h)
		m.release(w)
		return 1
	}
	m.expected = max(m.expected, rec.sources)
	if s.present && !(rec.hasTime && (!s.hasTime || rec.timeNanos > s.time)) {
		return 0
	}
	s.present, s.moved = true, now.UnixNano()
	if rec.hasTime {
		s.hasTime, s.time = true, rec.timeNanos
	}
	m.latest = max(m.latest, s.moved)
	m.touch(rec.source, s)
	if line, ok := m.line(); ok {
		m.release(w)
		w.results = w.part.Advance(time.Unix(0, line).UTC(), arrival, w.results)
	}
	return 0
}

// release gives the partition, in event-time order, the held matches the
// marker line has reached, and the oldest beyond MaxOpenGroups held.
func (m *mergeState) release(w *worker) {
	line, ok := m.line()
	for len(m.held) > 0 && ((ok && m.held[0].ev.Time.UnixNano() <= line) || len(m.held) > m.maxHeld) {
		m.releaseOldest(w)
	}
}

// releaseAll gives the partition every held match: the idle close, when
// no marker has moved for IdleClose of wall-clock time.
func (m *mergeState) releaseAll(w *worker) {
	for len(m.held) > 0 {
		m.releaseOldest(w)
	}
}

func (m *mergeState) releaseOldest(w *worker) {
	h := heap.Pop(&m.held).(*heldMatch)
	h.released = true
	if h.persisted {
		m.heldTombs = append(m.heldTombs, h.key())
	}
	w.results = w.part.Process(&h.ev, h.arrival, w.results)
}

// tick releases every held match once the markers have been still for
// IdleClose (every source is idle), as the partition's idle close would
// close its windows.
func (m *mergeState) tick(w *worker, now time.Time) {
	if m.idle > 0 && len(m.held) > 0 && now.UnixNano()-m.latest >= m.idle {
		m.releaseAll(w)
	}
}

// line is the event time every source has reached: the minimum over the
// source partitions of their newest marker time, once every source has
// reported. A source without an event time yet holds it back; a source
// whose marker has not moved for IdleClose of wall-clock time while
// another's did has fallen silent and does not (as Kafka Streams stops
// waiting for an empty input after max.task.idle.ms). With IdleClose 0
// every source holds it, silent or not.
func (m *mergeState) line() (int64, bool) {
	present := int32(0)
	var lo int64
	found := false
	for _, s := range m.sources {
		if !s.present {
			continue
		}
		present++
		if m.idle > 0 && m.latest-s.moved > m.idle {
			continue
		}
		if !s.hasTime {
			return 0, false
		}
		if !found || s.time < lo {
			lo, found = s.time, true
		}
	}
	// expected comes with the markers only: after a restore, the sources
	// restored may not be all of them until a marker says how many.
	return lo, found && m.expected > 0 && present >= m.expected
}

// drainChanges appends the changed sources' and held matches' entries to
// out.
func (m *mergeState) drainChanges(out []processor.StateChange) []processor.StateChange {
	for _, n := range m.dirty {
		s := m.sources[n]
		s.queued = false
		var flags byte
		if s.present {
			flags |= sourcePresent
		}
		if s.hasTime {
			flags |= sourceHasTime
		}
		v := []byte{sourceTag, mergeVersion}
		v = binary.AppendVarint(v, s.applied)
		v = binary.AppendVarint(v, s.appliedSeq)
		v = append(v, flags)
		v = binary.AppendVarint(v, s.time)
		v = binary.AppendVarint(v, s.moved)
		out = append(out, processor.StateChange{Key: []byte(sourceKeyPrefix + strconv.Itoa(int(n))), Value: v})
	}
	m.dirty = m.dirty[:0]
	for _, h := range m.heldPuts {
		if !h.released {
			h.persisted = true
			out = append(out, processor.StateChange{Key: []byte(h.key()), Value: h.value})
		}
	}
	clear(m.heldPuts)
	m.heldPuts = m.heldPuts[:0]
	for _, k := range m.heldTombs {
		out = append(out, processor.StateChange{Key: []byte(k)})
	}
	m.heldTombs = m.heldTombs[:0]
	return out
}

// restore applies a changelog entry of the repartition view.
func (m *mergeState) restore(c processor.StateChange) error {
	key := string(c.Key)
	if err := m.restoreEntry(key, c.Value); err != nil {
		return fmt.Errorf("changelog key %q: %w", key, err)
	}
	return nil
}

func (m *mergeState) restoreEntry(key string, v []byte) error {
	r := repartReader{buf: v}
	switch {
	case strings.HasPrefix(key, sourceKeyPrefix):
		n, err := strconv.ParseInt(key[len(sourceKeyPrefix):], 10, 32)
		if err != nil || n < 0 {
			return errors.New("not a source partition")
		}
		if len(v) < 2 || v[0] != sourceTag || v[1] != mergeVersion {
			return r.errorf("not a version %d source entry", mergeVersion)
		}
		r.off = 2
		s := &sourceState{applied: r.varint("applied offset"), appliedSeq: r.varint("applied sequence")}
		flags := r.byte("flags")
		s.time, s.moved = r.varint("marker time"), r.varint("marker arrival")
		if err := r.finish(); err != nil {
			return err
		}
		s.present, s.hasTime = flags&sourcePresent != 0, flags&sourceHasTime != 0
		s.moved = m.latest // a restored source starts fresh
		m.sources[int32(n)] = s
	case strings.HasPrefix(key, heldKeyPrefix):
		if len(v) == 0 {
			return nil // a tombstone not compacted yet
		}
		if len(v) < 2 || v[0] != heldTag || v[1] != mergeVersion {
			return r.errorf("not a version %d held match", mergeVersion)
		}
		r.off = 2
		arrival := r.varint("arrival")
		if r.err != nil {
			return r.err
		}
		h := &heldMatch{arrival: time.Unix(0, arrival).UTC(), value: v, persisted: true}
		rec, err := decodeRepart(v[r.off:], &h.ev)
		if err != nil {
			return err
		}
		if rec.marker {
			return r.errorf("a marker, not a match")
		}
		h.source, h.offset, h.seq = rec.source, rec.offset, rec.seq
		if key != h.key() {
			return fmt.Errorf("%w: holds source %d offset %d sequence %d", ErrRepartitionRecord, h.source, h.offset, h.seq)
		}
		heap.Push(&m.held, h)
	default:
		return errors.New("not a repartition key")
	}
	return nil
}
