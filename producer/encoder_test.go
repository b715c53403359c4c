package producer

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/processor"
)

func TestRecordsRoundTrip(t *testing.T) {
	full, sparse := fullResult(), sparseResult()
	fullMsg := "An instance of ssh was identified on endpoint web-01.example.org by user deploy attempting to move laterally and download a file."
	sparseMsg := "An instance of ssh was identified on endpoint null by user null attempting to move laterally and download a file."
	tests := []struct {
		name     string
		wire     WireFormat
		schemaID int32
		result   processor.Result
		want     [2]map[string]any
		headers  []kgo.RecordHeader
	}{
		{
			name: "plain, every field set", wire: WirePlain, result: full,
			want: [2]map[string]any{
				wantRecord(full, "web-01.example.org", "system", "2024-03-05T10:15:07", "2024-03-05T10:42:59", fullMsg),
				wantRecord(full, "deploy", "user", "2024-03-05T10:15:07", "2024-03-05T10:42:59", fullMsg),
			},
			headers: []kgo.RecordHeader{{Key: "emission", Value: []byte("FINAL")}, {Key: "revision", Value: []byte("2")}},
		},
		{
			name: "confluent, every field set", wire: WireConfluent, schemaID: 7, result: full,
			want: [2]map[string]any{
				wantRecord(full, "web-01.example.org", "system", "2024-03-05T10:15:07", "2024-03-05T10:42:59", fullMsg),
				wantRecord(full, "deploy", "user", "2024-03-05T10:15:07", "2024-03-05T10:42:59", fullMsg),
			},
			headers: []kgo.RecordHeader{{Key: "emission", Value: []byte("FINAL")}, {Key: "revision", Value: []byte("2")}},
		},
		{
			name: "plain, missing fields", wire: WirePlain, result: sparse,
			want: [2]map[string]any{
				wantRecord(sparse, "null", "system", "2023-12-31T23:59:59", "2023-12-31T23:59:59", sparseMsg),
				wantRecord(sparse, "null", "user", "2023-12-31T23:59:59", "2023-12-31T23:59:59", sparseMsg),
			},
			headers: []kgo.RecordHeader{{Key: "emission", Value: []byte("LATE")}, {Key: "revision", Value: []byte("0")}},
		},
		{
			name: "confluent, missing fields", wire: WireConfluent, schemaID: 1 << 30, result: sparse,
			want: [2]map[string]any{
				wantRecord(sparse, "null", "system", "2023-12-31T23:59:59", "2023-12-31T23:59:59", sparseMsg),
				wantRecord(sparse, "null", "user", "2023-12-31T23:59:59", "2023-12-31T23:59:59", sparseMsg),
			},
			headers: []kgo.RecordHeader{{Key: "emission", Value: []byte("LATE")}, {Key: "revision", Value: []byte("0")}},
		},
	}
	dec := newTestDecoder(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc := newTestEncoder(t, tc.wire, tc.schemaID)
			recs, err := enc.Records([]processor.Result{tc.result}, nil)
			if err != nil {
				t.Fatalf("Records: %v", err)
			}
			if len(recs) != 2 {
				t.Fatalf("got %d records, want 2", len(recs))
			}
			for i, rec := range recs {
				if rec.Topic != "risk" || string(rec.Key) != tc.result.AlertID {
					t.Errorf("record %d: topic %q key %q, want risk %q", i, rec.Topic, rec.Key, tc.result.AlertID)
				}
				if !reflect.DeepEqual(rec.Headers, tc.headers) {
					t.Errorf("record %d: headers %v, want %v", i, rec.Headers, tc.headers)
				}
				if !rec.Timestamp.IsZero() || rec.Context != nil {
					t.Errorf("record %d: timestamp %v context %v, want both unset", i, rec.Timestamp, rec.Context)
				}
				got, err := dec.Decode(rec.Value)
				if err != nil {
					t.Fatalf("record %d: Decode: %v", i, err)
				}
				explicit, err := dec.DecodeWire(rec.Value, tc.wire)
				if err != nil {
					t.Fatalf("record %d: DecodeWire: %v", i, err)
				}
				if !reflect.DeepEqual(got, explicit) {
					t.Errorf("record %d: Decode and DecodeWire disagree", i)
				}
				if len(got) != len(schemaFieldNames(t)) {
					t.Errorf("record %d: %d fields, schema has %d", i, len(got), len(schemaFieldNames(t)))
				}
				for _, name := range schemaFieldNames(t) {
					if !reflect.DeepEqual(got[name], tc.want[i][name]) {
						t.Errorf("record %d field %s: got %#v, want %#v", i, name, got[name], tc.want[i][name])
					}
				}
				if tc.wire == WireConfluent {
					id, _, err := SplitConfluent(rec.Value)
					if err != nil || id != tc.schemaID {
						t.Errorf("record %d: schema id %d (%v), want %d", i, id, err, tc.schemaID)
					}
				}
			}
			// RiskRecords must describe exactly what went on the wire.
			natives := RiskRecords(tc.result)
			for i := range natives {
				if !reflect.DeepEqual(natives[i], tc.want[i]) {
					t.Errorf("RiskRecords[%d]\n got %#v\nwant %#v", i, natives[i], tc.want[i])
				}
			}
		})
	}
}

