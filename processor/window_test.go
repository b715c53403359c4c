package processor

import (
	"regexp"
	"testing"
	"time"
)

func finalMode(c *Config) { c.Emit = EmitFinal }

func wantOne(t *testing.T, rs []Result, em Emission) Result {
	t.Helper()
	if len(rs) != 1 {
		t.Fatalf("got %d results %+v, want one %s", len(rs), rs, em)
	}
	if rs[0].Emission != em {
		t.Fatalf("got %s, want %s: %+v", rs[0].Emission, em, rs[0])
	}
	return rs[0]
}

func wantWindow(t *testing.T, r Result, start, end time.Time) {
	t.Helper()
	if !r.WindowStart.Equal(start) || !r.WindowEnd.Equal(end) {
		t.Errorf("window [%s, %s), want [%s, %s)", r.WindowStart, r.WindowEnd, start, end)
	}
}

func TestWindowBoundary(t *testing.T) {
	cases := []struct {
		name       string
		at         time.Time
		start, end time.Time
	}{
		{"last millisecond before :50", at(10, 49, 59, 999), at(9, 50, 0, 0), at(10, 50, 0, 0)},
		{"exactly :50", at(10, 50, 0, 0), at(10, 50, 0, 0), at(11, 50, 0, 0)},
		{"midnight crossing", at(0, 10, 0, 0), day.Add(-10 * time.Minute), at(0, 50, 0, 0)},
		{"first window after the epoch", time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
			time.Date(1969, 12, 31, 23, 50, 0, 0, time.UTC), time.Date(1970, 1, 1, 0, 50, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newTestPartition(t, nil)
			r := wantOne(t, process(p, positive("web-1", "100", c.at)), EmissionEarly)
			wantWindow(t, r, c.start, c.end)
			if r.Count != 1 || !r.FirstSeen.Equal(c.at) || !r.LastSeen.Equal(c.at) || r.Revision != 0 {
				t.Errorf("EARLY %+v, want count 1 at %s revision 0", r, c.at)
			}
		})
	}
}

func TestWindowBoundaryEventsAreSeparateGroups(t *testing.T) {
	p := newTestPartition(t, nil)
	a := wantOne(t, process(p, positive("web-1", "100", at(10, 49, 59, 999))), EmissionEarly)
	b := wantOne(t, process(p, positive("web-1", "100", at(10, 50, 0, 0))), EmissionEarly)
	if a.AlertID == b.AlertID {
		t.Errorf("both sides of the boundary share alert id %s", a.AlertID)
	}
}

func TestDuplicatesRaiseCount(t *testing.T) {
	for _, mode := range []EmitMode{EmitEarly, EmitFinal} {
		t.Run(mode.String(), func(t *testing.T) {
			p := newTestPartition(t, func(c *Config) { c.Emit = mode })
			var rs []Result
			for _, ts := range []time.Time{at(10, 0, 0, 0), at(10, 10, 0, 0), at(10, 5, 0, 0)} {
				rs = append(rs, process(p, positive("web-1", "100", ts))...)
			}
			rs = append(rs, p.Advance(at(11, 0, 0, 0), at(11, 0, 1, 0), nil)...)
			final := rs[len(rs)-1]
			if final.Emission != EmissionFinal || final.Count != 3 ||
				!final.FirstSeen.Equal(at(10, 0, 0, 0)) || !final.LastSeen.Equal(at(10, 10, 0, 0)) {
				t.Fatalf("last result %+v, want FINAL count 3 from 10:00 to 10:10", final)
			}
			switch mode {
			case EmitEarly:
				if len(rs) != 2 || rs[0].Emission != EmissionEarly || rs[0].AlertID != final.AlertID || final.Revision != 1 {
					t.Errorf("early mode results %+v, want EARLY then FINAL revision 1 with one alert id", rs)
				}
			case EmitFinal:
				if len(rs) != 1 || final.Revision != 0 {
					t.Errorf("final mode results %+v, want one FINAL revision 0", rs)
				}
			}
			if s := p.Stats(); s.Matched != 3 || s.OpenGroups != 0 || s.OpenWindows != 0 {
				t.Errorf("stats %+v, want 3 matched and nothing open", s)
			}
		})
	}
}

