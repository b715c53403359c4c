package producer

import (
	"bytes"
	"compress/flate"
	"crypto/rand"
	"encoding/binary"
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

// A block is written when it holds ocfBlockRecords records or
// ocfBlockBytes bytes of them; larger blocks compress better, and the byte
// bound keeps the buffer small when records are large.
const (
	ocfBlockRecords = 1000
	ocfBlockBytes   = 1 << 20
)

// ocfDeflateLevel trades a little size for speed. On a block of 850 risk
// records level 2 took 1.3 µs per result and kept 3.8% of the bytes; the
// default level 6 (goavro's) took 4.5 µs and kept 2.9%: in an alert storm
// the default level alone cost half of scan's CPU.
const ocfDeflateLevel = 2

// OCFWriter writes risk records to an Avro object container file. goavro
// writes the header (schema, codec, sync marker); the blocks hold the
// records as Encoder encodes them, so no native maps are built. It is not
// safe for concurrent use.
type OCFWriter struct {
	w       io.Writer
	sync    [16]byte
	deflate *flate.Writer // nil for the null codec; reused across blocks
	fields  riskFields    // of the result being encoded; kept off the stack, see encodeState
	block   []byte        // encoded records not yet written
	count   int
	packed  bytes.Buffer // the compressed block
	frame   []byte
	closed  bool
}

// NewOCFWriter writes the container header to w and returns a writer with
// deflate-compressed blocks.
func NewOCFWriter(w io.Writer) (*OCFWriter, error) {
	return NewOCFWriterCompression(w, OCFDeflate)
}

// NewOCFWriterCompression is NewOCFWriter with a chosen block codec. It
// always starts a new container at w's position.
func NewOCFWriterCompression(w io.Writer, compression OCFCompression) (*OCFWriter, error) {
	o := &OCFWriter{w: w}
	switch compression {
	case OCFDeflate:
		o.deflate, _ = flate.NewWriter(nil, ocfDeflateLevel)
	case OCFNull:
	default:
		return nil, fmt.Errorf("producer: ocf compression %q: want deflate or null", compression)
	}
	codec, err := schemas.NewRiskRecordCodec()
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	if _, err := rand.Read(o.sync[:]); err != nil {
		return nil, fmt.Errorf("producer: ocf sync marker: %w", err)
	}
	// Through a buffer: given an *os.File, goavro would append to an
	// existing container, whose sync marker this writer would not know.
	var header bytes.Buffer
	if _, err := goavro.NewOCFWriter(goavro.OCFConfig{W: &header, Codec: codec, CompressionName: string(compression), SyncMarker: o.sync}); err != nil {
		return nil, fmt.Errorf("producer: open ocf: %w", err)
	}
	if _, err := w.Write(header.Bytes()); err != nil {
		return nil, fmt.Errorf("producer: write ocf header: %w", err)
	}
	return o, nil
}

// Write buffers the two risk records of each result and writes full
// blocks. A result Encoder would refuse fails the call before any of its
// results is buffered.
func (o *OCFWriter) Write(results []processor.Result) error {
	if o.closed {
		return errors.New("producer: ocf write after close")
	}
	for i := range results {
		if err := checkResult(&results[i]); err != nil {
			return fmt.Errorf("producer: ocf write: result %d: %w", i, err)
		}
	}
	for i := range results {
		o.fields = newRiskFields(&results[i])
		o.block, _ = appendPair(o.block, avroLayout{f: &o.fields})
		o.count += 2
		if o.count >= ocfBlockRecords || len(o.block) >= ocfBlockBytes {
			if err := o.flush(); err != nil {
				return err
			}
		}
	}
	o.fields = riskFields{} // let the results go
	return nil
}

// flush writes the buffered records as one block: record count, byte size,
// the (compressed) records, the sync marker.
func (o *OCFWriter) flush() error {
	if o.count == 0 {
		return nil
	}
	data := o.block
	if o.deflate != nil {
		o.packed.Reset()
		o.deflate.Reset(&o.packed)
		if _, err := o.deflate.Write(o.block); err != nil {
			return fmt.Errorf("producer: ocf deflate: %w", err)
		}
		if err := o.deflate.Close(); err != nil {
			return fmt.Errorf("producer: ocf deflate: %w", err)
		}
		data = o.packed.Bytes()
	}
	o.frame = binary.AppendVarint(o.frame[:0], int64(o.count))
	o.frame = binary.AppendVarint(o.frame, int64(len(data)))
	o.frame = append(o.frame, data...)
	o.frame = append(o.frame, o.sync[:]...)
	if _, err := o.w.Write(o.frame); err != nil {
		return fmt.Errorf("producer: ocf write block: %w", err)
	}
	o.block, o.count = o.block[:0], 0
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
