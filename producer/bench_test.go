package producer

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/processor"
)

// BenchmarkEncodeRiskRecord measures one result: its two risk records,
// Confluent framed, as kgo records.
func BenchmarkEncodeRiskRecord(b *testing.B) {
	enc := newTestEncoder(b, WireConfluent, 1)
	results := []processor.Result{fullResult()}
	dst := make([]*kgo.Record, 0, 2)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = enc.Records(results, dst[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeRiskRecord(b *testing.B) {
	enc := newTestEncoder(b, WireConfluent, 1)
	recs, err := enc.Records([]processor.Result{fullResult()}, nil)
	if err != nil {
		b.Fatal(err)
	}
	dec := newTestDecoder(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dec.Decode(recs[0].Value); err != nil {
			b.Fatal(err)
		}
	}
}
