package processor

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"
)

// poisoners are ways another host's single event can carry a bad clock into
// a partition: a non-matching record the prefilter rejected, a decoded
// non-matching event and a matching one.
var poisoners = []struct {
	name string
	feed func(p *Partition, t, now time.Time) []Result
}{
	{"advance", func(p *Partition, t, now time.Time) []Result { return p.Advance(t, now, nil) }},
	{"non-matching event", func(p *Partition, t, now time.Time) []Result { return p.Process(negative("mallory", t), now, nil) }},
	{"matching event", func(p *Partition, t, now time.Time) []Result {
		return p.Process(positive("mallory", "666", t), now, nil)
	}},
}

// victimResults runs host web-1's five matches in one window with the
// poisoner's event after the first, and returns web-1's results.
func victimResults(t *testing.T, cfg func(*Config), poison func(p *Partition, now time.Time) []Result) []Result {
	t.Helper()
	p := newTestPartition(t, cfg)
	var rs []Result
	// Near the window's end, where a clock a little ahead closes it.
	for i, ts := range []time.Time{at(10, 46, 0, 0), at(10, 47, 0, 0), at(10, 48, 0, 0), at(10, 49, 0, 0), at(10, 49, 30, 0)} {
		rs = append(rs, process(p, positive("web-1", "100", ts))...)
		if i == 0 && poison != nil {
			rs = append(rs, poison(p, ts.Add(time.Second))...)
		}
	}
	rs = p.Flush(rs)
	var mine []Result
	for _, r := range rs {
		if r.Key.Dest == "web-1" {
			mine = append(mine, r)
		}
	}
	return mine
}

func TestOneHostsClockCannotPoisonAnother(t *testing.T) {
	clean := victimResults(t, finalMode, nil)
	if len(clean) != 1 || clean[0].Emission != EmissionFinal || clean[0].Count != 5 {
		t.Fatalf("without a poisoner: %+v, want one FINAL of count 5", clean)
	}
	offsets := []struct {
		name string
		d    time.Duration
	}{
		{"dated 2099", time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC).Sub(at(10, 46, 0, 0))},
		{"clock two hours ahead", 2 * time.Hour},
		{"clock ten minutes ahead", 10 * time.Minute},
		{"at the future bound", DefaultConfig().MaxFuture},
	}
	for _, ps := range poisoners {
		for _, off := range offsets {
			t.Run(ps.name+"/"+off.name, func(t *testing.T) {
				got := victimResults(t, finalMode, func(p *Partition, now time.Time) []Result {
					return ps.feed(p, now.Add(off.d), now)
				})
				sameResults(t, got, clean)
			})
		}
	}
}

// TestPoisonedClockCannotHideResultsFromAllowlist: with a max_count rule,
// LATE records of count 1 would all be suppressed; the FINAL of count 5
// must survive.
func TestPoisonedClockCannotHideResultsFromAllowlist(t *testing.T) {
	f, err := NewFilter([]Rule{{Name: "few", Dest: []string{"web-*"}, MaxCount: 3}})
	if err != nil {
		t.Fatal(err)
	}
	got := victimResults(t, finalMode, func(p *Partition, now time.Time) []Result {
		return p.Advance(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), now, nil)
	})
	var kept int
	for i := range got {
		if _, sup := f.Suppress(&got[i]); !sup {
			kept++
		}
	}
	if kept != 1 {
		t.Errorf("%d results survive the allowlist of %+v, want the FINAL of count 5", kept, got)
	}
}

// TestOwnClockClosesOwnWindows: a host whose clock runs a few minutes
// ahead closes its own windows by its own progress; its neighbours' windows
// wait for theirs (or for the partition clock, which trails the wall clock).
func TestOwnClockClosesOwnWindows(t *testing.T) {
	p := newTestPartition(t, finalMode)
	process(p, positive("web-2", "7", at(10, 0, 0, 0)))
	p.Process(positive("web-1", "100", at(10, 45, 0, 0)), at(10, 40, 0, 0), nil)
	now := at(10, 56, 0, 0) // web-1 runs nine minutes ahead
	r := wantOne(t, p.Process(positive("web-1", "100", at(11, 5, 0, 0)), now, nil), EmissionFinal)
	if r.Key.Dest != "web-1" || r.Count != 1 {
		t.Fatalf("closed %+v, want web-1's first window by its own clock", r)
	}
	if rs := p.Process(positive("web-2", "7", at(10, 49, 0, 0)), now, nil); len(rs) != 0 {
		t.Fatalf("web-2 within its own grace emitted %+v", rs)
	}
	wantOne(t, p.Process(positive("web-1", "100", at(10, 48, 0, 0)), now, nil), EmissionLate)
	p.Tick(at(11, 0, 0, 0), nil) // the first Tick after events starts the idle timer
	r = wantOne(t, p.Tick(at(11, 1, 0, 0), nil), EmissionFinal)
	if r.Key.Dest != "web-2" || r.Count != 2 {
		t.Errorf("idle close emitted %+v, want web-2's window with both matches", r)
	}
}

