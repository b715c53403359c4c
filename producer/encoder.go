package producer

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/processor"
	"github.com/sshlateral/sshlateral/schemas"
)

// Record header keys set on every risk record.
const (
	HeaderEmission = "emission" // EARLY, FINAL or LATE
	HeaderRevision = "revision" // decimal revision of the alert_id
)

// Encoder turns results into Kafka records. It is safe for concurrent use.
type Encoder struct {
	codec  *goavro.Codec
	topic  string
	prefix []byte // Confluent header, or nil for plain values
	states sync.Pool
}

// encodeState is per-call scratch, pooled because Records runs on every
// partition worker.
type encodeState struct {
	fields  riskFields // here rather than on the stack: appendPair's layout would move it to the heap per result
	scratch []byte
	ends    []int // end offsets in scratch: key, value, value, emission, revision per result
}

// NewEncoder validates cfg and returns an Encoder for it.
func NewEncoder(cfg EncoderConfig) (*Encoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	codec, err := schemas.NewRiskRecordCodec()
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	e := &Encoder{codec: codec, topic: cfg.Topic}
	if cfg.Wire == WireConfluent {
		e.prefix = AppendConfluentHeader(nil, int32(cfg.SchemaID)) // in range: validated
	}
	e.states.New = func() any { return new(encodeState) }
	return e, nil
}

// slicesPerResult is key, two values, emission header, revision header.
const slicesPerResult = 5

// Records appends two records per result to dst (dest/system first, then
// user/user) and returns the extended slice. On error dst is returned
// unextended.
//
// String values are written as valid UTF-8 within the documented maximum
// lengths, as RiskRecords describes them (docs/risk-record.md).
//
// Each record has Topic set, Key = alert_id (both records of a result go
// to the same partition, in order), Value = the Avro record in the
// configured wire format, and headers "emission" and "revision". The two
// records of a result share their Key and Headers backing arrays; treat
// them as read-only.
//
// Timestamp and Context are left zero: franz-go stamps the produce time and
// the Produce context. Event time travels in the value (first_seen,
// last_seen, window_*); stamping it on the record instead would let
// time-based retention delete, or a broker's
// message.timestamp.before.max.ms reject, alerts raised from replayed or
// late telemetry.
func (e *Encoder) Records(results []processor.Result, dst []*kgo.Record) ([]*kgo.Record, error) {
	if len(results) == 0 {
		return dst, nil
	}
	st := e.states.Get().(*encodeState)
	defer func() {
		st.fields = riskFields{} // let the results go
		e.states.Put(st)
	}()
	st.scratch = st.scratch[:0]
	st.ends = st.ends[:0]

	for i := range results {
		r := &results[i]
		if err := checkResult(r); err != nil {
			return dst, fmt.Errorf("producer: encode for topic %s: result %d (alert %.64q): %w", e.topic, i, r.AlertID, err)
		}
		st.fields = newRiskFields(r)
		st.scratch = append(st.scratch, r.AlertID...)
		st.ends = append(st.ends, len(st.scratch))
		var first int
		st.scratch, first = appendPair(st.scratch, avroLayout{&st.fields, e.prefix})
		st.ends = append(st.ends, first, len(st.scratch))
		st.scratch = append(st.scratch, r.Emission.String()...)
		st.ends = append(st.ends, len(st.scratch))
		st.scratch = strconv.AppendInt(st.scratch, int64(r.Revision), 10)
		st.ends = append(st.ends, len(st.scratch))
	}

	// One allocation each for all bytes, records and headers of the call;
	// the scratch buffer stays with the pool.
	block := make([]byte, len(st.scratch))
	copy(block, st.scratch)
	recs := make([]kgo.Record, 2*len(results))
	headers := make([]kgo.RecordHeader, 2*len(results))
	start := 0
	next := func(j int) []byte {
		end := st.ends[j]
		b := block[start:end:end]
		start = end
		return b
	}
	for i := range results {
		j := i * slicesPerResult
		key, v1, v2, emission, revision := next(j), next(j+1), next(j+2), next(j+3), next(j+4)
		h := headers[2*i : 2*i+2 : 2*i+2]
		h[0] = kgo.RecordHeader{Key: HeaderEmission, Value: emission}
		h[1] = kgo.RecordHeader{Key: HeaderRevision, Value: revision}
		recs[2*i] = kgo.Record{Topic: e.topic, Key: key, Value: v1, Headers: h}
		recs[2*i+1] = kgo.Record{Topic: e.topic, Key: key, Value: v2, Headers: h}
		dst = append(dst, &recs[2*i], &recs[2*i+1])
	}
	return dst, nil
}

// AppendBinary appends the plain Avro binary of one native risk record (no
// framing) to dst, encoded by goavro. Records does not use it: it writes the
// same bytes without the native maps.
func (e *Encoder) AppendBinary(dst []byte, native map[string]any) ([]byte, error) {
	out, err := e.codec.BinaryFromNative(dst, native)
	if err != nil {
		return dst, fmt.Errorf("producer: encode risk record: %w", err)
	}
	return out, nil
}
