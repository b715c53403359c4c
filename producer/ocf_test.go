package producer

import (
	"bytes"
	"fmt"
	"reflect"
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
