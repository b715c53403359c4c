package decode

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sshlateral/sshlateral/integration/escurow"
	"github.com/sshlateral/sshlateral/processor"
)

// testNow is the clock of test decoders: it fixes the year of RFC 3164
// timestamps.
var testNow = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return testNow }

func newTestDecoder(t testing.TB, f Format) *Decoder {
	t.Helper()
	d, err := NewDecoder(f)
	if err != nil {
		t.Fatalf("NewDecoder(%v): %v", f, err)
	}
	d.SetNow(fixedNow)
	return d
}

// readLines returns the lines of a file under testdata, each with its line
// terminator removed only as far as '\n' (a CR stays, as a consumer would
// see it).
func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func diffEvents(a, b processor.Event) string {
	var d []string
	if !a.Time.Equal(b.Time) {
		d = append(d, fmt.Sprintf("Time %v != %v", a.Time, b.Time))
	}
	a.Time, b.Time = time.Time{}, time.Time{}
	if a != b {
		d = append(d, fmt.Sprintf("fields\n  %+v\n  %+v", a, b))
	}
	return strings.Join(d, "; ")
}

func TestParseFormat(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Format
		wantErr bool
	}{
		{"auto", FormatAuto, false},
		{"sysmon", FormatSysmon, false},
		{"cim", FormatCIM, false},
		{"CIM", FormatCIM, false},
		{"ocsf", FormatOCSF, false},
		{"auditd", FormatAuditd, false},
		{"", 0, true},
		{"xml", 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseFormat(tc.in)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "auditd") {
					t.Fatalf("ParseFormat(%q) = %v, %v; want an error listing the formats", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseFormat(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
			if !strings.EqualFold(got.String(), tc.in) {
				t.Fatalf("String() = %q, want %q", got.String(), tc.in)
			}
		})
	}
	if _, err := NewDecoder(Format(9)); err == nil {
		t.Fatal("NewDecoder(9) succeeded")
	}
}

func TestDecodeDetection(t *testing.T) {
	sigma := readLines(t, "../../testdata/real/sigma_regression/gh_auth_token_sysmon_linux.log")[0]
	banner := []byte("Oct 24 17:05:31 james-ubuntu-demo sysmon[3041]: Sysmon v1.0.0 - Monitors system events")
	cim := []byte(`{"_time":"2026-11-02T10:00:00Z","dest":"h","process_name":"ls"}`)
	for _, tc := range []struct {
		name    string
		format  Format
		in      []byte
		want    Outcome
		reason  string
		wantErr string
	}{
		{"auto sysmon", FormatAuto, sigma, OutcomeEvent, "", ""},
		{"auto cim", FormatAuto, cim, OutcomeEvent, "", ""},
		{"auto cim leading blanks", FormatAuto, append([]byte(" \t"), cim...), OutcomeEvent, "", ""},
		{"auto banner", FormatAuto, banner, OutcomeSkip, SkipBanner, ""},
		{"auto rfc3339 banner", FormatAuto, []byte("2026-06-08T05:28:19.188419+00:00 host sysmon: Running..."), OutcomeSkip, SkipBanner, ""},
		{"auto empty", FormatAuto, []byte(""), OutcomeSkip, SkipEmpty, ""},
		{"auto blank crlf", FormatAuto, []byte("  \r\n"), OutcomeSkip, SkipEmpty, ""},
		{"auto auditd", FormatAuto, []byte("type=SYSCALL msg=audit(1492037289.295:58): arch=c000003e"), OutcomePending, "", ""},
		{"auto garbage", FormatAuto, []byte("hello"), 0, "", "unrecognised record format"},
		{"sysmon banner", FormatSysmon, banner, OutcomeSkip, SkipBanner, ""},
		{"sysmon json", FormatSysmon, cim, 0, "", "sysmon: no <Event> element"},
		{"sysmon no element", FormatSysmon, []byte("hello"), 0, "", "sysmon: no <Event> element"},
		{"sysmon not root", FormatSysmon, []byte("<Events><x/></Events>"), 0, "", "sysmon: no <Event> element"},
		{"cim xml", FormatCIM, sigma, 0, "", "cim: record is not a json object"},
		{"cim empty", FormatCIM, []byte("\n"), OutcomeSkip, SkipEmpty, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newTestDecoder(t, tc.format)
			var ev processor.Event
			out, err := d.DecodeFull(tc.in, &ev)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if out != tc.want || d.LastSkipReason() != tc.reason {
				t.Fatalf("got %v %q, want %v %q", out, d.LastSkipReason(), tc.want, tc.reason)
			}
		})
	}
}