func TestRecordsAppendsInOrder(t *testing.T) {
	enc := newTestEncoder(t, WirePlain, 0)
	dec := newTestDecoder(t)
	results := []processor.Result{fullResult(), sparseResult(), fullResult()}
	results[2].AlertID = "third"
	results[2].Emission = processor.EmissionEarly
	existing := &kgo.Record{Topic: "other"}
	recs, err := enc.Records(results, []*kgo.Record{existing})
	if err != nil {
		t.Fatalf("Records: %v", err)
	}
	if len(recs) != 1+2*len(results) || recs[0] != existing {
		t.Fatalf("got %d records (first %v), want existing + %d", len(recs), recs[0], 2*len(results))
	}
	for i, rec := range recs[1:] {
		r := results[i/2]
		got, err := dec.Decode(rec.Value)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		wantObj, wantType := r.Key.Dest, "system"
		if i%2 == 1 {
			wantObj, wantType = r.Key.User, "user"
		}
		if got["alert_id"] != r.AlertID || got["risk_object"] != wantObj || got["risk_object_type"] != wantType ||
			got["emission"] != r.Emission.String() {
			t.Errorf("record %d: alert %v object %v/%v emission %v, want %s %s/%s %s", i,
				got["alert_id"], got["risk_object"], got["risk_object_type"], got["emission"], r.AlertID, wantObj, wantType, r.Emission)
		}
		if string(rec.Key) != r.AlertID {
			t.Errorf("record %d: key %q, want %q", i, rec.Key, r.AlertID)
		}
	}
}

func TestRecordsErrors(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*processor.Result)
		wantErr string
	}{
		{name: "empty alert id", mutate: func(r *processor.Result) { r.AlertID = "" }, wantErr: "empty alert id"},
		{name: "unknown emission", mutate: func(r *processor.Result) { r.Emission = 9 }, wantErr: "UNKNOWN"},
	}
	enc := newTestEncoder(t, WirePlain, 0)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bad := fullResult()
			tc.mutate(&bad)
			dst := []*kgo.Record{{Topic: "kept"}}
			got, err := enc.Records([]processor.Result{fullResult(), bad}, dst)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "risk") {
				t.Fatalf("error %v, want one naming %q and the topic", err, tc.wantErr)
			}
			if len(got) != 1 || got[0].Topic != "kept" {
				t.Errorf("dst changed on error: %d records", len(got))
			}
		})
	}
}

func TestConfluentFramingBytes(t *testing.T) {
	tests := []struct {
		name     string
		schemaID int32
		header   []byte
	}{
		{name: "id 1", schemaID: 1, header: []byte{0x00, 0x00, 0x00, 0x00, 0x01}},
		{name: "id 12345", schemaID: 12345, header: []byte{0x00, 0x00, 0x00, 0x30, 0x39}},
		{name: "id max int32", schemaID: 1<<31 - 1, header: []byte{0x00, 0x7f, 0xff, 0xff, 0xff}},
	}
	plain, err := newTestEncoder(t, WirePlain, 0).Records([]processor.Result{fullResult()}, nil)
	if err != nil {
		t.Fatalf("plain Records: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			framed, err := newTestEncoder(t, WireConfluent, tc.schemaID).Records([]processor.Result{fullResult()}, nil)
			if err != nil {
				t.Fatalf("Records: %v", err)
			}
			for i := range framed {
				want := append(append([]byte{}, tc.header...), plain[i].Value...)
				if !bytes.Equal(framed[i].Value, want) {
					t.Errorf("record %d:\n got % x\nwant % x", i, framed[i].Value[:8], want[:8])
				}
			}
			if got := AppendConfluentHeader(nil, tc.schemaID); !bytes.Equal(got, tc.header) {
				t.Errorf("AppendConfluentHeader % x, want % x", got, tc.header)
			}
		})
	}
}

