package processor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// testStream returns a reproducible mix of matching and non-matching events
// on four hosts with out-of-order and late times, advances and ticks, ending
// with a Flush.
func testStream(seed uint64, n int) []op {
	r := rand.New(rand.NewPCG(seed, 7))
	hosts := []string{"web-1", "web-2", "db-1", ""}
	pids := []string{"100", "200", "300"}
	clock := at(8, 0, 0, 0)
	wall := clock
	ops := make([]op, 0, n+1)
	for range n {
		clock = clock.Add(time.Duration(r.IntN(120)) * time.Second)
		if arrival := clock.Add(time.Second); arrival.After(wall) {
			wall = arrival
		}
		t := clock.Add(-time.Duration(r.IntN(25)) * time.Minute) // some are late with 10m grace
		switch x := r.IntN(20); {
		case x < 10:
			ops = append(ops, op{kind: opProcess, ev: positive(hosts[r.IntN(len(hosts))], pids[r.IntN(len(pids))], t), now: wall})
		case x < 15:
			ops = append(ops, op{kind: opProcess, ev: negative(hosts[r.IntN(len(hosts))], t), now: wall})
		case x < 18:
			ops = append(ops, op{kind: opAdvance, at: t, now: wall})
		default:
			wall = wall.Add(time.Duration(r.IntN(180)) * time.Second)
			ops = append(ops, op{kind: opTick, now: wall})
		}
	}
	return append(ops, op{kind: opFlush})
}

func runOps(p *Partition, ops []op, out []Result) []Result {
	for _, o := range ops {
		out = apply(p, o, out)
	}
	return out
}

func restoreAll(t *testing.T, cfg Config, changes []StateChange) *Partition {
	t.Helper()
	p, err := NewPartition(cfg)
	if err != nil {
		t.Fatalf("NewPartition: %v", err)
	}
	for _, c := range changes {
		if err := p.Restore(c); err != nil {
			t.Fatalf("Restore: %v", err)
		}
	}
	return p
}

