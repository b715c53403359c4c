package decode

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/sshlateral/sshlateral/processor"
)

// jsonRecords reads a real fixture (pretty-printed, as published) and
// returns the records at path within it ("" for the document itself, or
// the key of an array), each compacted to one line as a pipeline would
// carry it.
func jsonRecords(t *testing.T, file, key, inner string) [][]byte {
	t.Helper()
	b, err := os.ReadFile("../../testdata/real/" + file)
	if err != nil {
		t.Fatal(err)
	}
	var recs []json.RawMessage
	switch {
	case key == "" && bytes.HasPrefix(bytes.TrimSpace(b), []byte("[")):
		if err := json.Unmarshal(b, &recs); err != nil {
			t.Fatal(err)
		}
	case key == "":
		recs = []json.RawMessage{b}
	default:
		var doc map[string][]json.RawMessage
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		recs = doc[key]
	}
	var out [][]byte
	for _, r := range recs {
		if inner != "" {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(r, &m); err != nil {
				t.Fatal(err)
			}
			r = m[inner]
		}
		var c bytes.Buffer
		if err := json.Compact(&c, r); err != nil {
			t.Fatal(err)
		}
		out = append(out, c.Bytes())
	}
	if len(out) == 0 {
		t.Fatalf("%s: no records", file)
	}
	return out
}

// Golden runs over the real JSON fixtures: each decodes, in auto mode and
// with its own format, to the CIM fields read off the fixture by hand.
func TestRealJSONFixtures(t *testing.T) {
	auditctl := processor.Event{
		Time: time.Date(2016, 12, 7, 2, 20, 31, 371e6, time.UTC),
		User: "root", Process: "auditctl -a exit,always -F arch=b32 -S execve",
		ProcessName: "auditctl", ProcessPath: "/sbin/auditctl", ProcessID: "1360", ParentProcessID: "1299",
	}
	for _, tc := range []struct {
		name, file, key, inner string
		format                 Format
		want                   Outcome
		reason                 string
		ev                     processor.Event
	}{
		{
			name: "elastic agent envelope of a sysmon banner", file: "elastic_agent_sysmon_linux_ecs/sample_event.json",
			format: FormatECS, want: OutcomeSkip, reason: SkipNotProcessStart,
		},
		{
			name: "elastic auditd pipeline input", file: "elastic_auditd_coalesced_ecs/test-coalesced-syscall-execve-events.json", key: "events",
			format: FormatECS, want: OutcomeEvent, ev: auditctl,
		},
		{
			name: "elastic auditd pipeline output (ECS)", file: "elastic_auditd_coalesced_ecs/test-coalesced-syscall-execve-events.json-expected.json", key: "expected",
			format: FormatECS, want: OutcomeEvent, ev: auditctl,
		},
		{
			name: "go-libaudit aucoalesce json", file: "go_libaudit_coalesce/ubuntu-20.04.6-linux-5.15.0-1034-gcp.json.golden", inner: "event",
			format: FormatECS, want: OutcomeEvent,
			ev: processor.Event{
				Time: time.Date(2023, 6, 13, 14, 29, 11, 525e6, time.UTC),
				User: "1005", Process: "dash -p", ProcessName: "dash", ProcessPath: "/usr/bin/dash", ProcessID: "2380168", ParentProcessID: "2380071",
			},
		},
		{
			name: "ocsf process activity launch", file: "ocsf_examples_process_activity/4688_0.json",
			format: FormatOCSF, want: OutcomeEvent,
			ev: processor.Event{
				Time: time.Date(2021, 3, 12, 15, 48, 14, 0, time.UTC),
				Dest: "win-dc-725.attackrange.local", User: "Administrator",
				Process: `reg  save HKLM\system C:\Users\ADMINI~1\AppData\Local\Temp\system `, ProcessName: "reg.exe",
				ProcessPath: `C:\Windows\System32\reg.exe`, ProcessID: "4696",
				ParentProcessName: "cmd.exe", ParentProcessPath: `C:\Windows\System32\cmd.exe`, ParentProcessID: "3948",
			},
		},
	} {
		for _, format := range []Format{FormatAuto, tc.format} {
			t.Run(tc.name+"/"+format.String(), func(t *testing.T) {
				for i, rec := range jsonRecords(t, tc.file, tc.key, tc.inner) {
					for _, full := range []bool{false, true} {
						d := newTestDecoder(t, format)
						decode := d.Decode
						if full {
							decode = d.DecodeFull
						}
						var ev processor.Event
						out, err := decode(rec, &ev)
						// No fixture holds ssh: the prefilter answers NoMatch.
						want := tc.want
						if want == OutcomeEvent && !full {
							want = OutcomeNoMatch
						}
						if err != nil || out != want || d.LastSkipReason() != tc.reason {
							t.Fatalf("record %d full=%v: got %v %q %v, want %v %q", i, full, out, d.LastSkipReason(), err, want, tc.reason)
						}
						wantEv := tc.ev
						if out == OutcomeNoMatch {
							wantEv = processor.Event{Time: tc.ev.Time}
						}
						if diff := diffEvents(ev, wantEv); diff != "" {
							t.Fatalf("record %d full=%v: %s", i, full, diff)
						}
					}
				}
			})
		}
	}
}