// TestPartitionClockTrailsWallClock: the clock that closes silent hosts'
// windows never passes the wall clock of the arrivals, so an event dated
// within MaxFuture cannot close anything before real time does.
func TestPartitionClockTrailsWallClock(t *testing.T) {
	p := newTestPartition(t, finalMode)
	process(p, positive("web-1", "100", at(10, 40, 0, 0)))
	now := at(10, 41, 0, 0)
	if rs := p.Advance(now.Add(14*time.Minute), now, nil); len(rs) != 0 {
		t.Fatalf("event 14m ahead of the wall clock closed %+v", rs)
	}
	if !p.Watermark().Equal(now.Add(-10 * time.Minute)) {
		t.Errorf("watermark %s, want wall clock minus grace %s", p.Watermark(), now.Add(-10*time.Minute))
	}
	// Once real time has caught up, event time closes it as usual.
	wantOne(t, p.Advance(at(11, 0, 0, 0), at(11, 0, 1, 0), nil), EmissionFinal)
}

func TestCheckEventTime(t *testing.T) {
	now := at(12, 0, 0, 0)
	const maxFuture = 15 * time.Minute
	cases := []struct {
		name string
		t    time.Time
		want error
	}{
		{"past", at(1, 0, 0, 0), nil},
		{"now", now, nil},
		{"at the bound", now.Add(maxFuture), nil},
		{"just beyond the bound", now.Add(maxFuture + time.Nanosecond), ErrFutureEventTime},
		{"2099", time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), ErrFutureEventTime},
		{"the epoch", time.Unix(0, 0), nil},
		{"before the epoch", time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), ErrEventTimeRange},
		{"year 1", time.Time{}, ErrEventTimeRange},
		{"year 9999", time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), ErrEventTimeRange},
		{"last supported second", maxEventTime.Add(-time.Nanosecond), ErrFutureEventTime},
		{"end of the range", maxEventTime, ErrEventTimeRange},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckEventTime(c.t, now, maxFuture)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("CheckEventTime(%s) = %v, want %v", c.t, err, c.want)
			}
			// Process and Advance agree: what fails changes nothing.
			p := newTestPartition(t, nil)
			process(p, positive("web-1", "1", at(11, 0, 0, 0)))
			p.DrainChanges(nil)
			before, wm := p.Stats(), p.Watermark()
			rs := p.Process(positive("web-2", "1", c.t), now, nil)
			rs = p.Process(negative("web-1", c.t), now, rs)
			rs = p.Advance(c.t, now, rs)
			changes := p.DrainChanges(nil)
			after := p.Stats()
			if c.want == nil {
				if after.Ignored != 0 {
					t.Errorf("accepted time ignored: %+v", after)
				}
				return
			}
			if len(rs) != 0 || len(changes) != 0 || !p.Watermark().Equal(wm) || after.Ignored != 3 ||
				after.Matched != before.Matched || after.OpenGroups != before.OpenGroups {
				t.Errorf("ignored events changed the partition: results %+v, changes %s, watermark %s (was %s), stats %+v",
					rs, describe(changes), p.Watermark(), wm, after)
			}
			if hw, ok := p.HostWatermark("web-1"); !ok || !hw.Equal(at(10, 50, 0, 0)) {
				t.Errorf("web-1's own clock line %s %v, want 10:50", hw, ok)
			}
		})
	}
	if err := CheckEventTime(now.Add(time.Hour), now, maxFuture); err == nil ||
		!strings.Contains(err.Error(), "1h0m0s ahead of the wall clock") {
		t.Errorf("error %v does not say how far ahead", err)
	}
}

