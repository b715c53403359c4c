package decode

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/sshlateral/sshlateral/processor"
)

// seedLines adds every line of the real and synthetic test data to the
// corpus, plus hand-made edge cases.
func seedLines(f *testing.F, globs ...string) {
	f.Helper()
	seedLinesWith(f, func(b []byte) { f.Add(b) }, globs...)
}

// seedLinesWith is seedLines with the corpus entry made by add.
func seedLinesWith(f *testing.F, add func([]byte), globs ...string) {
	f.Helper()
	n := 0
	for _, g := range globs {
		paths, err := filepath.Glob(g)
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range paths {
			for _, line := range readLines(f, p) {
				add(line)
				n++
			}
		}
	}
	if n == 0 {
		f.Fatalf("no seed lines in %v", globs)
	}
}

var sysmonSeedGlobs = []string{
	"../../testdata/real/*/*.log",
	"../../testdata/synthetic/positives.log",
	"../../cmd/sshlateral/sample/events.log",
}

var cimSeedGlobs = []string{"../../testdata/synthetic/positives_cim.json"}

// jsonSeedGlobs are the line-per-record files of every JSON format, real
// and synthetic.
var jsonSeedGlobs = []string{
	"../../testdata/synthetic/positives_auditd.log",
	"../../testdata/synthetic/positives_cim.json",
	"../../testdata/synthetic/positives_*.jsonl",
	"../../testdata/real/*/*.jsonl",
}

// shapeSeeds are hand-made records of every JSON shape, including broken
// envelopes.
var shapeSeeds = []string{
	`{"_time":"1793613600.100","_raw":"<Event><System><EventID>1</EventID></System><EventData><Data Name=\"UtcTime\">2026-11-02 10:00:00.100</Data><Data Name=\"Image\">/usr/bin/ssh</Data></EventData></Event>"}`,
	`{"time":1793613600.1,"host":"h","event":{"process_name":"ssh","process":"ssh -oBatchMode=yes x"}}`,
	`{"time":1793613600.1,"host":"h","event":"\u003cEvent\u003e\u003c/Event\u003e"}`,
	`{"message":"{\"log\":\"x\"}"}`,
	`{"log":"Oct 24 17:05:31 h sysmon[3041]: Sysmon v1.0.0 - Monitors system events"}`,
	`{"event":{"event":{"event":{"event":{"_time":1,"dest":"h"}}}}}`,
	`{"@timestamp":"2026-11-02T10:00:00Z","event":{"category":["process"],"type":["start"]},"process":{"name":"ssh","args":["ssh","-oBatchMode=yes","h"],"parent":{"pid":1}},"host":{"name":"h"}}`,
	`{"@timestamp":1793613600100,"event.category":"process","event.type":"start","process.name":"SSH","process.command_line":"ssh x","user.name":"u"}`,
	`{"class_uid":1007,"activity_id":1,"time":1793613600100,"process":{"name":"ssh","cmd_line":"ssh x","parent_process":{"pid":2}},"actor":{"process":{"name":"bash"}},"device":{"name":"d"}}`,
	`{"@timestamp":"2026-11-02T10:00:00Z","record_type":"syscall","result":"success","data":{"syscall":"execve"},"process":{"pid":"1","ppid":"2","exe":"/usr/bin/ssh","args":["ssh","h"]},"user":{"ids":{"uid":"0"}}}`,
	`{"_raw":"\"","time":"x"}`,
	`{"message":5}`,
	"node=h type=SYSCALL msg=audit(1793613600.100:7): arch=c000003e syscall=59 success=yes ppid=1 pid=2 uid=0 comm=\"ssh\" exe=\"/usr/bin/ssh\"\x1dUID=\"root\"\n" +
		"node=h type=EXECVE msg=audit(1793613600.100:7): argc=3 a0=\"ssh\" a1=\"-oBatchMode=yes\" a2_len=8 a2[0]=687474703A2F2F78\n" +
		"node=h type=PROCTITLE msg=audit(1793613600.100:7): proctitle=737368\ntype=EOE msg=audit(1793613600.100:7): ",
}

