package main

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sshlateral/sshlateral/consumer/decode"
	"github.com/sshlateral/sshlateral/processor"
)

func testRow(dest, pid string, count int64) resultRow {
	return resultRow{Dest: dest, User: "root", ParentProcessName: "bash", ProcessName: "ssh", Process: "ssh x",
		ProcessID: pid, ParentProcessID: "1", Count: count, FirstTime: "2025-03-10T08:00:00", LastTime: "2025-03-10T08:00:00",
		WindowStart: time.Date(2025, 3, 10, 7, 50, 0, 0, time.UTC)}
}

func TestRowDiff(t *testing.T) {
	a, b, c := testRow("a", "1", 1), testRow("b", "2", 1), testRow("c", "3", 1)
	tests := []struct {
		name      string
		got, want []resultRow
		wantDiff  []string // substrings; none: equal
	}{
		{"equal", []resultRow{a, b, c}, []resultRow{a, b, c}, nil},
		{"both empty", nil, []resultRow{}, nil},
		{"missing row", []resultRow{a, c}, []resultRow{a, b, c}, []string{"missing dest=b"}},
		{"extra row", []resultRow{a, b, c}, []resultRow{a, c}, []string{"extra dest=b"}},
		{"duplicate row", []resultRow{a, a, b}, []resultRow{a, b}, []string{"extra dest=a"}},
		{"other count", []resultRow{a, testRow("b", "2", 2)}, []resultRow{a, b}, []string{"missing dest=b", "extra dest=b", "count=2"}},
		{"other window", []resultRow{a, {Dest: "a", ProcessID: "1"}}, []resultRow{a, a}, []string{"missing dest=a", "extra dest=a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := rowDiff(tc.got, tc.want, 5)
			if len(tc.wantDiff) == 0 && d != "" {
				t.Fatalf("diff %q, want none", d)
			}
			if len(tc.wantDiff) > 0 && d == "" {
				t.Fatal("no diff, want one")
			}
			for _, s := range tc.wantDiff {
				if !strings.Contains(d, s) {
					t.Errorf("diff %q does not name %q", d, s)
				}
			}
		})
	}
}