// realSysmonCounts are the contents stated in each PROVENANCE.md.
var realSysmonCounts = []struct {
	path    string
	events  int
	reasons map[string]int
}{
	{"elastic_sysmon_linux/sysmon.log", 6, map[string]int{SkipBanner: 14, "event_id_3": 3, "event_id_4": 1, "event_id_5": 24, "event_id_16": 1, "event_id_23": 1}},
	{"elastic_sysmon_linux/sysmon_crlf.log", 6, map[string]int{SkipBanner: 14, "event_id_3": 3, "event_id_4": 1, "event_id_5": 24, "event_id_16": 1, "event_id_23": 1}},
	{"sigma_regression/gh_auth_token_sysmon_linux.log", 1, map[string]int{}},
	{"zircolite_sysmon_linux/sysmon_linux_sample.log", 0, map[string]int{"event_id_23": 5}},
}

func TestRealSysmonFiles(t *testing.T) {
	for _, tc := range realSysmonCounts {
		for _, format := range []Format{FormatAuto, FormatSysmon} {
			for _, prefilter := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%v/prefilter=%v", tc.path, format, prefilter), func(t *testing.T) {
					d := newTestDecoder(t, format)
					events, noMatch := 0, 0
					reasons := map[string]int{}
					for i, line := range readLines(t, filepath.Join("../../testdata/real", tc.path)) {
						var ev processor.Event
						var out Outcome
						var err error
						if prefilter {
							out, err = d.Decode(line, &ev)
						} else {
							out, err = d.DecodeFull(line, &ev)
						}
						if err != nil {
							t.Fatalf("line %d: %v", i+1, err)
						}
						switch out {
						case OutcomeEvent:
							events++
						case OutcomeNoMatch:
							noMatch++
						case OutcomeSkip:
							reasons[d.LastSkipReason()]++
						}
						if out != OutcomeSkip && ev.Time.IsZero() {
							t.Fatalf("line %d: no event time", i+1)
						}
					}
					// None of the real events holds "ssh": the prefilter
					// turns every process start into NoMatch.
					if prefilter {
						events, noMatch = noMatch, events
					}
					if events != tc.events || noMatch != 0 {
						t.Errorf("process events %d (other %d), want %d", events, noMatch, tc.events)
					}
					if fmt.Sprint(reasons) != fmt.Sprint(tc.reasons) {
						t.Errorf("skips %v, want %v", reasons, tc.reasons)
					}
				})
			}
		}
	}
}

func TestRealSysmonEvents(t *testing.T) {
	for _, tc := range []struct {
		name string
		path string
		line int // 1-based
		want processor.Event
	}{
		{
			name: "sigma v1.1 layout",
			path: "sigma_regression/gh_auth_token_sysmon_linux.log", line: 1,
			want: processor.Event{
				Time: time.Date(2026, 6, 8, 5, 28, 18, 790e6, time.UTC),
				Dest: "swachchhanda-ubuntu-wkstn", User: "ubuntu",
				Process: "/bin/sh -c gh auth token", ProcessName: "dash", ProcessPath: "/usr/bin/dash", ProcessID: "1752",
				ParentProcess: "node", ParentProcessName: "node", ParentProcessPath: "/home/ubuntu/.nvm/versions/node/v24.11.1/bin/node",
				ParentProcessID: "1745", OriginalFileName: "-",
			},
		},
		{
			name: "elastic v1.0.0 placeholders",
			path: "elastic_sysmon_linux/sysmon_crlf.log", line: 22,
			want: processor.Event{
				Time: time.Date(2021, 10, 24, 16, 42, 56, 564e6, time.UTC),
				Dest: "james-ubuntu-demo", User: "-", Process: "-", ProcessName: "-", ProcessPath: "-", ProcessID: "3100",
				ParentProcess: "-", ParentProcessName: "-", ParentProcessPath: "-", ParentProcessID: "0", OriginalFileName: "-",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := readLines(t, filepath.Join("../../testdata/real", tc.path))
			d := newTestDecoder(t, FormatAuto)
			var ev processor.Event
			out, err := d.DecodeFull(lines[tc.line-1], &ev)
			if err != nil || out != OutcomeEvent {
				t.Fatalf("got %v, %v", out, err)
			}
			if diff := diffEvents(ev, tc.want); diff != "" {
				t.Fatal(diff)
			}
		})
	}
}

