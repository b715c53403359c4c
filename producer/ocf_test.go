package producer

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/linkedin/goavro/v2"

	"github.com/sshlateral/sshlateral/processor"
	"github.com/sshlateral/sshlateral/schemas"
)

func TestOCFRoundTrip(t *testing.T) {
	many := make([]processor.Result, 0, 700)
	for i := 0; i < cap(many); i++ {
		r := fullResult()
		if i%2 == 1 {
			r = sparseResult()
		}
		r.AlertID = fmt.Sprintf("alert-%04d", i)
		many = append(many, r)
	}
	tests := []struct {
		name        string
		compression OCFCompression
		batches     [][]processor.Result
	}{
		{name: "deflate, two results", compression: OCFDeflate, batches: [][]processor.Result{{fullResult()}, {sparseResult()}}},
		{name: "null codec, two results", compression: OCFNull, batches: [][]processor.Result{{fullResult(), sparseResult()}}},
		{name: "deflate, more than one block", compression: OCFDeflate, batches: [][]processor.Result{many[:300], many[300:]}},
		{name: "deflate, nothing written", compression: OCFDeflate, batches: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := NewOCFWriterCompression(&buf, tc.compression)
			if err != nil {
				t.Fatalf("NewOCFWriterCompression: %v", err)
			}
			var want []map[string]any
			for _, batch := range tc.batches {
				if err := w.Write(batch); err != nil {
					t.Fatalf("Write: %v", err)
				}
				for _, r := range batch {
					natives := RiskRecords(r)
					want = append(want, natives[0], natives[1])
				}
			}
			if err := w.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}

			rd, err := goavro.NewOCFReader(&buf)
			if err != nil {
				t.Fatalf("NewOCFReader: %v", err)
			}
			if rd.CompressionName() != string(tc.compression) {
				t.Errorf("compression %q, want %q", rd.CompressionName(), tc.compression)
			}
			if name := rd.Codec().TypeName(); name.String() != schemas.RiskRecordFullName {
				t.Errorf("file schema is %s, want %s", name, schemas.RiskRecordFullName)
			}
			var got []map[string]any
			for rd.Scan() {
				v, err := rd.Read()
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
				got = append(got, v.(map[string]any))
			}
			if err := rd.Err(); err != nil {
				t.Fatalf("scan: %v", err)
			}
			if len(got) != len(want) {
				t.Fatalf("read %d records, wrote %d", len(got), len(want))
			}
			for i := range want {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("record %d\n got %v\nwant %v", i, got[i], want[i])
				}
			}
		})
	}
}

func TestOCFWriterErrors(t *testing.T) {
	t.Run("unknown compression", func(t *testing.T) {
		if _, err := NewOCFWriterCompression(&bytes.Buffer{}, "snappy"); err == nil {
			t.Errorf("accepted compression snappy")
		}
	})
	t.Run("write after close", func(t *testing.T) {
		w, err := NewOCFWriter(&bytes.Buffer{})
		if err != nil {
			t.Fatalf("NewOCFWriter: %v", err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := w.Write([]processor.Result{fullResult()}); err == nil {
			t.Errorf("Write after Close succeeded")
		}
	})
	t.Run("empty alert id", func(t *testing.T) {
		w, err := NewOCFWriter(&bytes.Buffer{})
		if err != nil {
			t.Fatalf("NewOCFWriter: %v", err)
		}
		r := fullResult()
		r.AlertID = ""
		if err := w.Write([]processor.Result{r}); err == nil {
			t.Errorf("Write accepted an empty alert id")
		}
	})
	t.Run("default is deflate", func(t *testing.T) {
		var buf bytes.Buffer
		w, err := NewOCFWriter(&buf)
		if err != nil {
			t.Fatalf("NewOCFWriter: %v", err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		rd, err := goavro.NewOCFReader(&buf)
		if err != nil {
			t.Fatalf("NewOCFReader: %v", err)
		}
		if rd.CompressionName() != goavro.CompressionDeflateLabel {
			t.Errorf("compression %q, want deflate", rd.CompressionName())
		}
	})
}

// TestOCFMatchesGoavro: with the null codec the container is, byte for
// byte, what goavro's own OCF writer writes for the native records with the
// same sync marker and blocks; with deflate the blocks decompress to those
// bytes.
func TestOCFMatchesGoavro(t *testing.T) {
	results := []processor.Result{fullResult(), sparseResult(),
		hostileResult(func(r *processor.Result) { r.Key.Process = "ssh \xff" + strings.Repeat("x", 9000) })}
	for _, compression := range []OCFCompression{OCFNull, OCFDeflate} {
		t.Run(string(compression), func(t *testing.T) {
			var got bytes.Buffer
			w, err := NewOCFWriterCompression(&got, compression)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Write(results); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			ref, err := goavro.NewOCFWriter(goavro.OCFConfig{W: &want, Codec: newTestCodec(t), CompressionName: string(OCFNull), SyncMarker: w.sync})
			if err != nil {
				t.Fatal(err)
			}
			var natives []any
			for _, r := range results {
				for _, m := range RiskRecords(r) {
					natives = append(natives, m)
				}
			}
			if err := ref.Append(natives); err != nil {
				t.Fatal(err)
			}
			if compression == OCFNull {
				// The header's metadata map is written in Go map order:
				// compare what follows it, the blocks.
				blocks := func(b []byte) []byte {
					i := bytes.Index(b, w.sync[:])
					if i < 0 {
						t.Fatal("no sync marker")
					}
					return b[i+len(w.sync):]
				}
				if !bytes.Equal(blocks(got.Bytes()), blocks(want.Bytes())) {
					t.Fatalf("blocks differ from goavro's (%d vs %d bytes)", got.Len(), want.Len())
				}
			}
			rd, err := goavro.NewOCFReader(bytes.NewReader(got.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			var i int
			for rd.Scan() {
				v, err := rd.Read()
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(v, natives[i]) {
					t.Errorf("record %d differs", i)
				}
				i++
			}
			if rd.Err() != nil || i != len(natives) {
				t.Fatalf("read %d of %d records: %v", i, len(natives), rd.Err())
			}
		})
	}
}
