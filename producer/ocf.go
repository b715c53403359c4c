package producer

import (
	"errors"
	"fmt"
	"io"

	"github.com/linkedin/goavro/v2"

	"github.com/sshlateral/sshlateral/processor"
	"github.com/sshlateral/sshlateral/schemas"
)

// OCFCompression is the block codec of an Avro object container file.
type OCFCompression string

const (
	// OCFDeflate compresses blocks with deflate (NewOCFWriter's default).
	OCFDeflate OCFCompression = goavro.CompressionDeflateLabel
	// OCFNull writes blocks uncompressed.
	OCFNull OCFCompression = goavro.CompressionNullLabel
)

// ocfBlockRecords is how many risk records an OCF block holds before it is
// written; larger blocks compress better.
const ocfBlockRecords = 1000

// OCFWriter writes risk records to an Avro object container file. It is not
// safe for concurrent use.
type OCFWriter struct {
	w       *goavro.OCFWriter
	pending []any
	closed  bool
}

// NewOCFWriter writes the container header to w and returns a writer with
// deflate-compressed blocks.
func NewOCFWriter(w io.Writer) (*OCFWriter, error) {
	return NewOCFWriterCompression(w, OCFDeflate)
}

// NewOCFWriterCompression is NewOCFWriter with a chosen block codec.
func NewOCFWriterCompression(w io.Writer, compression OCFCompression) (*OCFWriter, error) {
	switch compression {
	case OCFDeflate, OCFNull:
	default:
		return nil, fmt.Errorf("producer: ocf compression %q: want deflate or null", compression)
	}
	codec, err := schemas.NewRiskRecordCodec()
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	ocf, err := goavro.NewOCFWriter(goavro.OCFConfig{W: w, Codec: codec, CompressionName: string(compression)})
	if err != nil {
		return nil, fmt.Errorf("producer: open ocf: %w", err)
	}
	return &OCFWriter{w: ocf}, nil
}

// Write buffers the two risk records of each result and writes full blocks.
func (o *OCFWriter) Write(results []processor.Result) error {
	if o.closed {
		return errors.New("producer: ocf write after close")
	}
	for i := range results {
		if results[i].AlertID == "" {
			return fmt.Errorf("producer: ocf write: result %d: %w", i, errEmptyAlertID)
		}
		for _, m := range RiskRecords(results[i]) {
			o.pending = append(o.pending, m)
		}
	}
	if len(o.pending) >= ocfBlockRecords {
		return o.flush()
	}
	return nil
}

func (o *OCFWriter) flush() error {
	if len(o.pending) == 0 {
		return nil
	}
	if err := o.w.Append(o.pending); err != nil {
		return fmt.Errorf("producer: ocf append: %w", err)
	}
	clear(o.pending)
	o.pending = o.pending[:0]
	return nil
}

// Close writes the buffered records. It does not close the underlying
// writer, which stays the caller's.
func (o *OCFWriter) Close() error {
	if o.closed {
		return nil
	}
	o.closed = true
	return o.flush()
}