// decodeFile decodes every line of path in full and returns the process
// events in time order, with the auditd assemblies left at the end; any
// error fails the test.
func decodeFile(t *testing.T, path string, format Format) []processor.Event {
	t.Helper()
	out, _ := decodeAll(t, format, readLines(t, path), true)
	slices.SortStableFunc(out, func(a, b processor.Event) int { return a.Time.Compare(b.Time) })
	return out
}

// decodeAll decodes recs (full: DecodeFull, else Decode), completes the
// auditd assemblies left at the end, and returns the process events in the
// order they came out and the number of skips; any error fails the test.
func decodeAll(t *testing.T, format Format, recs [][]byte, full bool) (events []processor.Event, skips int) {
	t.Helper()
	d := newTestDecoder(t, format)
	decode := d.Decode
	if full {
		decode = d.DecodeFull
	}
	take := func(i int, out Outcome, err error, ev processor.Event) {
		if err != nil {
			t.Fatalf("record %d: %v", i+1, err)
		}
		switch out {
		case OutcomeEvent:
			events = append(events, ev)
		case OutcomeSkip:
			skips++
		}
	}
	for i, r := range recs {
		var ev processor.Event
		out, err := decode(r, &ev)
		take(i, out, err, ev)
	}
	d.Expire(time.Time{})
	for {
		var ev processor.Event
		out, ok, err := d.Ready(&ev)
		if !ok {
			break
		}
		take(len(recs), out, err, ev)
	}
	if d.InFlight() != 0 {
		t.Fatalf("%d records still in flight", d.InFlight())
	}
	return events, skips
}

// syntheticShapes are the generator's files of the same process events in
// every JSON format. OCSF has no original file name.
var syntheticShapes = []struct {
	file   string
	format Format
	noOFN  bool
	// auditd records hold no parent name, path or command line.
	noParent bool
}{
	{"positives_cim.json", FormatCIM, false, false},
	{"positives_envelope.jsonl", FormatEnvelope, false, false},
	{"positives_hec.jsonl", FormatHEC, false, false},
	{"positives_ecs.jsonl", FormatECS, false, false},
	{"positives_ocsf.jsonl", FormatOCSF, true, false},
	{"positives_auditd.log", FormatAuditd, true, true},
}

func TestSyntheticSysmonEqualsEveryFormat(t *testing.T) {
	sysmon := decodeFile(t, "../../testdata/synthetic/positives.log", FormatSysmon)
	for _, sh := range syntheticShapes {
		for _, format := range []Format{sh.format, FormatAuto} {
			t.Run(sh.file+"/"+format.String(), func(t *testing.T) {
				got := decodeFile(t, "../../testdata/synthetic/"+sh.file, format)
				if len(got) != len(sysmon) || len(got) == 0 {
					t.Fatalf("%d events, %d Sysmon events", len(got), len(sysmon))
				}
				for i := range got {
					want := sysmon[i]
					if sh.noOFN {
						want.OriginalFileName = ""
					}
					if sh.noParent {
						want.ParentProcess, want.ParentProcessName, want.ParentProcessPath = "", "", ""
					}
					if diff := diffEvents(want, got[i]); diff != "" {
						t.Errorf("event %d: %s", i, diff)
					}
				}
			})
		}
	}
}