func TestProcessIDReuseInNextWindow(t *testing.T) {
	p := newTestPartition(t, finalMode)
	if rs := process(p, positive("web-1", "100", at(10, 10, 0, 0))); len(rs) != 0 {
		t.Fatalf("final mode emitted %+v on the first match", rs)
	}
	// The second event moves the watermark to 11:00, closing the first window.
	first := wantOne(t, process(p, positive("web-1", "100", at(11, 10, 0, 0))), EmissionFinal)
	second := wantOne(t, p.Flush(nil), EmissionFinal)
	if first.Key != second.Key {
		t.Fatalf("keys differ: %+v vs %+v", first.Key, second.Key)
	}
	if first.AlertID == second.AlertID || first.Count != 1 || second.Count != 1 {
		t.Errorf("same key in two windows: %+v and %+v, want separate results", first, second)
	}
	wantWindow(t, first, at(9, 50, 0, 0), at(10, 50, 0, 0))
	wantWindow(t, second, at(10, 50, 0, 0), at(11, 50, 0, 0))
}

func TestOutOfOrderWithinGraceAndLate(t *testing.T) {
	p := newTestPartition(t, finalMode)
	process(p, positive("web-1", "100", at(10, 30, 0, 0)))
	process(p, positive("web-1", "200", at(10, 58, 0, 0))) // watermark 10:48
	if rs := process(p, positive("web-1", "100", at(10, 20, 0, 0))); len(rs) != 0 {
		t.Fatalf("out-of-order event within grace emitted %+v", rs)
	}
	if rs := p.Advance(at(10, 59, 59, 999), at(11, 0, 0, 0), nil); len(rs) != 0 {
		t.Fatalf("watermark 10:49:59.999 closed a window: %+v", rs)
	}
	final := wantOne(t, p.Advance(at(11, 0, 0, 0), at(11, 0, 1, 0), nil), EmissionFinal)
	if final.Key.ProcessID != "100" || final.Count != 2 || !final.FirstSeen.Equal(at(10, 20, 0, 0)) || !final.LastSeen.Equal(at(10, 30, 0, 0)) {
		t.Errorf("FINAL %+v, want pid 100 count 2 from 10:20 to 10:30", final)
	}
	if !p.Watermark().Equal(at(10, 50, 0, 0)) {
		t.Errorf("watermark %s, want 10:50", p.Watermark())
	}

	late := wantOne(t, process(p, positive("web-1", "100", at(10, 49, 59, 999))), EmissionLate)
	if late.Count != 1 || !late.FirstSeen.Equal(at(10, 49, 59, 999)) || !late.LastSeen.Equal(late.FirstSeen) || late.Revision != 0 {
		t.Errorf("LATE %+v, want count 1 at its own time, revision 0", late)
	}
	wantWindow(t, late, at(9, 50, 0, 0), at(10, 50, 0, 0))
	if late.AlertID == final.AlertID {
		t.Errorf("LATE reuses the window's alert id %s", late.AlertID)
	}
	if late.ParentProcess != "/bin/bash ./spread.sh" || late.ProcessPath != "/usr/bin/ssh" {
		t.Errorf("LATE lacks its event's context: %+v", late)
	}
	if s := p.Stats(); s.Late != 1 || s.Matched != 4 {
		t.Errorf("stats %+v, want 1 late of 4 matched", s)
	}
	// An event exactly at the watermark belongs to the open window.
	if rs := process(p, positive("web-1", "100", at(10, 50, 0, 0))); len(rs) != 0 {
		t.Errorf("event at the watermark emitted %+v", rs)
	}
}

func TestWatermarkNeverMovesBack(t *testing.T) {
	p := newTestPartition(t, nil)
	if !p.Watermark().IsZero() {
		t.Fatalf("new partition has watermark %s", p.Watermark())
	}
	p.Advance(at(12, 0, 0, 0), at(12, 0, 0, 0), nil)
	p.Advance(at(11, 0, 0, 0), at(12, 0, 1, 0), nil)
	process(p, negative("web-1", at(10, 0, 0, 0)))
	if !p.Watermark().Equal(at(11, 50, 0, 0)) {
		t.Errorf("watermark %s, want 11:50", p.Watermark())
	}
}