// compact keeps the latest entry per key, drops deleted keys and shuffles
// the rest, as a compacted changelog read into a map would.
func compact(changes []StateChange, seed uint64) []StateChange {
	latest := map[string][]byte{}
	for _, c := range changes {
		if c.Value == nil {
			delete(latest, string(c.Key))
		} else {
			latest[string(c.Key)] = c.Value
		}
	}
	out := make([]StateChange, 0, len(latest))
	for k, v := range latest {
		out = append(out, StateChange{Key: []byte(k), Value: v})
	}
	r := rand.New(rand.NewPCG(seed, 3))
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func TestDrainRestoreEquivalence(t *testing.T) {
	for _, mode := range []EmitMode{EmitEarly, EmitFinal} {
		for _, match := range []MatchMode{MatchESCU, MatchRobust} {
			cfg := DefaultConfig()
			cfg.Emit, cfg.Match, cfg.MaxOpenGroups = mode, match, 6
			ops := testStream(uint64(mode)*2+uint64(match)+1, 600)
			t.Run(mode.String()+"/"+match.String(), func(t *testing.T) {
				whole := newTestPartition(t, func(c *Config) { *c = cfg })
				want := runOps(whole, ops, nil)
				if st := whole.Stats(); st.Early+st.Final == 0 || st.Late == 0 || st.Forced == 0 {
					t.Fatalf("stream does not exercise the windows: %+v", st)
				}
				for split := 50; split < len(ops)-1; split += 37 {
					// The restored idle timer starts at the next call; a
					// Tick there would (by design) only start it.
					for ops[split].kind == opTick {
						split++
					}
					first := newTestPartition(t, func(c *Config) { *c = cfg })
					var changes []StateChange
					var got []Result
					for _, o := range ops[:split] {
						got = apply(first, o, got)
						changes = first.DrainChanges(changes)
					}
					for name, log := range map[string][]StateChange{"full log": changes, "compacted": compact(changes, uint64(split))} {
						restored := restoreAll(t, cfg, log)
						if !restored.Watermark().Equal(first.Watermark()) || restored.Stats().OpenGroups != first.Stats().OpenGroups {
							t.Fatalf("split %d %s: restored watermark %s, %d groups; want %s, %d", split, name,
								restored.Watermark(), restored.Stats().OpenGroups, first.Watermark(), first.Stats().OpenGroups)
						}
						rest := runOps(restored, ops[split:], append([]Result(nil), got...))
						sameResults(t, rest, want)
						if t.Failed() {
							t.Fatalf("split %d (%s) diverges, next op %s", split, name, ops[split])
						}
					}
				}
			})
		}
	}
}

func TestRestoredPartitionDoesNotRepeatEarly(t *testing.T) {
	p := newTestPartition(t, nil)
	early := wantOne(t, process(p, positive("web-1", "100", at(10, 0, 0, 0))), EmissionEarly)
	restored := restoreAll(t, DefaultConfig(), p.DrainChanges(nil))
	if rs := process(restored, positive("web-1", "100", at(10, 5, 0, 0))); len(rs) != 0 {
		t.Fatalf("restored partition emitted %+v for a known group", rs)
	}
	final := wantOne(t, restored.Flush(nil), EmissionFinal)
	if final.AlertID != early.AlertID || final.Revision != 1 || final.Count != 2 {
		t.Errorf("FINAL %+v, want revision 1 of %s with count 2", final, early.AlertID)
	}
	if final.ParentProcess != early.ParentProcess || final.OriginalFileName != early.OriginalFileName {
		t.Errorf("restored context differs: %+v vs %+v", final, early)
	}
}

func TestRestoredPartitionClosesByTick(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Emit = EmitFinal
	p := newTestPartition(t, func(c *Config) { *c = cfg })
	process(p, positive("web-1", "100", at(10, 30, 0, 0)))
	restored := restoreAll(t, cfg, p.DrainChanges(nil))
	// After a restart at 11:30 nothing arrives: the first Tick starts the
	// idle timer, the one a minute later closes the overdue window.
	if rs := restored.Tick(at(11, 30, 0, 0), nil); len(rs) != 0 {
		t.Fatalf("first Tick after restore emitted %+v", rs)
	}
	final := wantOne(t, restored.Tick(at(11, 31, 0, 0), nil), EmissionFinal)
	wantWindow(t, final, at(9, 50, 0, 0), at(10, 50, 0, 0))
}

func TestDrainTombstones(t *testing.T) {
	cfg := DefaultConfig()
	p := newTestPartition(t, func(c *Config) { *c = cfg })
	process(p, positive("web-1", "100", at(10, 0, 0, 0)))
	first := p.DrainChanges(nil)
	groupKeys := keysWithPrefix(first, groupKeyPrefix)
	if len(groupKeys) != 1 || !hasKey(first, metaKey) {
		t.Fatalf("first drain %s, want one group and the meta entry", describe(first))
	}
	if again := p.DrainChanges(nil); len(again) != 0 {
		t.Fatalf("second drain without changes returned %s", describe(again))
	}
	process(p, positive("web-1", "100", at(10, 1, 0, 0)))
	second := p.DrainChanges(nil)
	if len(second) != 3 || !bytes.Equal(second[0].Key, groupKeys[0]) || second[0].Value == nil ||
		string(second[1].Key) != hostKeyPrefix+"web-1" || second[1].Value == nil {
		t.Fatalf("drain after a duplicate %s, want a new value for the group, web-1's clock and meta", describe(second))
	}
	// A group opened and closed between drains leaves no entry.
	process(p, positive("web-2", "100", at(10, 2, 0, 0)))
	p.Advance(at(11, 0, 0, 0), at(11, 0, 1, 0), nil)
	third := p.DrainChanges(nil)
	// web-2's clock came and went between drains; web-1's, behind the
	// partition clock without windows, is forgotten.
	if len(third) != 3 || !bytes.Equal(third[0].Key, groupKeys[0]) || third[0].Value != nil ||
		string(third[1].Key) != hostKeyPrefix+"web-1" || third[1].Value != nil || !hasKey(third, metaKey) {
		t.Fatalf("drain after close %s, want the group's and web-1's tombstones and meta", describe(third))
	}

	log := append(append(append([]StateChange(nil), first...), second...), third...)
	cases := []struct {
		name   string
		log    []StateChange
		groups int
	}{
		{"up to the first drain", first, 1},
		{"up to the second drain", append(append([]StateChange(nil), first...), second...), 1},
		{"whole log", log, 0},
		{"tombstone of an unknown key", third[:1], 0},
		{"empty value is a tombstone", append(append([]StateChange(nil), first...), StateChange{Key: groupKeys[0], Value: []byte{}}), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := restoreAll(t, cfg, c.log)
			if got := r.Stats().OpenGroups; got != c.groups {
				t.Errorf("restored %d open groups, want %d", got, c.groups)
			}
		})
	}
}

