package processor

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

func TestStateBytesAccounting(t *testing.T) {
	b := NewBudget(0)
	p := newTestPartition(t, func(c *Config) { c.Budget = b })
	var last int64
	for i := range 20 {
		// Twenty groups in one window, past the size where it indexes them.
		process(p, positive("web-1", fmt.Sprint(i), at(10, 0, i, 0)))
		s := p.Stats()
		if s.StateBytes <= last || b.Used() != s.StateBytes {
			t.Fatalf("after group %d: state bytes %d (was %d), budget %d", i+1, s.StateBytes, last, b.Used())
		}
		last = s.StateBytes
	}
	process(p, positive("web-2", "1", at(10, 1, 0, 0)))
	restored := restoreAll(t, p.cfg, p.DrainChanges(nil))
	if got, want := restored.Stats().StateBytes, p.Stats().StateBytes; got != want {
		t.Errorf("restored partition counts %d bytes, the original %d", got, want)
	}
	if b.Used() != 2*p.Stats().StateBytes || b.Partitions() != 2 {
		t.Errorf("budget holds %d bytes of %d partitions, want %d of 2", b.Used(), b.Partitions(), 2*p.Stats().StateBytes)
	}
	restored.Release()
	restored.Release()
	p.Flush(nil)
	if s := p.Stats(); s.StateBytes != 0 || s.Hosts != 0 || b.Used() != 0 || b.Partitions() != 1 {
		t.Errorf("after Flush and Release: %+v, budget %d bytes of %d partitions", s, b.Used(), b.Partitions())
	}
}

// groupBytes is what one group of positive() costs alone in its window.
func groupBytes(t *testing.T) int64 {
	t.Helper()
	p := newTestPartition(t, nil)
	process(p, positive("web-1", "1", at(10, 0, 0, 0)))
	return p.Stats().StateBytes
}

func TestMaxStateBytesForcesOldestWindow(t *testing.T) {
	per := groupBytes(t)
	p := newTestPartition(t, func(c *Config) { c.Emit = EmitFinal; c.MaxStateBytes = 3*per + per/2 })
	var rs []Result
	// zulu's window ends at 09:50, the others' at 10:50.
	for i, dest := range []string{"zulu", "alpha", "bravo", "charlie"} {
		rs = p.Process(positive(dest, "1", at(9, 40+11*min(i, 1)+i, 0, 0)), at(9, 55, 0, 0), rs)
	}
	r := wantOne(t, rs, EmissionFinal)
	if r.Key.Dest != "zulu" || p.Stats().Forced != 1 || p.Stats().StateBytes > 3*per+per/2 {
		t.Errorf("forced %+v, stats %+v: want zulu's window (oldest end) under %d bytes", r, p.Stats(), 3*per+per/2)
	}
	wantOne(t, p.Process(positive("zulu", "1", at(9, 41, 0, 0)), at(9, 55, 0, 0), nil), EmissionLate)
}

// TestSharedBudget: partitions sharing a budget shed only while they hold
// more than their share of an exceeded budget.
func TestSharedBudget(t *testing.T) {
	per := groupBytes(t)
	b := NewBudget(4 * per)
	cfg := func(c *Config) { c.Emit = EmitFinal; c.Budget = b; c.MaxStateBytes = 0 }
	heavy, light := newTestPartition(t, cfg), newTestPartition(t, cfg)
	now := at(10, 30, 0, 0)
	for i := range 4 {
		if rs := heavy.Process(positive(fmt.Sprint("h", i), "1", at(10, i, 0, 0)), now, nil); len(rs) != 0 {
			t.Fatalf("heavy alone within the budget emitted %+v", rs)
		}
	}
	// light is under its share (half): it keeps its group although the
	// total is over the limit.
	if rs := light.Process(positive("l0", "1", at(10, 0, 0, 0)), now, nil); len(rs) != 0 {
		t.Fatalf("light partition shed %+v", rs)
	}
	if b.Used() <= b.Limit() {
		t.Fatalf("budget %d of %d not exceeded", b.Used(), b.Limit())
	}
	// heavy sheds at its next call, oldest first, until under its share.
	rs := heavy.Tick(now, nil)
	if len(rs) != 2 || rs[0].Key.Dest != "h0" || rs[1].Key.Dest != "h1" {
		t.Fatalf("heavy shed %+v, want h0 and h1", rs)
	}
	if b.Used() > b.Limit() || light.Stats().Forced != 0 {
		t.Errorf("budget %d of %d after shedding, light forced %d", b.Used(), b.Limit(), light.Stats().Forced)
	}
}

// BenchmarkStateBytes measures the heap a partition's open groups keep
// (heapB/group, from runtime.MemStats after GC) and what the partition
// counts for them (countedB/group); the estimate should stay at or above
// the heap. Two groups per host window, strings of realistic length made
// fresh for each event as a decoder makes them.
func BenchmarkStateBytes(b *testing.B) {
	const groups = 20000
	now := at(10, 1, 0, 0)
	var heapPer, countedPer float64
	for b.Loop() {
		cfg := DefaultConfig()
		cfg.MaxOpenGroups = groups + 1
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		p, err := NewPartition(cfg)
		if err != nil {
			b.Fatal(err)
		}
		for i := range groups {
			e := Event{
				Time:              at(10, 0, i%60, 0),
				Dest:              fmt.Sprintf("host-%05d.prod.example.com", i/2),
				User:              fmt.Sprint("svc-", i%50),
				Process:           fmt.Sprint(positiveCommand, " #", i),
				ProcessName:       fmt.Sprint("ssh"),
				ProcessPath:       fmt.Sprint("/usr/bin/ssh"),
				ProcessID:         fmt.Sprint(10000 + i),
				ParentProcess:     fmt.Sprint("/bin/bash ./spread.sh ", i%7),
				ParentProcessName: fmt.Sprint("bash"),
				ParentProcessPath: fmt.Sprint("/bin/bash"),
				ParentProcessID:   fmt.Sprint(4000 + i%100),
				OriginalFileName:  fmt.Sprint("-"),
			}
			p.Process(&e, now, nil)
		}
		p.DrainChanges(nil) // the changelog encoding is transient
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		heapPer = float64(int64(ms1.HeapAlloc)-int64(ms0.HeapAlloc)) / groups
		countedPer = float64(p.Stats().StateBytes) / groups
		runtime.KeepAlive(p)
		p.Release()
	}
	b.ReportMetric(heapPer, "heapB/group")
	b.ReportMetric(countedPer, "countedB/group")
}

// TestDiscardChangesKeepsOnlyOpenState: without a changelog, closed groups
// must not stay reachable through the pending changes.
func TestDiscardChangesKeepsOnlyOpenState(t *testing.T) {
	for _, discard := range []bool{false, true} {
		p := newTestPartition(t, func(c *Config) { c.DiscardChanges = discard })
		for i := range 2000 {
			ts := at(0, 0, 0, 0).Add(time.Duration(i) * time.Minute)
			p.Process(positive(fmt.Sprint("host-", i%50), "1", ts), ts, nil)
		}
		pending := len(p.dirty) + len(p.dirtyHosts) + len(p.tombstones) + len(p.hostTombstones)
		switch {
		case discard && pending != 0:
			t.Errorf("DiscardChanges: %d pending changes kept", pending)
		case !discard && pending < 2000-p.Stats().OpenGroups:
			t.Errorf("with a changelog only %d changes pending, want every group", pending)
		}
		if changes := p.DrainChanges(nil); discard && (len(changes) != 1 || string(changes[0].Key) != metaKey) {
			t.Errorf("DiscardChanges drained %s, want only meta", describe(changes))
		}
	}
}