func TestIdleCloseByTick(t *testing.T) {
	t.Run("idle partition closes", func(t *testing.T) {
		p := newTestPartition(t, finalMode)
		process(p, positive("web-1", "100", at(10, 30, 0, 0))) // arrives 10:30:01
		if rs := p.Tick(at(10, 31, 0, 0), nil); len(rs) != 0 {
			t.Fatalf("Tick after 59s idle emitted %+v", rs)
		}
		final := wantOne(t, p.Tick(at(11, 0, 0, 0), nil), EmissionFinal)
		wantWindow(t, final, at(9, 50, 0, 0), at(10, 50, 0, 0))
		if !p.Watermark().Equal(at(10, 50, 0, 0)) {
			t.Errorf("watermark %s, want now-grace 10:50", p.Watermark())
		}
		p.Tick(at(10, 0, 0, 0), nil)
		if !p.Watermark().Equal(at(10, 50, 0, 0)) {
			t.Errorf("Tick moved the watermark back to %s", p.Watermark())
		}
	})
	t.Run("recent arrival keeps windows open", func(t *testing.T) {
		p := newTestPartition(t, finalMode)
		process(p, positive("web-1", "100", at(10, 30, 0, 0)))
		p.Advance(at(10, 31, 0, 0), at(10, 59, 30, 0), nil)
		if rs := p.Tick(at(11, 0, 0, 0), nil); len(rs) != 0 {
			t.Errorf("Tick 30s after an arrival emitted %+v", rs)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		p := newTestPartition(t, func(c *Config) { c.Emit = EmitFinal; c.IdleClose = 0 })
		process(p, positive("web-1", "100", at(10, 30, 0, 0)))
		if rs := p.Tick(at(23, 0, 0, 0), nil); len(rs) != 0 || p.Stats().OpenGroups != 1 {
			t.Errorf("disabled Tick emitted %+v", rs)
		}
	})
	t.Run("an idle partition without open windows keeps its clock", func(t *testing.T) {
		// A fresh partition idles before a backfill of older events
		// arrives: they must open windows, not be late.
		p := newTestPartition(t, nil)
		p.Tick(at(10, 0, 0, 0), nil)
		p.Tick(at(10, 1, 0, 0), nil)
		if !p.Watermark().IsZero() {
			t.Fatalf("idle Tick without open windows set watermark %s", p.Watermark())
		}
		wantOne(t, process(p, positive("web-1", "100", at(8, 0, 0, 0))), EmissionEarly)
	})
}

func TestEarlyAndFinalModes(t *testing.T) {
	stream := []*Event{
		positive("alpha", "100", at(10, 0, 0, 0)),
		positive("bravo", "300", at(10, 1, 0, 0)),
		positive("alpha", "100", at(10, 2, 0, 0)),
		negative("alpha", at(10, 3, 0, 0)),
		positive("alpha", "100", at(10, 4, 0, 0)),
	}
	type want struct {
		em    Emission
		dest  string
		count int64
		rev   int32
	}
	cases := []struct {
		name string
		mode EmitMode
		want []want
	}{
		{"early", EmitEarly, []want{
			{EmissionEarly, "alpha", 1, 0}, {EmissionEarly, "bravo", 1, 0},
			// bravo is unchanged since its EARLY: no FINAL.
			{EmissionFinal, "alpha", 3, 1},
		}},
		{"final", EmitFinal, []want{
			{EmissionFinal, "alpha", 3, 0}, {EmissionFinal, "bravo", 1, 0},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newTestPartition(t, func(cfg *Config) { cfg.Emit = c.mode })
			var rs []Result
			for _, e := range stream {
				rs = append(rs, process(p, e)...)
			}
			rs = p.Flush(rs)
			if len(rs) != len(c.want) {
				t.Fatalf("got %d results %+v, want %d", len(rs), rs, len(c.want))
			}
			for i, w := range c.want {
				r := rs[i]
				if r.Emission != w.em || r.Key.Dest != w.dest || r.Count != w.count || r.Revision != w.rev {
					t.Errorf("result %d = %s %s count %d rev %d, want %+v", i, r.Emission, r.Key.Dest, r.Count, r.Revision, w)
				}
			}
			if s := p.Stats(); s.OpenGroups != 0 || s.OpenWindows != 0 {
				t.Errorf("after Flush: %+v", s)
			}
			// Flush keeps the windows closed: a match in one is LATE.
			wantOne(t, process(p, positive("alpha", "100", at(10, 5, 0, 0))), EmissionLate)
		})
	}
}

func TestMissingFieldsAreNull(t *testing.T) {
	p := newTestPartition(t, nil)
	e := &Event{Time: at(10, 0, 0, 0), ProcessName: "ssh", Process: positiveCommand}
	r := wantOne(t, process(p, e), EmissionEarly)
	want := GroupKey{Dest: Null, User: Null, ParentProcessName: Null, ProcessName: "ssh",
		Process: positiveCommand, ProcessID: Null, ParentProcessID: Null}
	if r.Key != want {
		t.Errorf("key %+v, want %+v", r.Key, want)
	}
	if r.ParentProcess != "" || r.ProcessPath != "" || r.ParentProcessPath != "" || r.OriginalFileName != "" {
		t.Errorf("missing context filled in: %+v", r)
	}
	// A second event with the same missing fields joins the same group.
	if rs := process(p, &Event{Time: at(10, 1, 0, 0), ProcessName: "ssh", Process: positiveCommand}); len(rs) != 0 {
		t.Errorf("same null key emitted again: %+v", rs)
	}
}

func TestMaxOpenGroupsForcesOldestWindow(t *testing.T) {
	p := newTestPartition(t, func(c *Config) { c.Emit = EmitFinal; c.MaxOpenGroups = 2 })
	process(p, positive("zulu", "1", at(9, 40, 0, 0)))  // [08:50, 09:50)
	process(p, positive("alpha", "2", at(9, 55, 0, 0))) // [09:50, 10:50)
	forced := wantOne(t, process(p, positive("bravo", "3", at(9, 56, 0, 0))), EmissionFinal)
	if forced.Key.Dest != "zulu" || forced.Count != 1 {
		t.Errorf("forced %+v, want zulu's window, the one with the oldest end", forced)
	}
	if s := p.Stats(); s.Forced != 1 || s.OpenGroups != 2 || s.OpenWindows != 2 {
		t.Errorf("stats %+v, want 1 forced, 2 open groups in 2 windows", s)
	}
	// The force-closed window stays closed, before and after the watermark passes it.
	late := wantOne(t, process(p, positive("zulu", "1", at(9, 41, 0, 0))), EmissionLate)
	if late.AlertID == forced.AlertID {
		t.Errorf("LATE shares the forced window's alert id")
	}
	p.Advance(at(10, 0, 0, 0), at(10, 0, 1, 0), nil)
	wantOne(t, process(p, positive("zulu", "1", at(9, 42, 0, 0))), EmissionLate)
	if s := p.Stats(); s.Late != 2 {
		t.Errorf("late %d, want 2", s.Late)
	}

	t.Run("same end ties broken by dest", func(t *testing.T) {
		p := newTestPartition(t, func(c *Config) { c.Emit = EmitFinal; c.MaxOpenGroups = 2 })
		process(p, positive("charlie", "1", at(10, 0, 0, 0)))
		process(p, positive("alpha", "1", at(10, 1, 0, 0)))
		r := wantOne(t, process(p, positive("bravo", "1", at(10, 2, 0, 0))), EmissionFinal)
		if r.Key.Dest != "alpha" {
			t.Errorf("forced %s, want alpha", r.Key.Dest)
		}
		rs := p.Flush(nil)
		if len(rs) != 2 || rs[0].Key.Dest != "bravo" || rs[1].Key.Dest != "charlie" {
			t.Errorf("flush %+v, want bravo then charlie", rs)
		}
	})
	t.Run("early mode forced FINAL only if changed", func(t *testing.T) {
		p := newTestPartition(t, func(c *Config) { c.MaxOpenGroups = 1 })
		process(p, positive("alpha", "1", at(10, 0, 0, 0)))
		process(p, positive("alpha", "1", at(10, 1, 0, 0)))
		rs := process(p, positive("bravo", "1", at(10, 2, 0, 0)))
		if len(rs) != 2 || rs[0].Emission != EmissionEarly || rs[1].Emission != EmissionFinal ||
			rs[1].Key.Dest != "alpha" || rs[1].Revision != 1 || rs[1].Count != 2 {
			t.Fatalf("got %+v, want bravo's EARLY then alpha's forced FINAL revision 1", rs)
		}
		// bravo alone exceeds nothing; a third host forces bravo, unchanged: no FINAL.
		rs = process(p, positive("charlie", "1", at(10, 3, 0, 0)))
		if len(rs) != 1 || rs[0].Emission != EmissionEarly || p.Stats().Forced != 2 {
			t.Errorf("got %+v, stats %+v, want only charlie's EARLY and 2 forced", rs, p.Stats())
		}
	})
}

var alertIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestAlertIDs(t *testing.T) {
	run := func() []Result {
		p := newTestPartition(t, nil)
		var rs []Result
		rs = append(rs, process(p, positive("web-1", "100", at(10, 0, 0, 0)))...)
		rs = append(rs, process(p, positive("web-1", "100", at(10, 1, 0, 0)))...)
		rs = append(rs, process(p, positive("web-1", "100", at(11, 0, 0, 0)))...) // next window; closes the first
		rs = append(rs, process(p, positive("web-1", "100", at(10, 2, 0, 0)))...) // late
		rs = append(rs, process(p, positive("web-1", "100", at(10, 3, 0, 0)))...) // late
		return p.Flush(rs)
	}
	rs := run()
	// EARLY w1, EARLY w2, FINAL w1 (rev 1), LATE, LATE
	if len(rs) != 5 {
		t.Fatalf("got %d results %+v, want 5", len(rs), rs)
	}
	early1, early2, final1, late1, late2 := rs[0], rs[1], rs[2], rs[3], rs[4]
	if early1.Emission != EmissionEarly || early2.Emission != EmissionEarly || final1.Emission != EmissionFinal ||
		late1.Emission != EmissionLate || late2.Emission != EmissionLate {
		t.Fatalf("unexpected emissions %+v", rs)
	}
	for _, r := range rs {
		if !alertIDPattern.MatchString(r.AlertID) {
			t.Errorf("alert id %q is not 32 hex digits", r.AlertID)
		}
	}
	if early1.AlertID != final1.AlertID {
		t.Errorf("EARLY %s and FINAL %s of one group differ", early1.AlertID, final1.AlertID)
	}
	if early1.AlertID == early2.AlertID {
		t.Errorf("two windows share alert id %s", early1.AlertID)
	}
	if late1.AlertID == early1.AlertID || late1.AlertID == late2.AlertID {
		t.Errorf("LATE ids %s, %s collide with each other or the window %s", late1.AlertID, late2.AlertID, early1.AlertID)
	}
	again := run()
	for i := range rs {
		if rs[i].AlertID != again[i].AlertID {
			t.Errorf("result %d: alert id %s then %s on replay", i, rs[i].AlertID, again[i].AlertID)
		}
	}

	t.Run("fields are length-prefixed", func(t *testing.T) {
		a := GroupKey{Dest: "ab", User: "c", ParentProcessName: Null, ProcessName: "ssh", Process: "x", ProcessID: "1", ParentProcessID: "2"}
		b := a
		b.Dest, b.User = "a", "bc"
		if windowAlertID(0, 1e9, &a) == windowAlertID(0, 1e9, &b) {
			t.Error("shifting a byte between fields keeps the alert id")
		}
	})
	t.Run("every key field counts", func(t *testing.T) {
		base := KeyOf(positive("web-1", "100", day))
		id := windowAlertID(0, 1e9, &base)
		fields := []func(*GroupKey){
			func(k *GroupKey) { k.Dest = "web-2" }, func(k *GroupKey) { k.User = "admin" },
			func(k *GroupKey) { k.ParentProcessName = "sh" }, func(k *GroupKey) { k.ProcessName = "SSH" },
			func(k *GroupKey) { k.Process += " " }, func(k *GroupKey) { k.ProcessID = "101" },
			func(k *GroupKey) { k.ParentProcessID = "1" },
		}
		for i, change := range fields {
			k := base
			change(&k)
			if windowAlertID(0, 1e9, &k) == id {
				t.Errorf("changing field %d keeps the alert id", i)
			}
		}
	})
}

func TestClosingOrder(t *testing.T) {
	p := newTestPartition(t, func(c *Config) { c.Emit = EmitFinal; c.Grace = 30 * time.Minute })
	for _, e := range []*Event{
		positive("bravo", "1", at(10, 0, 0, 0)),
		positive("alpha", "2", at(10, 0, 0, 0)),
		positive("alpha", "1", at(10, 0, 0, 0)),
		positive("charlie", "1", at(9, 45, 0, 0)), // previous window, still within grace
	} {
		process(p, e)
	}
	rs := p.Flush(nil)
	got := make([]string, len(rs))
	for i, r := range rs {
		got[i] = r.Key.Dest + "/" + r.Key.ProcessID
	}
	want := []string{"charlie/1", "alpha/1", "alpha/2", "bravo/1"}
	if len(got) != len(want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}

func TestSteadyStateDoesNotAllocate(t *testing.T) {
	p := newTestPartition(t, nil)
	out := make([]Result, 0, 16)
	for i := range 10 {
		out = p.Process(positive("web-1", "100", at(10, i, 0, 0)), at(10, i, 1, 0), out[:0])
	}
	neg := negative("web-2", at(10, 20, 0, 0))
	dup := positive("web-1", "100", at(10, 21, 0, 0))
	now := at(10, 20, 1, 0)
	cases := []struct {
		name string
		fn   func()
	}{
		{"Process non-matching", func() { out = p.Process(neg, now, out[:0]) }},
		{"Advance", func() { out = p.Advance(neg.Time, now, out[:0]) }},
		{"Process duplicate match", func() { out = p.Process(dup, now, out[:0]) }},
		{"Tick", func() { out = p.Tick(now, out[:0]) }},
	}
	p.DrainChanges(nil) // the dirty list then holds the group once
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if allocs := testing.AllocsPerRun(200, c.fn); allocs != 0 {
				t.Errorf("%v allocations per call, want 0", allocs)
			}
		})
	}
}