// TestSyntheticLabelsAgreeWithMatcher groups the decoded synthetic events
// that processor.Match accepts, per 60-minute window ending at :50, and
// compares them with the rows the generator derived from its own labels.
// The matcher table runs for each format's file.
func TestSyntheticLabelsAgreeWithMatcher(t *testing.T) {
	t.Run("positives.log", func(t *testing.T) {
		labelsAgree(t, decodeFile(t, "../../testdata/synthetic/positives.log", FormatSysmon), false)
	})
	for _, sh := range syntheticShapes {
		t.Run(sh.file, func(t *testing.T) {
			events := decodeFile(t, "../../testdata/synthetic/"+sh.file, sh.format)
			labelsAgree(t, events, sh.noParent)
		})
	}
}

// labelsAgree compares the rows the matcher gives with the generator's;
// noParent: the format has no parent name, so the rows have null there.
func labelsAgree(t *testing.T, events []processor.Event, noParent bool) {
	for _, tc := range []struct {
		mode processor.MatchMode
		file string
	}{
		{processor.MatchESCU, "positives.expected.json"},
		{processor.MatchRobust, "positives.expected_robust.json"},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			want, err := escurow.Load(filepath.Join("../../testdata/synthetic", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if noParent {
				for i := range want {
					want[i].ParentProcessName = processor.Null
				}
			}
			type key struct {
				window time.Time
				k      processor.GroupKey
			}
			got := map[key]*escurow.Row{}
			var order []key
			for i := range events {
				e := &events[i]
				if !processor.Match(tc.mode, e) {
					continue
				}
				w := e.Time.Add(-50 * time.Minute).Truncate(time.Hour).Add(50 * time.Minute)
				k := key{w, processor.KeyOf(e)}
				r := got[k]
				ts := e.Time.Format(escurow.TimeLayout)
				if r == nil {
					r = &escurow.Row{Dest: k.k.Dest, User: k.k.User, ParentProcessName: k.k.ParentProcessName,
						ProcessName: k.k.ProcessName, Process: k.k.Process, ProcessID: k.k.ProcessID,
						ParentProcessID: k.k.ParentProcessID, FirstTime: ts}
					got[k] = r
					order = append(order, k)
				}
				r.Count++
				r.LastTime = ts
			}
			if len(got) != len(want) {
				t.Errorf("%d groups match, the generator expects %d", len(got), len(want))
			}
			wantSet := map[escurow.Row]bool{}
			for _, r := range want {
				wantSet[r] = true
			}
			for _, k := range order {
				if !wantSet[*got[k]] {
					t.Errorf("unexpected row %+v", *got[k])
				}
				delete(wantSet, *got[k])
			}
			for r := range wantSet {
				t.Errorf("missing row %+v", r)
			}
		})
	}
}

func TestSampleFile(t *testing.T) {
	d := newTestDecoder(t, FormatAuto)
	lines := readLines(t, "../../cmd/sshlateral/sample/events.log")
	var events, errs, skips int
	for _, line := range lines {
		var ev processor.Event
		out, err := d.DecodeFull(line, &ev)
		switch {
		case err != nil:
			errs++
		case out == OutcomeEvent:
			events++
		default:
			skips++
		}
	}
	if errs != 1 || skips != 2 || events+errs+skips != len(lines) || len(lines) < 25 || len(lines) > 35 {
		t.Fatalf("%d lines: %d events, %d skips, %d errors; want about 30 lines with one error and two skips", len(lines), events, skips, errs)
	}
}

// Decode must copy what it keeps: scribbling over the input afterwards must
// not change the event.
func TestDecodeDoesNotRetainInput(t *testing.T) {
	paths := []string{"../../testdata/synthetic/positives.log"}
	for _, sh := range syntheticShapes {
		paths = append(paths, "../../testdata/synthetic/"+sh.file)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			d := newTestDecoder(t, FormatAuto)
			for i, line := range readLines(t, path) {
				buf := append([]byte(nil), line...)
				var ev processor.Event
				out, err := d.Decode(buf, &ev)
				if err != nil {
					t.Fatalf("line %d: %v", i+1, err)
				}
				before := ev
				for j := range buf {
					buf[j] = 'X'
				}
				if _, err := d.Decode([]byte(`{"_time":1,"dest":"other","process":"ssh","process_name":"ssh"}`), new(processor.Event)); err != nil {
					t.Fatal(err)
				}
				if diff := diffEvents(before, ev); diff != "" || (out == OutcomeEvent && ev.ProcessName == "") {
					t.Fatalf("line %d changed after the input was reused: %s", i+1, diff)
				}
			}
		})
	}
}

