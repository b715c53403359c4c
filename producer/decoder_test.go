package producer

import (
	"bytes"
	"encoding/binary"
	"maps"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/linkedin/goavro/v2"

	"github.com/sshlateral/sshlateral/processor"
)

// plainValue returns the plain binary of the first risk record of r.
func plainValue(t testing.TB, r processor.Result) []byte {
	t.Helper()
	recs, err := newTestEncoder(t, WirePlain, 0).Records([]processor.Result{r}, nil)
	if err != nil {
		t.Fatalf("Records: %v", err)
	}
	return recs[0].Value
}

func TestDecodeErrors(t *testing.T) {
	valid := plainValue(t, fullResult())
	framed := append(AppendConfluentHeader(nil, 1), valid...)
	tests := []struct {
		name    string
		value   []byte
		wire    WireFormat
		auto    bool
		wantErr string
	}{
		{name: "empty auto", value: nil, auto: true, wantErr: "empty value"},
		{name: "truncated plain", value: valid[:len(valid)-3], wire: WirePlain, wantErr: "plain"},
		{name: "trailing byte plain", value: append(bytes.Clone(valid), 0), wire: WirePlain, wantErr: "trailing"},
		{name: "framed header only", value: framed[:5], wire: WireConfluent, wantErr: "empty value"},
		{name: "framed too short", value: []byte{0, 0, 1}, auto: true, wantErr: "not confluent-framed"},
		{name: "plain bytes read as framed", value: valid, wire: WireConfluent, wantErr: "not confluent-framed"},
		{name: "framed bytes read as plain", value: framed, wire: WirePlain, wantErr: "plain"},
		{name: "truncated framed auto", value: framed[:len(framed)-1], auto: true, wantErr: "confluent"},
		{name: "unknown wire", value: valid, wire: 5, wantErr: "unknown wire format"},
	}
	dec := newTestDecoder(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.auto {
				_, err = dec.Decode(tc.value)
			} else {
				_, err = dec.DecodeWire(tc.value, tc.wire)
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestDecodeAutoDetectionLimit pins the documented ambiguity: a plain record
// whose alert_id is empty starts with 0x00, so Decode reads it as a frame;
// DecodeWire with WirePlain still reads it.
func TestDecodeAutoDetectionLimit(t *testing.T) {
	enc := newTestEncoder(t, WirePlain, 0)
	native := RiskRecords(fullResult())[0]
	native["alert_id"] = ""
	value, err := enc.AppendBinary(nil, native)
	if err != nil {
		t.Fatalf("AppendBinary: %v", err)
	}
	if value[0] != 0x00 {
		t.Fatalf("first byte %#x, want 0x00", value[0])
	}
	dec := newTestDecoder(t)
	if _, err := dec.Decode(value); err == nil {
		t.Errorf("Decode accepted a plain record with an empty alert_id as a frame")
	}
	got, err := dec.DecodeWire(value, WirePlain)
	if err != nil {
		t.Fatalf("DecodeWire plain: %v", err)
	}
	if !reflect.DeepEqual(got, native) {
		t.Errorf("DecodeWire plain\n got %v\nwant %v", got, native)
	}
}

// TestDecodeRejectsHugeArrayCount checks the pre-scan: a block count far
// beyond the remaining bytes must fail before goavro preallocates it.
func TestDecodeRejectsHugeArrayCount(t *testing.T) {
	enc := newTestEncoder(t, WirePlain, 0)
	native := RiskRecords(fullResult())[0]
	native["annotations"] = map[string]any{
		"mitre_attack": []any{}, "tactic": []any{}, "kill_chain_phases": []any{}, "nist": []any{},
		"cis20": []any{}, "analytic_story": []any{}, "type": "",
	}
	value, err := enc.AppendBinary(nil, native)
	if err != nil {
		t.Fatalf("AppendBinary: %v", err)
	}
	// The annotations are the last 7 bytes: six empty arrays and "".
	const annotationsLen = 7
	prefix := value[:len(value)-annotationsLen]
	tests := []struct {
		name  string
		count int64
	}{
		{name: "positive count", count: 1<<31 - 1},
		{name: "negative count", count: -(1<<31 - 1)},
	}
	dec := newTestDecoder(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hostile := binary.AppendVarint(bytes.Clone(prefix), tc.count)
			hostile = append(hostile, 2, 2, 'x')
			_, err := dec.DecodeWire(hostile, WirePlain)
			if err == nil || !strings.Contains(err.Error(), "exceeds") {
				t.Errorf("error %v, want block count rejected", err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	enc := newTestEncoder(f, WireConfluent, 9)
	recs, err := enc.Records([]processor.Result{fullResult(), sparseResult()}, nil)
	if err != nil {
		f.Fatalf("Records: %v", err)
	}
	for _, rec := range recs {
		f.Add(rec.Value)
		_, payload, _ := SplitConfluent(rec.Value)
		f.Add(payload)
	}
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add([]byte{0, 0, 0, 0, 1, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})

	dec := newTestDecoder(f)
	codec := newTestCodec(f)
	f.Fuzz(func(t *testing.T, value []byte) {
		native, err := dec.Decode(value)
		if err != nil {
			return
		}
		if _, err := JSON(native); err != nil {
			t.Fatalf("JSON of a decoded record: %v", err)
		}
		again, err := codec.BinaryFromNative(nil, native)
		if err != nil {
			t.Fatalf("re-encode a decoded record: %v", err)
		}
		back, err := dec.DecodeWire(again, WirePlain)
		if err != nil {
			t.Fatalf("decode the re-encoded record: %v", err)
		}
		if !reflect.DeepEqual(back, native) {
			t.Fatalf("re-encoded record differs\n got %v\nwant %v", back, native)
		}
	})
}

// TestDecodeFirstSchemaVersion: records written before truncated and
// sanitized existed (schemas/testdata/risk_record.v1.avsc) still decode,
// with the new fields' defaults, plain or framed.
func TestDecodeFirstSchemaVersion(t *testing.T) {
	v1Schema, err := os.ReadFile("../schemas/testdata/risk_record.v1.avsc")
	if err != nil {
		t.Fatal(err)
	}
	v1, err := goavro.NewCodec(string(v1Schema))
	if err != nil {
		t.Fatal(err)
	}
	dec := newTestDecoder(t)
	for _, r := range []processor.Result{fullResult(), sparseResult()} {
		for i, want := range RiskRecords(r) {
			old := maps.Clone(want)
			delete(old, "truncated")
			delete(old, "sanitized")
			value, err := v1.BinaryFromNative(nil, old)
			if err != nil {
				t.Fatalf("encode with v1: %v", err)
			}
			for _, framed := range [][]byte{value, append(AppendConfluentHeader(nil, 3), value...)} {
				got, err := dec.Decode(framed)
				if err != nil {
					t.Fatalf("alert %s record %d: Decode of a v1 record: %v", r.AlertID, i, err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("alert %s record %d:\n got %v\nwant %v", r.AlertID, i, got, want)
				}
			}
			// A current record missing its last byte is neither version.
			current := plainValue(t, r)
			if i == 0 {
				if _, err := dec.Decode(current[:len(current)-1]); err == nil {
					t.Errorf("a record missing only its last byte decoded")
				}
			}
		}
	}
}