func TestCheckRows(t *testing.T) {
	a, b := testRow("a", "1", 1), testRow("b", "2", 1)
	h := &benchHarness{rep: &benchReport{Stream: streamInfo{Positives: 2}}}
	if h.checkRows("first, short", []resultRow{a}) || len(h.rep.Failures) != 1 {
		t.Fatalf("a first pass with 1 row for 2 matching events passed; failures %q", h.rep.Failures)
	}
	if !h.checkRows("first", []resultRow{a, b}) || len(h.rep.Failures) != 1 {
		t.Fatalf("a first pass with one row per matching event failed; failures %q", h.rep.Failures)
	}
	if !h.checkRows("same", []resultRow{a, b}) {
		t.Fatalf("an equal pass failed: %q", h.rep.Failures)
	}
	if h.checkRows("peer", []resultRow{a, testRow("b", "2", 3)}) || len(h.rep.Failures) != 2 ||
		!strings.Contains(h.rep.Failures[1], "peer: result rows differ from first's") {
		t.Fatalf("a differing pass passed; failures %q", h.rep.Failures)
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{"none", nil, 0},
		{"one", []float64{3}, 3},
		{"odd", []float64{5, 1, 3}, 3},
		{"even", []float64{4, 1, 3, 2}, 2.5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := median(tc.in); got != tc.want {
				t.Errorf("median(%v) = %g, want %g", tc.in, got, tc.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	ph := func(name string, eps, cpuEv float64, differ bool) phaseReport {
		return phaseReport{Name: name, EventsPerSec: eps, CPUPerEvent: cpuEv, RowsDiffer: differ}
	}
	phases := []phaseReport{
		ph(phaseRaw, 100, 2, false), ph("pipe", 60, 3, false), ph("peer", 10, 20, false),
		ph("peer", 12, 22, true), ph("pipe", 80, 3.2, false), ph(phaseRaw, 120, 2, false),
		ph(phaseRaw, 500, 1, false), ph("pipe", 70, 2.8, false),
	}
	rows := summarize(phases, []string{phaseRaw, "pipe", "peer"})
	want := []struct {
		name          string
		runs          int
		eps, xraw, cx float64
		differ        bool
	}{
		{phaseRaw, 3, 120, 1, 1, false},
		{"pipe", 3, 70, 70.0 / 120, 3.0 / 2, false},
		{"peer", 2, 11, 11.0 / 120, 21.0 / 2, true},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for i, w := range want {
		r := rows[i]
		near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
		if r.Name != w.name || r.Runs != w.runs || !near(r.EventsPerSec, w.eps) || !near(r.XRaw, w.xraw) ||
			!near(r.CPUXRaw, w.cx) || r.RowsDiffer != w.differ {
			t.Errorf("row %d: %+v, want %+v", i, r, w)
		}
	}
}

// TestClosingRecords checks that the closing records, one per partition,
// close the windows of everything before them: a matching event's group is
// emitted when its partition reads the closer.
func TestClosingRecords(t *testing.T) {
	cfg := testGenConfig(t, "sysmon", 500)
	gen, err := newGenerator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := decode.NewDecoder(decode.FormatSysmon)
	if err != nil {
		t.Fatal(err)
	}
	pcfg := processor.DefaultConfig()
	pcfg.Emit = processor.EmitFinal
	part, err := processor.NewPartition(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var ev processor.Event
	var results []processor.Result
	var lastPositive genRecord
	for i := range cfg.Events {
		_, rec := gen.next(nil, i, time.Time{})
		if _, err := dec.DecodeFull(rec.Value, &ev); err != nil {
			t.Fatal(err)
		}
		results = part.Process(&ev, now, results)
	}
	// A matching event at the very end of the stream, in its last window.
	i := cfg.Events
	for gen.kindOf(i) != kindPositive {
		i++
	}
	_, lastPositive = gen.next(nil, i, cfg.Start.Add(cfg.Span))
	if _, err := dec.DecodeFull(lastPositive.Value, &ev); err != nil {
		t.Fatal(err)
	}
	part.Process(&ev, now, results)
	results = results[:0]
	closers := closingRecords(gen, cfg, "in", 4)
	if len(closers) != 4 {
		t.Fatalf("%d closing records, want 4", len(closers))
	}
	for p, r := range closers {
		if r.Partition != int32(p) || r.Topic != "in" {
			t.Errorf("closer %d: topic %s partition %d", p, r.Topic, r.Partition)
		}
		out, err := dec.DecodeFull(r.Value, &ev)
		if err != nil || out != decode.OutcomeEvent {
			t.Fatalf("closer %d: outcome %v, err %v", p, out, err)
		}
		if processor.Match(processor.MatchESCU, &ev) {
			t.Errorf("closer %d matches the detection", p)
		}
		results = part.Process(&ev, now, results)
	}
	found := false
	for _, r := range results {
		found = found || (r.Key.ProcessID == lastPositive.PID && r.Emission == processor.EmissionFinal)
	}
	if !found {
		t.Errorf("the closers emitted %d results, none FINAL for the last matching event (pid %q)", len(results), lastPositive.PID)
	}
	if open := part.Stats().OpenGroups; open != 0 {
		t.Errorf("%d groups still open after the closers", open)
	}
}

func TestProcessCPU(t *testing.T) {
	if got := processCPU(0); got != 0 {
		t.Errorf("processCPU(0) = %s, want 0", got)
	}
	if got := processCPU(math.MaxInt32); got != 0 {
		t.Errorf("processCPU of no process = %s, want 0", got)
	}
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) {
	}
	if got := processCPU(os.Getpid()); got <= 0 {
		t.Errorf("processCPU(self) = %s after 50ms of work, want > 0", got)
	}
}