// A decoded event must not keep fields of the previous record.
func TestDecodeResetsEvent(t *testing.T) {
	d := newTestDecoder(t, FormatAuto)
	ev := processor.Event{Dest: "stale", ProcessName: "stale", Process: "stale"}
	out, err := d.DecodeFull([]byte(`{"_time":"2026-11-02T10:00:00Z","user":"u"}`), &ev)
	if err != nil || out != OutcomeEvent {
		t.Fatal(out, err)
	}
	want := processor.Event{Time: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC), User: "u"}
	if diff := diffEvents(ev, want); diff != "" {
		t.Fatal(diff)
	}
}

func TestPrefilterOutcomes(t *testing.T) {
	lines := readLines(t, "../../testdata/synthetic/positives.log")
	cim := readLines(t, "../../testdata/synthetic/positives_cim.json")
	for _, tc := range []struct {
		name  string
		lines [][]byte
	}{{"sysmon", lines}, {"cim", cim}} {
		t.Run(tc.name, func(t *testing.T) {
			full := newTestDecoder(t, FormatAuto)
			pre := newTestDecoder(t, FormatAuto)
			var noMatch, events int
			for i, line := range tc.lines {
				var a, b processor.Event
				oa, errA := full.DecodeFull(line, &a)
				ob, errB := pre.Decode(line, &b)
				if errA != nil || errB != nil {
					t.Fatalf("line %d: %v / %v", i+1, errA, errB)
				}
				switch {
				case oa == OutcomeSkip:
					if ob != OutcomeSkip || pre.LastSkipReason() != full.LastSkipReason() {
						t.Fatalf("line %d: skip %q became %v %q", i+1, full.LastSkipReason(), ob, pre.LastSkipReason())
					}
				case ob == OutcomeNoMatch:
					noMatch++
					if processor.Match(processor.MatchESCU, &a) || processor.Match(processor.MatchRobust, &a) {
						t.Fatalf("line %d: a matching event was prefiltered", i+1)
					}
					if diff := diffEvents(b, processor.Event{Time: a.Time}); diff != "" {
						t.Fatalf("line %d: NoMatch event %s", i+1, diff)
					}
				case ob == OutcomeEvent:
					events++
					if diff := diffEvents(a, b); diff != "" {
						t.Fatalf("line %d: %s", i+1, diff)
					}
				}
			}
			// Most negatives hold no "ssh"; every ssh process start passes.
			if noMatch < 10 || events < 30 {
				t.Fatalf("%d NoMatch, %d events: the prefilter is not doing its job", noMatch, events)
			}
		})
	}
}

// A record that cannot match is classified without allocating.
func TestNoMatchDoesNotAllocate(t *testing.T) {
	sigma := readLines(t, "../../testdata/real/sigma_regression/gh_auth_token_sysmon_linux.log")[0]
	cim := []byte(`{"_time":1793613543.111,"Processes.dest":"db-01","Processes.process":"ls -la /var/log","Processes.process_name":"ls","process_id":41399}`)
	zirc := readLines(t, "../../testdata/real/zircolite_sysmon_linux/sysmon_linux_sample.log")[0]
	for _, tc := range []struct {
		name string
		in   []byte
		want Outcome
	}{{"sysmon", sigma, OutcomeNoMatch}, {"cim", cim, OutcomeNoMatch}, {"sysmon skip", zirc, OutcomeSkip}} {
		t.Run(tc.name, func(t *testing.T) {
			d := newTestDecoder(t, FormatAuto)
			var ev processor.Event
			if out, err := d.Decode(tc.in, &ev); err != nil || out != tc.want {
				t.Fatalf("got %v %v, want %v", out, err, tc.want)
			}
			if n := testing.AllocsPerRun(100, func() { _, _ = d.Decode(tc.in, &ev) }); n != 0 {
				t.Fatalf("%v allocations per Decode", n)
			}
		})
	}
}