// sysmonEdgeSeeds exercise the spots where the fast scanner and encoding/xml
// could part ways.
var sysmonEdgeSeeds = []string{
	`<Event><System><EventID>1</EventID><Computer>h&amp;x</Computer></System><EventData><Data Name="UtcTime">2026-11-02 10:00:00.000</Data><Data Name="Image">/usr/bin/&#115;sh</Data><Data Name="CommandLine">ssh -oBatchMode=yes &#x68;ttp://x</Data></EventData></Event>`,
	`<Event ><System ><EventID >1</EventID ><TimeCreated SystemTime = '2026-11-02T10:00:00Z' /></System><EventData><Data Name='Image' >a&#13;&#10;b&#xD;c` + "\r\n" + `d</Data><Data Name="User"/></EventData></Event >`,
	`<Event><System><EventID>01</EventID></System><EventData><Data Name="Utc&#84;ime">2026-11-02 10:00:00.5</Data></EventData></Event> trailing`,
	`Nov  2 10:00:01 h sysmon: <Event><System><EventID>1</EventID></System><EventData><Data Name="Image">/bin/ssh</Data></EventData></Event>`,
	`2026-11-02T10:00:01.5+01:00 h sysmon: <Event><System><EventID>1</EventID></System></Event>`,
	`<Event><System><EventID>1</EventID><x><y/></x></System><EventData><Data Name="Image" Name="ProcessId">7</Data><Data>z</Data></EventData><!-- c --></Event>`,
	`<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System><EventID Qualifiers="">1</EventID></System><EventData><Data Name="UtcTime">2026-02-29 10:00:00.000</Data></EventData></Event>`,
	`<Event><System><EventID>1</EventID><EventID>5</EventID></System></Event>`,
	`<Event><System><EventID>1</EventID></System><EventData><Data Name="CommandLine">a<b/>c</Data></EventData></Event>`,
	`<Event><System><EventID>23</EventID></System></Event>`,
	`<Event/>`,
	`<Event><System><EventID>1</EventID>`,
}

// FuzzSysmonDifferential checks the fast Sysmon decoder against
// encoding/xml: whenever the reference reads an EventID 1 event with a usable
// time, the fast decoder must produce the identical processor.Event, unless
// it reports errLayout (the documented restrictions in sysmon.go). It also
// checks the skip reason for other EventIDs.
func FuzzSysmonDifferential(f *testing.F) {
	seedLines(f, sysmonSeedGlobs...)
	for _, s := range sysmonEdgeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		d := newTestDecoder(t, FormatSysmon)
		var got processor.Event
		out, err := d.DecodeFull(line, &got)
		ref := refDecodeSysmon(line, fixedNow)
		if !ref.ok || !ref.idOK {
			return
		}
		if err != nil {
			if errors.Is(err, errLayout) {
				return
			}
			if ref.eventID == 1 && !ref.timeOK {
				return // both reject: no usable time
			}
			t.Fatalf("fast decoder: %v; encoding/xml read EventID %d: %+v", err, ref.eventID, ref.event)
		}
		if ref.eventID != 1 {
			if out != OutcomeSkip || d.LastSkipReason() != skipReasonForEventID(uint32(ref.eventID)) {
				t.Fatalf("EventID %d: got %v %q", ref.eventID, out, d.LastSkipReason())
			}
			return
		}
		if !ref.timeOK {
			t.Fatalf("fast decoder found a time the reference did not: %v", got.Time)
		}
		if out != OutcomeEvent {
			t.Fatalf("EventID 1: got %v %q", out, d.LastSkipReason())
		}
		if diff := diffEvents(got, ref.event); diff != "" {
			t.Fatalf("fast != encoding/xml: %s", diff)
		}
	})
}

// FuzzCIMDifferential checks the CIM scanner against encoding/json: the same
// records are accepted, and accepted records give identical events.
func FuzzCIMDifferential(f *testing.F) {
	seedLines(f, cimSeedGlobs...)
	for _, s := range cimEdgeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		if len(bytes.TrimSpace(rec)) == 0 || len(trimLineEnd(rec)) == 0 {
			return // an empty record is a skip, not JSON
		}
		d := newTestDecoder(t, FormatCIM)
		var got processor.Event
		out, err := d.DecodeFull(rec, &got)
		want, refErr := refDecodeCIM(rec)
		if (err != nil) != (refErr != nil) {
			t.Fatalf("scanner error %v, encoding/json error %v", err, refErr)
		}
		if err != nil {
			return
		}
		if out != OutcomeEvent {
			t.Fatalf("outcome %v", out)
		}
		if diff := diffEvents(got, want); diff != "" {
			t.Fatalf("scanner != encoding/json: %s", diff)
		}
	})
}