func TestRiskMessage(t *testing.T) {
	tests := []struct {
		name string
		key  processor.GroupKey
		want string
	}{
		{
			name: "all tokens present",
			key:  processor.GroupKey{Dest: "h1", User: "root", ProcessName: "ssh"},
			want: "An instance of ssh was identified on endpoint h1 by user root attempting to move laterally and download a file.",
		},
		{
			name: "missing dest and user",
			key:  processor.KeyOf(&processor.Event{ProcessName: "SSH"}),
			want: "An instance of SSH was identified on endpoint null by user null attempting to move laterally and download a file.",
		},
		{
			name: "dollar signs are not re-expanded",
			key:  processor.GroupKey{Dest: "$user$", User: "$dest$", ProcessName: "ssh"},
			want: "An instance of ssh was identified on endpoint $user$ by user $dest$ attempting to move laterally and download a file.",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := RiskMessage(tc.key); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestEncoderConcurrentUse(t *testing.T) {
	enc := newTestEncoder(t, WireConfluent, 3)
	dec := newTestDecoder(t)
	const workers, rounds = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var dst []*kgo.Record
			for i := 0; i < rounds; i++ {
				r := fullResult()
				r.AlertID = fmt.Sprintf("w%d-%d", w, i)
				r.Key.User = fmt.Sprintf("user-%d-%d", w, i)
				var err error
				if dst, err = enc.Records([]processor.Result{r}, dst[:0]); err != nil {
					errs <- err
					return
				}
				got, err := dec.Decode(dst[1].Value)
				if err != nil {
					errs <- err
					return
				}
				if got["alert_id"] != r.AlertID || got["risk_object"] != r.Key.User {
					errs <- fmt.Errorf("worker %d round %d: got %v/%v", w, i, got["alert_id"], got["risk_object"])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestEncoderConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     EncoderConfig
		wantErr string // empty: valid
	}{
		{name: "defaults with topic", cfg: EncoderConfig{Topic: "risk", Wire: WirePlain, SchemaID: 1}, wantErr: ""},
		{name: "confluent default id", cfg: EncoderConfig{Topic: "t", Wire: WireConfluent, SchemaID: 1}, wantErr: ""},
		{name: "plain ignores zero id", cfg: EncoderConfig{Topic: "t"}, wantErr: ""},
		{name: "missing topic", cfg: EncoderConfig{SchemaID: 1}, wantErr: "Topic"},
		{name: "confluent zero id", cfg: EncoderConfig{Topic: "t", Wire: WireConfluent}, wantErr: "SchemaID"},
		{name: "confluent negative id", cfg: EncoderConfig{Topic: "t", Wire: WireConfluent, SchemaID: -4}, wantErr: "SchemaID"},
		{name: "plain negative id", cfg: EncoderConfig{Topic: "t", SchemaID: -1}, wantErr: "SchemaID"},
		{name: "unknown wire", cfg: EncoderConfig{Topic: "t", Wire: 7, SchemaID: 1}, wantErr: "Wire"},
		{name: "confluent max id", cfg: EncoderConfig{Topic: "t", Wire: WireConfluent, SchemaID: 1<<31 - 1}, wantErr: ""},
		{name: "confluent id 2^32+1 does not wrap to 1", cfg: EncoderConfig{Topic: "t", Wire: WireConfluent, SchemaID: 4294967297}, wantErr: "SchemaID"},
		{name: "confluent id 2^31", cfg: EncoderConfig{Topic: "t", Wire: WireConfluent, SchemaID: 1 << 31}, wantErr: "SchemaID"},
		{name: "plain id out of range", cfg: EncoderConfig{Topic: "t", SchemaID: 1 << 32}, wantErr: "SchemaID"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			_, newErr := NewEncoder(tc.cfg)
			switch {
			case tc.wantErr == "" && (err != nil || newErr != nil):
				t.Errorf("Validate %v, NewEncoder %v; want valid", err, newErr)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Validate %v, want error naming %s", err, tc.wantErr)
			case tc.wantErr != "" && newErr == nil:
				t.Errorf("NewEncoder accepted an invalid config")
			}
		})
	}
}

func TestParseWireFormat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    WireFormat
		wantErr bool
	}{
		{name: "plain", in: "plain", want: WirePlain},
		{name: "confluent", in: "confluent", want: WireConfluent},
		{name: "any case", in: "Confluent", want: WireConfluent},
		{name: "empty", in: "", wantErr: true},
		{name: "other", in: "json", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseWireFormat(tc.in)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "unknown wire format") {
					t.Errorf("error %v, want unknown wire format", err)
				}
				return
			}
			if err != nil || got != tc.want || !strings.EqualFold(got.String(), tc.in) {
				t.Errorf("got %v (%q), %v; want %v", got, got.String(), err, tc.want)
			}
		})
	}
}

func TestSplitConfluentErrors(t *testing.T) {
	tests := []struct {
		name  string
		value []byte
	}{
		{name: "empty", value: nil},
		{name: "short header", value: []byte{0, 0, 0, 1}},
		{name: "wrong magic", value: []byte{1, 0, 0, 0, 1, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := SplitConfluent(tc.value); !errors.Is(err, errNotFramed) {
				t.Errorf("error %v, want errNotFramed", err)
			}
		})
	}
}

