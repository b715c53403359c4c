package decode

import (
	"strings"
	"testing"

	"github.com/sshlateral/sshlateral/processor"
)

// Times the processor cannot hold without clamping are decode errors, in
// every format and on both the prefilter and the full path.
func TestAbsurdTimesAreErrors(t *testing.T) {
	sysmonAt := func(utc string) string {
		return sysmonXML("1", stdSystem, strings.Replace(stdData, "2026-11-02 10:00:00.100", utc, 1))
	}
	cimAt := func(tm string) string {
		return `{"_time":` + tm + `,"dest":"h","process_name":"ls","process":"ls"}`
	}
	for _, tc := range []struct {
		name   string
		format Format
		in     string
	}{
		{"cim rfc3339 year 9999", FormatCIM, cimAt(`"9999-12-31T00:00:00Z"`)},
		{"cim rfc3339 year 2200", FormatCIM, cimAt(`"2200-01-01T00:00:00Z"`)},
		{"cim epoch year 2200", FormatCIM, cimAt(`7258118400`)},
		{"cim rfc3339 1969", FormatCIM, cimAt(`"1969-12-31T23:59:59Z"`)},
		{"cim rfc3339 year 0001", FormatCIM, cimAt(`"0001-01-01T00:00:00Z"`)},
		{"sysmon utctime 1960", FormatSysmon, sysmonAt("1960-01-01 00:00:00.000")},
		{"sysmon utctime 9999", FormatSysmon, sysmonAt("9999-12-31 23:59:59.999")},
		{"sysmon systemtime 2999", FormatSysmon, sysmonXML("1", `<TimeCreated SystemTime="2999-01-01T00:00:00Z"/>`, `<Data Name="Image">/bin/ls</Data>`)},
	} {
		for _, name := range []string{"ls", "ssh"} {
			in := strings.ReplaceAll(strings.ReplaceAll(tc.in, "/usr/bin/ssh", "/usr/bin/"+name), `"process_name":"ls"`, `"process_name":"`+name+`"`)
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				for _, full := range []bool{false, true} {
					d := newTestDecoder(t, tc.format)
					var ev processor.Event
					decode := d.Decode
					if full {
						decode = d.DecodeFull
					}
					out, err := decode([]byte(in), &ev)
					if err == nil || !strings.Contains(err.Error(), "time") {
						t.Fatalf("full=%v: got %v at %v, %v; want an event time error", full, out, ev.Time, err)
					}
				}
			})
		}
	}
}

// A NUL written raw and written as the character reference &#0; are the
// same value: both decode, to the same event.
func TestSysmonNULConsistent(t *testing.T) {
	raw := sysmonXML("1", stdSystem, strings.Replace(stdData, "10.0.0.1", "10.0.0.1\x00x", 1))
	ref := sysmonXML("1", stdSystem, strings.Replace(stdData, "10.0.0.1", "10.0.0.1&#0;x", 1))
	hex := sysmonXML("1", stdSystem, strings.Replace(stdData, "10.0.0.1", "10.0.0.1&#x0;x", 1))
	want := withEvent(func(e *processor.Event) { e.Process = strings.Replace(e.Process, "10.0.0.1", "10.0.0.1\x00x", 1) })
	for _, tc := range []struct{ name, in string }{{"raw", raw}, {"decimal reference", ref}, {"hex reference", hex}} {
		t.Run(tc.name, func(t *testing.T) {
			d := newTestDecoder(t, FormatSysmon)
			var ev processor.Event
			out, err := d.Decode([]byte(tc.in), &ev)
			if err != nil || out != OutcomeEvent {
				t.Fatalf("got %v, %v", out, err)
			}
			if diff := diffEvents(ev, want); diff != "" {
				t.Fatal(diff)
			}
		})
	}
}
