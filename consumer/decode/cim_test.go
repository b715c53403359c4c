package decode

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sshlateral/sshlateral/processor"
)

// refDecodeCIM is the encoding/json reference of the CIM decoder: the record
// is read key by key in order, so that the last of repeated keys wins. The
// value rules (numbers, _time) are the package's, tested on their own in
// TestCIMValues.
func refDecodeCIM(rec []byte) (processor.Event, error) {
	var ev processor.Event
	if !json.Valid(rec) {
		return ev, errors.New("invalid json")
	}
	dec := json.NewDecoder(bytes.NewReader(rec))
	tok, err := dec.Token()
	if err != nil {
		return ev, err
	}
	if tok != json.Delim('{') {
		return ev, errors.New("not an object")
	}
	haveTime := false
	present := map[processor.Field]bool{} // fields with a non-null value
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return ev, err
		}
		key := kt.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return ev, err
		}
		if key == "_time" {
			switch raw[0] {
			case '"':
				var s string
				if err := json.Unmarshal(raw, &s); err != nil {
					return ev, err
				}
				t, ok := parseCIMTimeString([]byte(s))
				if !ok {
					return ev, errors.New("bad _time")
				}
				ev.Time, haveTime = t, true
			case 'n':
				haveTime = false
			case 't', 'f', '{', '[':
				return ev, errors.New("bad _time type")
			default:
				t, ok := parseEpoch(raw)
				if !ok {
					return ev, errors.New("bad _time")
				}
				ev.Time, haveTime = t, true
			}
			continue
		}
		f, ok := processor.FieldByName(strings.TrimPrefix(key, "Processes."))
		if !ok {
			continue
		}
		dst := ev.Ptr(f)
		if raw[0] == 'n' {
			delete(present, f)
		} else {
			present[f] = true
		}
		switch raw[0] {
		case '"':
			if err := json.Unmarshal(raw, dst); err != nil {
				return ev, err
			}
		case 'n':
			*dst = ""
		case 't', 'f':
			*dst = string(raw)
		case '{', '[':
			return ev, errors.New("unsupported value")
		default:
			*dst = string(appendCIMNumber(nil, raw))
		}
	}
	if !haveTime {
		return ev, errors.New("missing _time")
	}
	if len(present) == 0 {
		return ev, errors.New("unmapped")
	}
	if !processor.ValidEventTime(ev.Time) {
		return ev, errors.New("_time out of range")
	}
	return ev, nil
}

var cimEdgeSeeds = []string{
	`{"_time":"2026-11-02T10:00:00Z","process_name":"ssh","process":"ssh -oBatchMode=yes http://x"}`,
	`{"_time":1793613600.123456789123,"Processes.process_name":"\u0073sh","process_id":1234,"parent_process_id":1.5e3}`,
	`{"_time":"1793613600","process_id":-0.0,"dest":"\ud800x\udc00\ud83d\ude00","user":"` + "\xff\xfe" + `"}`,
	`{"_time":1e9,"dest":null,"dest":"later","Processes.dest":"last","extra":{"a":[1,2,{"b":null}]},"x":true}`,
	`{"_time":"2026-11-02T10:00:00+01:00","process":true}`,
	`{"_time":null}`,
	`{"_time":"x"}`,
	`{"process":[1]}`,
	`[{"_time":1}]`,
	`{"_time":1} {}`,
	`{"_time":1,}`,
	`{"_time":01}`,
	`{"Processes._time":1}`,
	` {"_time" : 2 , "user" : "a\"b\\c\/d\b\f\n\r\t"}  `,
}

