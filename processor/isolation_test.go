package processor

import (
	"math"
	"slices"
	"testing"
	"time"
)

// hostResults returns dest's results in a canonical order (emission order
// across hosts may differ by design: another host's events can close a
// window at another call).
func hostResults(rs []Result, dest string) []Result {
	var mine []Result
	for _, r := range rs {
		if r.Key.Dest == dest {
			mine = append(mine, r)
		}
	}
	slices.SortStableFunc(mine, func(a, b Result) int {
		if c := compareKeys(&a.Key, &b.Key); c != 0 {
			return c
		}
		if c := a.WindowStart.Compare(b.WindowStart); c != 0 {
			return c
		}
		if c := int(a.Emission) - int(b.Emission); c != 0 {
			return c
		}
		return a.FirstSeen.Compare(b.FirstSeen)
	})
	return mine
}

// FuzzHostIsolation checks the per-host clock guarantee: adding any events
// of other hosts (any time, including out of range and far future, matching
// or not, with or without a dest) never changes host A's results, provided
// A's events arrive within Grace of the wall clock (what ESCU's schedule
// itself requires) and the open-group bound is not reached. Ticks and a
// drain-and-restore are interleaved in both runs.
func FuzzHostIsolation(f *testing.F) {
	f.Add([]byte{0, 10, 1, 5, 200, 2, 0, 0, 3, 255, 255, 1, 30, 0, 4, 1, 2, 6, 0, 0})
	f.Add([]byte{1, 0, 0, 2, 9, 9, 1, 0, 3, 7, 255, 0, 1, 250, 4, 2, 128, 3, 5, 40, 0, 6, 1, 1})
	f.Add([]byte{3, 40, 1, 2, 120, 200, 4, 200, 3, 1, 50, 1, 7, 60, 2, 4, 0, 9, 1, 255, 0})
	// Catch-up: another host's event dated hours after its append time,
	// then web-a's next on-time event.
	f.Add([]byte{5, 0, 10, 1, 2, 255, 0, 0, 200, 1})
	f.Fuzz(runIsolation)
}

func runIsolation(t *testing.T, data []byte) {
	if len(data) == 0 {
		return
	}
	cfg := DefaultConfig()
	if data[0]&1 != 0 {
		cfg.Emit = EmitFinal
	}
	if data[0]&2 != 0 {
		cfg.Window, cfg.Offset = 7*time.Minute, 3*time.Minute
	}
	// Catch-up: the ops are a backlog read hours after it was appended;
	// the appended times are the arrivals, the consumer's clock is later.
	catchUp := data[0]&4 != 0
	data = data[1:min(len(data), 1+3*300)]
	wall := at(9, 0, 0, 0)
	var with, without []op
	var restoreAt []int // positions in with/without to drain and restore at
	for ; len(data) >= 3; data = data[3:] {
		kind, a, b := data[0]%8, data[1], data[2]
		switch kind {
		case 0, 1: // A's event, on time: within Grace behind the wall clock
			wall = wall.Add(time.Duration(b%32) * 10 * time.Second)
			ts := wall.Add(-cfg.Grace * time.Duration(a) / 255)
			var e *Event
			if kind == 0 {
				e = positive("web-a", []string{"1", "2"}[a%2], ts)
			} else {
				e = negative("web-a", ts)
			}
			o := op{kind: opProcess, ev: e, now: wall}
			with, without = append(with, o), append(without, o)
		case 2, 3, 4, 5: // another host's event, any time
			var ts time.Time
			switch b % 4 {
			case 0: // around the wall clock, up to the future bound and beyond
				ts = wall.Add(time.Duration(int(a)-128) * 15 * time.Second)
			case 1: // far future or far past, in range
				ts = wall.Add(time.Duration(int(a)-128) * 24 * time.Hour)
			case 2: // out of range
				ts = []time.Time{time.Unix(-1, 0), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), maxEventTime}[a%3]
			default:
				ts = time.Unix(0, int64(a)*int64(math.MaxInt64/255))
			}
			dest := []string{"web-b", "", "web-a-", "mallory"}[(b/4)%4]
			var o op
			switch kind {
			case 2:
				o = op{kind: opProcess, ev: positive(dest, "9", ts), now: wall}
			case 3:
				o = op{kind: opProcess, ev: negative(dest, ts), now: wall}
			default:
				o = op{kind: opAdvance, at: ts, now: wall}
			}
			with = append(with, o)
		case 6:
			wall = wall.Add(time.Duration(a) * 5 * time.Second)
			o := op{kind: opTick, now: wall}
			with, without = append(with, o), append(without, o)
		case 7:
			restoreAt = append(restoreAt, len(with))
		}
	}
	if catchUp {
		reading := wall.Add(8 * time.Hour) // after the last append
		for _, ops := range [][]op{with, without} {
			for i := range ops {
				if ops[i].kind != opTick {
					ops[i].arrival = ops[i].now
				}
				ops[i].now = reading
			}
		}
	}
	run := func(ops []op, restoreEvery bool) []Result {
		p, err := NewPartition(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var out []Result
		var log []StateChange
		for i, o := range ops {
			if restoreEvery && slices.Contains(restoreAt, i) {
				log = p.DrainChanges(log)
				q, _ := NewPartition(cfg)
				for _, c := range log {
					if err := q.Restore(c); err != nil {
						t.Fatalf("restore: %v", err)
					}
				}
				p.Release()
				p = q
			}
			out = apply(p, o, out)
		}
		out = p.Flush(out)
		if s := p.Stats(); s.OpenGroups != 0 || s.OpenWindows != 0 {
			t.Fatalf("open after Flush: %+v", s)
		}
		return out
	}
	// The restore positions index the run with other hosts; the run
	// without them is not restored, which the twin property covers.
	got := hostResults(run(with, true), "web-a")
	want := hostResults(run(without, false), "web-a")
	for _, r := range want {
		if r.Emission == EmissionLate {
			t.Fatalf("an on-time event of web-a was LATE without other hosts: %+v", r)
		}
	}
	sameResults(t, got, want)
}
