package schemas

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
)

// wantFields is the published field order of RiskRecord; consumers and the
// Python verifier rely on it.
var wantFields = []string{
	"alert_id", "search_name", "detection_id", "detection_version",
	"risk_object", "risk_object_type", "risk_score", "impact", "confidence",
	"risk_message", "threat_object", "threat_object_type",
	"dest", "user", "parent_process_name", "process_name", "process",
	"process_id", "parent_process_id", "count", "firstTime", "lastTime",
	"first_seen", "last_seen", "window_start", "window_end", "emission",
	"revision", "parent_process", "process_path", "parent_process_path",
	"original_file_name", "annotations", "truncated", "sanitized",
}

var wantAnnotationFields = []string{
	"mitre_attack", "tactic", "kill_chain_phases", "nist", "cis20", "analytic_story", "type",
}

type schemaField struct {
	Name string          `json:"name"`
	Type json.RawMessage `json:"type"`
	Doc  string          `json:"doc"`
}

type schemaRecord struct {
	Type      string        `json:"type"`
	Name      string        `json:"name"`
	Namespace string        `json:"namespace"`
	Fields    []schemaField `json:"fields"`
}

func parseSchemaJSON(t *testing.T) schemaRecord {
	t.Helper()
	var rec schemaRecord
	if err := json.Unmarshal([]byte(RiskRecordSchema), &rec); err != nil {
		t.Fatalf("risk_record.avsc is not JSON: %v", err)
	}
	return rec
}

func TestRiskRecordSchema(t *testing.T) {
	rec := parseSchemaJSON(t)
	codec, err := NewRiskRecordCodec()
	if err != nil {
		t.Fatalf("NewRiskRecordCodec: %v", err)
	}

	t.Run("full name", func(t *testing.T) {
		if got := rec.Namespace + "." + rec.Name; got != RiskRecordFullName {
			t.Errorf("full name %q, want %q", got, RiskRecordFullName)
		}
		if got := codec.TypeName(); got.String() != RiskRecordFullName {
			t.Errorf("codec type name %q, want %q", got, RiskRecordFullName)
		}
	})
	t.Run("field order", func(t *testing.T) {
		var got []string
		for _, f := range rec.Fields {
			got = append(got, f.Name)
		}
		if !reflect.DeepEqual(got, wantFields) {
			t.Errorf("fields\n got %v\nwant %v", got, wantFields)
		}
	})
	t.Run("every field documented", func(t *testing.T) {
		for _, f := range rec.Fields {
			if f.Doc == "" {
				t.Errorf("field %s has no doc", f.Name)
			}
		}
	})
	t.Run("annotations record", func(t *testing.T) {
		var ann schemaRecord
		if err := json.Unmarshal(rec.Fields[len(wantFields)-3].Type, &ann); err != nil {
			t.Fatalf("annotations type: %v", err)
		}
		var got []string
		for _, f := range ann.Fields {
			got = append(got, f.Name)
			if f.Doc == "" {
				t.Errorf("annotations field %s has no doc", f.Name)
			}
		}
		if ann.Name != "Annotations" || !reflect.DeepEqual(got, wantAnnotationFields) {
			t.Errorf("annotations %s %v, want Annotations %v", ann.Name, got, wantAnnotationFields)
		}
	})
}

func TestRiskRecordCodecRoundTrip(t *testing.T) {
	codec, err := NewRiskRecordCodec()
	if err != nil {
		t.Fatalf("NewRiskRecordCodec: %v", err)
	}
	ts := time.Date(2024, 3, 5, 10, 15, 7, 123_000_000, time.UTC)
	tests := []struct {
		name      string
		optional  any
		sanitized []any
	}{
		{name: "optional fields null", optional: nil, sanitized: []any{}},
		{name: "optional fields set", optional: goavro.Union("string", "/usr/bin/ssh"), sanitized: []any{"process"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			native := map[string]any{
				"alert_id": "a1", "search_name": "s", "detection_id": "d", "detection_version": int32(2),
				"risk_object": "host1", "risk_object_type": "system", "risk_score": int32(56),
				"impact": int32(80), "confidence": int32(70), "risk_message": "m",
				"threat_object": "ssh", "threat_object_type": "process_name",
				"dest": "host1", "user": "null", "parent_process_name": "bash", "process_name": "ssh",
				"process": "ssh -oBatchMode=yes h curl https://x", "process_id": "1", "parent_process_id": "null",
				"count": int64(3), "firstTime": "2024-03-05T10:15:07", "lastTime": "2024-03-05T10:15:07",
				"first_seen": ts, "last_seen": ts, "window_start": ts, "window_end": ts,
				"emission": "LATE", "revision": int32(4),
				"parent_process": tc.optional, "process_path": tc.optional,
				"parent_process_path": tc.optional, "original_file_name": tc.optional,
				"annotations": map[string]any{
					"mitre_attack": []any{"T1021.004"}, "tactic": []any{"Lateral Movement"},
					"kill_chain_phases": []any{"Exploitation"}, "nist": []any{"DE.CM"},
					"cis20": []any{"CIS 3", "CIS 5", "CIS 16"}, "analytic_story": []any{"Linux Living Off The Land"},
					"type": "TTP",
				},
				"truncated": []any{}, "sanitized": tc.sanitized,
			}
			bin, err := codec.BinaryFromNative(nil, native)
			if err != nil {
				t.Fatalf("BinaryFromNative: %v", err)
			}
			got, rest, err := codec.NativeFromBinary(bin)
			if err != nil {
				t.Fatalf("NativeFromBinary: %v", err)
			}
			if len(rest) != 0 {
				t.Errorf("%d trailing bytes", len(rest))
			}
			if !reflect.DeepEqual(got, native) {
				t.Errorf("round trip\n got %#v\nwant %#v", got, native)
			}
		})
	}
}

// TestRiskRecordEvolution checks that the schema differs from the previous
// published version (testdata/risk_record.v1.avsc) only by fields appended
// with defaults: a reader with either schema reads records of the other
// (BACKWARD and FORWARD, hence FULL, compatibility).
func TestRiskRecordEvolution(t *testing.T) {
	raw, err := os.ReadFile("testdata/risk_record.v1.avsc")
	if err != nil {
		t.Fatal(err)
	}
	var v1 struct {
		Fields []json.RawMessage `json:"fields"`
	}
	var now struct {
		Fields []json.RawMessage `json:"fields"`
	}
	if err := json.Unmarshal(raw, &v1); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(RiskRecordSchema), &now); err != nil {
		t.Fatal(err)
	}
	if len(now.Fields) < len(v1.Fields) {
		t.Fatalf("%d fields, v1 had %d", len(now.Fields), len(v1.Fields))
	}
	for i, f := range v1.Fields {
		if !bytes.Equal(compactJSON(t, f), compactJSON(t, now.Fields[i])) {
			t.Errorf("field %d changed:\n v1 %s\nnow %s", i, f, now.Fields[i])
		}
	}
	for _, f := range now.Fields[len(v1.Fields):] {
		var added struct {
			Name    string           `json:"name"`
			Default *json.RawMessage `json:"default"`
		}
		if err := json.Unmarshal(f, &added); err != nil {
			t.Fatal(err)
		}
		if added.Default == nil {
			t.Errorf("added field %s has no default: old records could not be read", added.Name)
		}
	}
}

func compactJSON(t *testing.T, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