func TestCIMDecode(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		in      string
		want    processor.Event
		wantErr string
	}{
		{
			name: "plain names, rfc3339",
			in:   `{"_time":"2026-11-02T10:00:00Z","dest":"h","user":"u","process":"ssh -oBatchMode=yes x","process_name":"ssh","process_path":"/usr/bin/ssh","process_id":"7","parent_process":"bash x","parent_process_name":"bash","parent_process_path":"/usr/bin/bash","parent_process_id":"6","original_file_name":"-"}`,
			want: processor.Event{Time: t0, Dest: "h", User: "u", Process: "ssh -oBatchMode=yes x", ProcessName: "ssh", ProcessPath: "/usr/bin/ssh",
				ProcessID: "7", ParentProcess: "bash x", ParentProcessName: "bash", ParentProcessPath: "/usr/bin/bash", ParentProcessID: "6", OriginalFileName: "-"},
		},
		{
			name: "prefixed names, epoch number, numeric ids",
			in:   `{"_time":1793613600.25,"Processes.dest":"h","Processes.process_id":1234,"Processes.parent_process_id":1.0e3}`,
			want: processor.Event{Time: t0.Add(250 * time.Millisecond), Dest: "h", ProcessID: "1234", ParentProcessID: "1000"},
		},
		{
			name: "epoch string with nanoseconds",
			in:   `{"_time":"1793613600.000000001","user":"u"}`,
			want: processor.Event{Time: t0.Add(time.Nanosecond), User: "u"},
		},
		{
			name: "rfc3339 offset is converted to UTC",
			in:   `{"_time":"2026-11-02T11:00:00+01:00","dest":"h"}`,
			want: processor.Event{Time: t0, Dest: "h"},
		},
		{
			name: "process_name is not derived from process_path",
			in:   `{"_time":1793613600,"process_path":"/usr/bin/ssh"}`,
			want: processor.Event{Time: t0, ProcessPath: "/usr/bin/ssh"},
		},
		{
			name: "last key wins, null clears",
			in:   `{"_time":1793613600,"dest":"a","Processes.dest":"b","user":"u","user":null}`,
			want: processor.Event{Time: t0, Dest: "b"},
		},
		{
			name: "escapes and html escaping",
			in:   `{"_time":1793613600,"process":"a \u0026 b \u003e c \"q\" \ud83d\ude00","process_name":"\u0073sh"}`,
			want: processor.Event{Time: t0, Process: "a & b > c \"q\" \U0001F600", ProcessName: "ssh"},
		},
		{
			name: "unknown keys of any type are skipped",
			in:   `{"_time":1793613600,"tags":["a",{"b":[null,true,-1.5e-3]}],"ok":false,"user":"u"}`,
			want: processor.Event{Time: t0, User: "u"},
		},
		{name: "missing _time", in: `{"dest":"h"}`, wantErr: "cim: missing _time"},
		{name: "no field", in: `{"_time":1,"x":"y"}`, wantErr: "cim: unmapped: no process field in the record"},
		{name: "null fields only", in: `{"_time":1,"dest":null}`, wantErr: "cim: unmapped: no process field in the record"},
		{name: "null _time", in: `{"_time":null}`, wantErr: "cim: missing _time"},
		{name: "bad _time", in: `{"_time":"yesterday"}`, wantErr: `cim: invalid _time "yesterday"`},
		{name: "negative epoch", in: `{"_time":-5}`, wantErr: "cim: invalid _time -5"},
		{name: "array field", in: `{"_time":1,"process":["ssh"]}`, wantErr: "cim: field process: objects and arrays are not supported"},
		{name: "trailing data", in: `{"_time":1} x`, wantErr: "cim: trailing data after object at byte 12"},
		{name: "not an object", in: `["_time"]`, wantErr: "cim: record is not a json object"},
		{name: "truncated", in: `{"_time":1,"dest":"h`, wantErr: "cim: unterminated string at byte 18"},
		{name: "control character", in: "{\"_time\":1,\"dest\":\"a\tb\"}", wantErr: "cim: control character in string at byte 20"},
		{name: "bad escape", in: `{"_time":1,"dest":"\x"}`, wantErr: "cim: invalid escape at byte 20"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newTestDecoder(t, FormatCIM)
			var ev processor.Event
			out, err := d.DecodeFull([]byte(tc.in), &ev)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || out != OutcomeEvent {
				t.Fatalf("got %v, %v", out, err)
			}
			if diff := diffEvents(ev, tc.want); diff != "" {
				t.Fatal(diff)
			}
			ref, err := refDecodeCIM([]byte(tc.in))
			if err != nil {
				t.Fatalf("reference: %v", err)
			}
			if diff := diffEvents(ev, ref); diff != "" {
				t.Fatalf("reference disagrees: %s", diff)
			}
		})
	}
}

func TestCIMValues(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"1234", "1234"}, {"-7", "-7"}, {"0", "0"}, {"1234.0", "1234"}, {"1.5e3", "1500"},
		{"1.5", "1.5"}, {"1e20", "1e20"}, {"-0.0", "0"},
	} {
		t.Run("number "+tc.in, func(t *testing.T) {
			if got := string(appendCIMNumber(nil, []byte(tc.in))); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"1793613600", time.Unix(1793613600, 0), true},
		{"1793613600.5", time.Unix(1793613600, 5e8), true},
		{"1793613600.1234567891", time.Unix(1793613600, 123456789), true},
		{"1.7936136e9", time.Unix(1793613600, 0), true},
		{"0", time.Unix(0, 0), true},
		{"253402300799", time.Unix(253402300799, 0), true},
		{"253402300800", time.Time{}, false},
		{"-1", time.Time{}, false},
		{"1e400", time.Time{}, false},
	} {
		t.Run("epoch "+tc.in, func(t *testing.T) {
			got, ok := parseEpoch([]byte(tc.in))
			if ok != tc.ok || (ok && !got.Equal(tc.want)) || (ok && got.Location() != time.UTC) {
				t.Fatalf("got %v %v, want %v %v", got, ok, tc.want, tc.ok)
			}
		})
	}
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"2026-11-02T10:00:00Z", true}, {"2026-11-02T10:00:00.123456+02:00", true}, {"1793613600.5", true},
		{"2026-11-02 10:00:00", false}, {"", false}, {"NaN", false}, {"0x10", false}, {" 1", false},
	} {
		t.Run(fmt.Sprintf("time string %q", tc.in), func(t *testing.T) {
			if _, ok := parseCIMTimeString([]byte(tc.in)); ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
		})
	}
}

func TestCIMNestingLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		depth int // nesting of the value under the top-level object
		ok    bool
	}{{"at limit", maxJSONDepth - 1, true}, {"over limit", maxJSONDepth, false}} {
		t.Run(tc.name, func(t *testing.T) {
			rec := `{"_time":1,"dest":"h","x":` + strings.Repeat("[", tc.depth) + strings.Repeat("]", tc.depth) + `}`
			d := newTestDecoder(t, FormatCIM)
			_, err := d.DecodeFull([]byte(rec), new(processor.Event))
			_, refErr := refDecodeCIM([]byte(rec))
			if (err == nil) != tc.ok || (refErr == nil) != tc.ok {
				t.Fatalf("scanner %v, encoding/json %v, want ok=%v", err, refErr, tc.ok)
			}
		})
	}
}