func keysWithPrefix(cs []StateChange, prefix string) [][]byte {
	var out [][]byte
	for _, c := range cs {
		if strings.HasPrefix(string(c.Key), prefix) {
			out = append(out, c.Key)
		}
	}
	return out
}

func hasKey(cs []StateChange, key string) bool {
	for _, c := range cs {
		if string(c.Key) == key {
			return true
		}
	}
	return false
}

func describe(cs []StateChange) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(string(c.Key))
		if c.Value == nil {
			b.WriteString("=<tombstone> ")
		} else {
			b.WriteString("=<value> ")
		}
	}
	return b.String()
}

func TestRestoreRejectsCorruptValues(t *testing.T) {
	cfg := DefaultConfig()
	src := newTestPartition(t, func(c *Config) { *c = cfg; c.MaxOpenGroups = 1 })
	process(src, positive("web-1", "100", at(10, 0, 0, 0)))
	process(src, positive("web-2", "100", at(10, 1, 0, 0))) // forces web-1: meta holds a forced window
	changes := src.DrainChanges(nil)
	var group, meta, hostClock StateChange
	for _, c := range changes {
		switch {
		case string(c.Key) == metaKey:
			meta = c
		case c.Value == nil:
		case strings.HasPrefix(string(c.Key), groupKeyPrefix):
			group = c
		case strings.HasPrefix(string(c.Key), hostKeyPrefix):
			hostClock = c
		}
	}
	if group.Value == nil || meta.Value == nil || hostClock.Value == nil {
		t.Fatalf("drain %s lacks a group, host or meta", describe(changes))
	}
	with := func(c StateChange, v []byte) StateChange { return StateChange{Key: c.Key, Value: v} }
	edit := func(v []byte, i int, b byte) []byte {
		v = bytes.Clone(v)
		v[i] = b
		return v
	}
	g, err := decodeGroup(group.Value)
	if err != nil {
		t.Fatalf("decode own group value: %v", err)
	}
	zeroCount := *g
	zeroCount.count = 0
	reordered := *g
	reordered.first, reordered.last = g.last+1, g.last
	outside := *g
	outside.last = outside.end
	emptyDest := *g
	emptyDest.key.Dest = ""
	farPast := *g
	farPast.start, farPast.first, farPast.last = math.MinInt64, math.MinInt64, math.MinInt64

	cases := []struct {
		name   string
		change StateChange
		want   string
	}{
		{"unknown key", StateChange{Key: []byte("other/key"), Value: []byte{1}}, "not a processor key"},
		{"group header only", with(group, group.Value[:2]), "truncated or overlong varint reading window start"},
		{"group empty string table", with(group, group.Value[:len(group.Value)-3]), "exceeds"},
		{"group wrong tag", with(group, edit(group.Value, 0, 'X')), "tag 'X', want 'G'"},
		{"group wrong version", with(group, edit(group.Value, 1, 9)), "version 9, want 1"},
		{"group trailing bytes", with(group, append(bytes.Clone(group.Value), 0)), "1 trailing bytes"},
		{"group zero count", with(group, encodeGroup(&zeroCount)), "count 0, want at least 1"},
		{"group first after last", with(group, encodeGroup(&reordered)), "not ordered inside window"},
		{"group last at window end", with(group, encodeGroup(&outside)), "not ordered inside window"},
		{"group empty dest", with(group, encodeGroup(&emptyDest)), `empty dest (missing fields are "null")`},
		{"group under another key", StateChange{Key: groupChangeKey(strings.Repeat("0", 32)), Value: group.Value}, "value is the group of alert id"},
		{"meta wrong tag", with(meta, edit(meta.Value, 0, 'G')), "tag 'G', want 'M'"},
		{"meta bad flag", with(meta, edit(meta.Value, 2, 5)), "clock flags 0x5"},
		{"meta version 1 bad flag", with(meta, []byte{'M', 1, 2, 0, 0}), "watermark flag 2"},
		{"meta unknown version", with(meta, edit(meta.Value, 1, 3)), "version 3, want 2"},
		{"meta truncated", with(meta, meta.Value[:len(meta.Value)-1]), "truncated"},
		{"meta huge forced count", with(meta, append(bytes.Clone(meta.Value[:3]), 0, 0, 0xff, 0xff, 0xff, 0x0f)), "forced window count"},
		{"host wrong tag", with(hostClock, edit(hostClock.Value, 0, 'G')), "tag 'G', want 'H'"},
		{"host trailing bytes", with(hostClock, append(bytes.Clone(hostClock.Value), 0)), "1 trailing bytes"},
		{"host truncated", with(hostClock, hostClock.Value[:2]), "truncated or overlong varint reading clock"},
		{"host clock out of range", with(hostClock, binary.AppendVarint([]byte{'H', 1}, math.MinInt64)), "clock -9223372036854775808 out of range"},
		{"meta watermark out of range", with(meta, append(binary.AppendVarint([]byte{'M', 2, 1}, math.MaxInt64), 0, 0)), "out of range"},
		{"group window out of range", with(group, encodeGroup(&farPast)), "out of range"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newTestPartition(t, func(cf *Config) { *cf = cfg })
			err := p.Restore(c.change)
			if err == nil {
				t.Fatalf("Restore accepted a corrupt entry")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "restore changelog key") {
				t.Errorf("error %q, want it to name the key and contain %q", err, c.want)
			}
			if (c.name != "unknown key") != errors.Is(err, ErrCorruptState) {
				t.Errorf("error %q: errors.Is(ErrCorruptState) is %v", err, errors.Is(err, ErrCorruptState))
			}
			if s := p.Stats(); s.OpenGroups != 0 || !p.Watermark().IsZero() {
				t.Errorf("failed Restore changed the partition: %+v, watermark %s", s, p.Watermark())
			}
		})
	}
	t.Run("every truncation fails", func(t *testing.T) {
		for _, c := range []StateChange{group, meta, hostClock} {
			for n := 1; n < len(c.Value); n++ {
				p := newTestPartition(t, func(cf *Config) { *cf = cfg })
				if err := p.Restore(with(c, c.Value[:n])); err == nil {
					t.Errorf("%s truncated to %d bytes accepted", c.Key, n)
				}
			}
		}
	})
}

// TestHugeEventStateBounded: a matching event with a 1 MB command line and
// host name makes a group whose key and changelog entry stay within the
// state bounds (a Kafka record could not hold it otherwise); matching read
// the whole event.
func TestHugeEventStateBounded(t *testing.T) {
	p := newTestPartition(t, nil)
	e := positive("web-1", "100", at(10, 0, 0, 0))
	e.Process += " #" + strings.Repeat("A", 1<<20)
	e.Dest = strings.Repeat("h", 400_000)
	rs := process(p, e)
	if len(rs) != 1 {
		t.Fatalf("results %+v", rs)
	}
	if k := rs[0].Key; len(k.Process) > MaxStateCommandLine || len(k.Dest) > MaxStateValue {
		t.Fatalf("result key holds %d and %d bytes, bounds %d and %d", len(k.Process), len(k.Dest), MaxStateCommandLine, MaxStateValue)
	}
	for _, c := range p.DrainChanges(nil) {
		if len(c.Key)+len(c.Value) > 64<<10 {
			t.Fatalf("state entry of %d bytes", len(c.Key)+len(c.Value))
		}
	}
}