// checkReference checks the fast paths against the reference of r's
// native records: Records' values against goavro's encoding (framed as
// enc frames), AppendJSONLines against JSON.
func checkReference(t testing.TB, enc *Encoder, r processor.Result) {
	t.Helper()
	recs, err := enc.Records([]processor.Result{r}, nil)
	if err != nil {
		t.Fatalf("Records: %v", err)
	}
	lines, err := AppendJSONLines(nil, &r)
	if err != nil {
		t.Fatalf("AppendJSONLines: %v", err)
	}
	codec := newTestCodec(t)
	var wantLines []byte
	for i, native := range RiskRecords(r) {
		want, err := codec.BinaryFromNative(append([]byte(nil), enc.prefix...), native)
		if err != nil {
			t.Fatalf("goavro BinaryFromNative: %v", err)
		}
		if !bytes.Equal(recs[i].Value, want) {
			t.Fatalf("record %d differs from goavro:\n got % x\nwant % x", i, recs[i].Value, want)
		}
		line, err := JSON(native)
		if err != nil {
			t.Fatalf("JSON: %v", err)
		}
		wantLines = append(append(wantLines, line...), '\n')
	}
	if !bytes.Equal(lines, wantLines) {
		t.Fatalf("AppendJSONLines differs from JSON:\n got %s\nwant %s", lines, wantLines)
	}
}

// TestFastPathsMatchReference: Records writes, byte for byte, what goavro
// writes for the same native record, and AppendJSONLines what JSON writes.
func TestFastPathsMatchReference(t *testing.T) {
	tests := []struct {
		name   string
		result processor.Result
	}{
		{name: "every field set", result: fullResult()},
		{name: "missing fields", result: sparseResult()},
		{name: "early, revision 0", result: hostileResult(func(r *processor.Result) { r.Emission, r.Revision = processor.EmissionEarly, 0 })},
		{name: "big counts and revisions", result: hostileResult(func(r *processor.Result) { r.Count, r.Revision = 1<<40, 1<<30 })},
		{name: "times before 1970", result: hostileResult(func(r *processor.Result) {
			r.FirstSeen = time.Date(1969, 12, 31, 23, 59, 59, 999_999_999, time.UTC)
		})},
		{name: "oversized dest", result: hostileResult(func(r *processor.Result) { r.Key.Dest = strings.Repeat("d", 5000) })},
		{name: "invalid user", result: hostileResult(func(r *processor.Result) { r.Key.User = "\xc3(" })},
		{name: "long multibyte process", result: hostileResult(func(r *processor.Result) { r.Key.Process = strings.Repeat("ü€𝄞", 2000) })},
		{name: "json escapes", result: hostileResult(func(r *processor.Result) {
			r.Key.Process = "ssh \"a\"\\b\n\t\x00\x1f\x7f <&> \u2028\u2029"
			r.ParentProcess = "\b\f\r"
		})},
	}
	for _, wire := range []WireFormat{WirePlain, WireConfluent} {
		enc := newTestEncoder(t, wire, 42)
		for _, tc := range tests {
			t.Run(wire.String()+"/"+tc.name, func(t *testing.T) {
				checkReference(t, enc, tc.result)
			})
		}
	}
}

func FuzzFastPathsMatchReference(f *testing.F) {
	full, sparse := fullResult(), sparseResult()
	for _, r := range []processor.Result{full, sparse} {
		f.Add(r.Key.Dest, r.Key.User, r.Key.ProcessName, r.Key.Process, r.ParentProcess, r.OriginalFileName, r.Count, r.Revision, uint8(r.Emission), r.FirstSeen.UnixMilli())
	}
	f.Add("\xff", "é\xe2", "", strings.Repeat("x", MaxValueBytes+1), "\x00\n\"", "\uFFFD\u2028", int64(-1), int32(-7), uint8(2), int64(-1))
	enc := newTestEncoder(f, WirePlain, 0)
	f.Fuzz(func(t *testing.T, dest, user, name, process, parent, original string, count int64, revision int32, emission uint8, ms int64) {
		r := fullResult()
		r.Key.Dest, r.Key.User, r.Key.ProcessName, r.Key.Process = dest, user, name, process
		r.ParentProcess, r.OriginalFileName = parent, original
		r.Count, r.Revision, r.Emission = count, revision, processor.Emission(emission%3)
		// Within goavro's and CTime's range (years 0 to 9999 and beyond).
		r.LastSeen = time.UnixMilli(ms % (1 << 50))
		checkReference(t, enc, r)
	})
}