// TestRestoreDiscardsPoisonedClock: a clock carried by the changelog from
// beyond the wall clock plus MaxFuture at restart is dropped, so a poison
// does not outlive a restart.
func TestRestoreDiscardsPoisonedClock(t *testing.T) {
	y2099 := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	// A partition whose wall clock read 2099 (the state an older version,
	// which had no future bound, could write).
	poisoned := func(t *testing.T) []StateChange {
		p := newTestPartition(t, finalMode)
		process(p, positive("web-1", "100", at(10, 0, 0, 0)))
		p.Process(positive("mallory", "6", y2099), y2099, nil)
		p.Advance(y2099, y2099, nil)
		return p.DrainChanges(nil)
	}
	cases := []struct {
		name      string
		log       func(t *testing.T) []StateChange
		wantCount int64 // web-1's FINAL
	}{
		{"meta version 1 watermark", func(t *testing.T) []StateChange {
			v := []byte{'M', 1, 1}
			v = binary.AppendVarint(v, y2099.Add(-10*time.Minute).UnixNano())
			return []StateChange{{Key: []byte(metaKey), Value: append(v, 0)}}
		}, 3},
		// The poisoned run closed web-1's first window at its 2099 wall
		// clock; that window reopens for the matches after the restart.
		{"partition and host clocks", poisoned, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Emit = EmitFinal
			p := restoreAll(t, cfg, c.log(t))
			now := at(10, 5, 0, 0)
			var rs []Result
			for _, m := range []int{5, 6, 7} {
				rs = p.Process(positive("web-1", "100", at(10, m, 0, 0)), now, rs)
			}
			rs = p.Process(positive("mallory", "6", at(10, 8, 0, 0)), now, rs)
			for _, r := range rs {
				if r.Emission == EmissionLate || (r.Key.Dest == "web-1" && r.Emission != EmissionFinal) {
					t.Fatalf("restored poison still closes windows: %+v", rs)
				}
			}
			if s := p.Stats(); s.ClocksDiscarded == 0 || !p.Watermark().Before(now) {
				t.Errorf("stats %+v, watermark %s: want discarded clocks and a watermark before %s", s, p.Watermark(), now)
			}
			// The repaired clocks are what the next drain persists.
			again := restoreAll(t, cfg, append(c.log(t), p.DrainChanges(nil)...))
			again.Advance(at(10, 9, 0, 0), now, nil)
			if s := again.Stats(); s.ClocksDiscarded != 0 {
				t.Errorf("a second restore still found poisoned clocks: %+v", s)
			}
			var web1 []Result
			for _, r := range p.Flush(rs[:0]) {
				if r.Key.Dest == "web-1" {
					web1 = append(web1, r)
				}
			}
			if len(web1) != 1 || web1[0].Count != c.wantCount {
				t.Errorf("web-1's results %+v, want one FINAL of count %d", web1, c.wantCount)
			}
		})
	}
}

func TestConfigValidateBounds(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string // "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"zero max future", func(c *Config) { c.MaxFuture = 0 }, "MaxFuture: must be positive"},
		{"huge max future", func(c *Config) { c.MaxFuture = 400 * 24 * time.Hour }, "MaxFuture: must be positive and at most 8784h0m0s"},
		{"negative max state bytes", func(c *Config) { c.MaxStateBytes = -1 }, "MaxStateBytes: must not be negative"},
		{"unbounded state bytes", func(c *Config) { c.MaxStateBytes = 0 }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			c.mutate(&cfg)
			err := cfg.Validate()
			if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
				t.Errorf("Validate() = %v, want %q", err, c.want)
			}
		})
	}
}

// TestCatchUpWithAppendTimes: reading a backlog, the worker passes each
// record's append time as its arrival, so the partition clock is held to
// the backlog's own time: an event dated ahead of its append time by more
// than MaxFuture is ignored, one dated "now" relative to an old append is
// bounded by that append time, and the real idle timer (Ticks between
// polls) does not mistake old arrivals for idleness.
func TestCatchUpWithAppendTimes(t *testing.T) {
	p := newTestPartition(t, finalMode)
	wall := at(18, 0, 0, 0) // the consumer restarts hours later
	p.Tick(wall, nil)
	var rs []Result
	// The backlog: web-1's matches at 10:40..10:49, appended a second later;
	// mallory's record, appended at 10:41, is dated 18:00.
	rs = p.Process(positive("web-1", "1", at(10, 40, 0, 0)), at(10, 40, 1, 0), rs)
	rs = p.Advance(wall, at(10, 41, 0, 0), rs)
	rs = p.Process(negative("mallory", wall), at(10, 41, 0, 0), rs)
	rs = p.Tick(wall.Add(time.Minute), rs) // a poll came back empty
	for m := 42; m < 50; m++ {
		rs = p.Process(positive("web-1", "1", at(10, m, 0, 0)), at(10, m, 1, 0), rs)
	}
	rs = p.Tick(wall.Add(90*time.Second), rs)
	rs = p.Advance(at(11, 0, 0, 0), at(11, 0, 1, 0), rs)
	if len(rs) != 1 || rs[0].Emission != EmissionFinal || rs[0].Count != 9 {
		t.Fatalf("got %+v, want one FINAL of count 9", rs)
	}
	if s := p.Stats(); s.Ignored != 2 {
		t.Errorf("stats %+v, want mallory's two records ignored", s)
	}
}