// FuzzPrefilterNeverRejectsMatch is the prefilter's contract, for every
// format: Decode never turns an event that DecodeFull
// decodes and processor.Match accepts (either mode) into anything but the
// same event; skips stay skips with the same reason; NoMatch carries the
// event's time and nothing else; and Decode never yields an event that
// DecodeFull would not.
func FuzzPrefilterNeverRejectsMatch(f *testing.F) {
	seedLinesWith(f, func(b []byte) { f.Add(b, uint8(FormatAuto)) }, append(append([]string{}, sysmonSeedGlobs...), jsonSeedGlobs...)...)
	for _, s := range sysmonEdgeSeeds {
		f.Add([]byte(s), uint8(FormatAuto))
	}
	for _, s := range cimEdgeSeeds {
		f.Add([]byte(s), uint8(FormatCIM))
	}
	for i, s := range shapeSeeds {
		f.Add([]byte(s), uint8(i%int(numFormats)))
	}
	f.Fuzz(func(t *testing.T, line []byte, format uint8) {
		full := newTestDecoder(t, Format(format%uint8(numFormats)))
		pre := newTestDecoder(t, Format(format%uint8(numFormats)))
		// Records are lines, so that auditd assemblies span several.
		for _, rec := range bytes.Split(line, []byte("\n")) {
			var a, b processor.Event
			oa, errA := full.DecodeFull(rec, &a)
			ob, errB := pre.Decode(rec, &b)
			comparePrefilter(t, full, pre, oa, ob, errA, errB, &a, &b)
		}
		if full.Expire(time.Time{}) != pre.Expire(time.Time{}) {
			t.Fatal("different numbers of completed assemblies")
		}
		for {
			var a, b processor.Event
			oa, okA, errA := full.Ready(&a)
			ob, okB, errB := pre.Ready(&b)
			if okA != okB {
				t.Fatal("Ready disagrees")
			}
			if !okA {
				break
			}
			comparePrefilter(t, full, pre, oa, ob, errA, errB, &a, &b)
		}
	})
}

// comparePrefilter holds one outcome of Decode (pre, b) to the one of
// DecodeFull (full, a) for the same record.
func comparePrefilter(t *testing.T, full, pre *Decoder, oa, ob Outcome, errA, errB error, a, b *processor.Event) {
	t.Helper()
	if errB == nil && ob == OutcomeEvent {
		if errA != nil || oa != OutcomeEvent {
			t.Fatalf("Decode gave an event, DecodeFull %v %v", oa, errA)
		}
	}
	if errA != nil {
		return
	}
	switch oa {
	case OutcomeSkip:
		if errB != nil || ob != OutcomeSkip || pre.LastSkipReason() != full.LastSkipReason() {
			t.Fatalf("skip %q became %v %q %v", full.LastSkipReason(), ob, pre.LastSkipReason(), errB)
		}
	case OutcomePending:
		if errB != nil || ob != OutcomePending {
			t.Fatalf("pending became %v %v", ob, errB)
		}
	case OutcomeEvent:
		matches := processor.Match(processor.MatchESCU, a) || processor.Match(processor.MatchRobust, a)
		if errB != nil {
			t.Fatalf("Decode: %v; DecodeFull: event (match %v)", errB, matches)
		}
		switch ob {
		case OutcomeEvent:
			if diff := diffEvents(*a, *b); diff != "" {
				t.Fatalf("Decode != DecodeFull: %s", diff)
			}
		case OutcomeNoMatch:
			if matches {
				t.Fatalf("prefilter rejected a match: %+v", *a)
			}
			if diff := diffEvents(*b, processor.Event{Time: a.Time}); diff != "" {
				t.Fatalf("NoMatch event: %s", diff)
			}
		default:
			t.Fatalf("process event became %v", ob)
		}
	default:
		t.Fatalf("DecodeFull returned %v", oa)
	}
}

// FuzzDecode runs the decoders over arbitrary input in every format: no
// panic, no out-of-range index, and an error or a consistent outcome.
func FuzzDecode(f *testing.F) {
	seedLines(f, append(append([]string{}, sysmonSeedGlobs...), jsonSeedGlobs...)...)
	for _, s := range shapeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		for format := range numFormats {
			d, err := NewDecoder(format, WithEnvelopeField("payload.raw"))
			if err != nil {
				t.Fatal(err)
			}
			d.SetNow(fixedNow)
			var ev processor.Event
			for _, decode := range []func([]byte, *processor.Event) (Outcome, error){d.Decode, d.DecodeFull} {
				out, err := decode(line, &ev)
				if err != nil {
					if err.Error() == "" {
						t.Fatal("empty error")
					}
					continue
				}
				if out == OutcomePending && d.InFlight() == 0 {
					t.Fatal("pending with nothing in flight")
				}
				if (out == OutcomeSkip) != (d.LastSkipReason() != "") {
					t.Fatalf("%v with skip reason %q", out, d.LastSkipReason())
				}
				if out == OutcomeNoMatch && (ev != processor.Event{Time: ev.Time}) {
					t.Fatalf("NoMatch with fields set: %+v", ev)
				}
			}
		}
	})
}
