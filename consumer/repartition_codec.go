package consumer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/sshlateral/sshlateral/processor"
)

// Repartition record values. Stage 1 writes two kinds to the repartition
// topic, both a tag byte and a version byte, then varints and
// uvarint-length-prefixed strings:
//
//	event:  'E' 1 uvarint(source partition) uvarint(source offset) uvarint(sequence)
//	        varint(event time, unix ns) then the eleven processor.Event strings in field order
//	marker: 'P' 1 uvarint(source partition) uvarint(source partitions) byte(flags)
//	        [varint(newest accepted event time, unix ns) if flags&markerHasTime]
//
// The event keeps "" (missing) apart from any value, so stage 2 sees the
// event exactly as stage 1 decoded it. The sequence numbers the matches one
// source record completed (a decoder that assembles events over several
// records can complete more than one): (offset, sequence) orders a source
// partition's matches.
const (
	repartEventTag  = 'E'
	repartMarkerTag = 'P'
	repartVersion   = 1

	markerHasTime = 1 << 0
)

// ErrRepartitionRecord marks a repartition record stage 2 cannot read.
var ErrRepartitionRecord = errors.New("undecodable repartition record")

// repartRecord is one decoded repartition record.
type repartRecord struct {
	marker    bool
	source    int32 // source (input) partition
	offset    int64 // event: its source offset
	seq       int64 // event: its number among the matches of that offset
	sources   int32 // marker: the input topic's partition count
	hasTime   bool  // marker: the source has accepted an event
	timeNanos int64 // event time, or the marker's newest accepted event time
}

// eventStrings lists e's string fields in their encoding order.
func eventStrings(e *processor.Event) [11]*string {
	return [11]*string{&e.Dest, &e.User, &e.Process, &e.ProcessName, &e.ProcessPath, &e.ProcessID,
		&e.ParentProcess, &e.ParentProcessName, &e.ParentProcessPath, &e.ParentProcessID, &e.OriginalFileName}
}

// appendRepartEvent appends the encoding of e, the seq-th match completed
// at offset of source partition source, to dst.
func appendRepartEvent(dst []byte, source int32, offset, seq int64, e *processor.Event) []byte {
	dst = append(dst, repartEventTag, repartVersion)
	dst = binary.AppendUvarint(dst, uint64(source))
	dst = binary.AppendUvarint(dst, uint64(offset))
	dst = binary.AppendUvarint(dst, uint64(seq))
	dst = binary.AppendVarint(dst, e.Time.UnixNano())
	for _, s := range eventStrings(e) {
		dst = binary.AppendUvarint(dst, uint64(len(*s)))
		dst = append(dst, *s...)
	}
	return dst
}

// appendRepartMarker appends a progress marker of source partition source
// (one of sources) to dst; newest is its newest accepted event time, if any.
func appendRepartMarker(dst []byte, source, sources int32, hasTime bool, newest int64) []byte {
	dst = append(dst, repartMarkerTag, repartVersion)
	dst = binary.AppendUvarint(dst, uint64(source))
	dst = binary.AppendUvarint(dst, uint64(sources))
	if !hasTime {
		return append(dst, 0)
	}
	dst = append(dst, markerHasTime)
	return binary.AppendVarint(dst, newest)
}

// decodeRepart reads a repartition record; an event's fields go to ev.
func decodeRepart(v []byte, ev *processor.Event) (repartRecord, error) {
	r := repartReader{buf: v}
	var rec repartRecord
	if len(v) < 2 {
		return rec, r.errorf("%d bytes, shorter than the header", len(v))
	}
	if v[1] != repartVersion {
		return rec, r.errorf("version %d, want %d", v[1], repartVersion)
	}
	r.off = 2
	rec.source = r.int32("source partition")
	switch v[0] {
	case repartEventTag:
		rec.offset = r.int64("source offset")
		rec.seq = r.int64("sequence")
		rec.timeNanos = r.varint("event time")
		for _, s := range eventStrings(ev) {
			*s = r.string()
		}
		ev.Time = time.Unix(0, rec.timeNanos).UTC()
	case repartMarkerTag:
		rec.marker = true
		rec.sources = r.int32("source partitions")
		flags := r.byte("marker flags")
		if flags&^markerHasTime != 0 {
			return rec, r.errorf("unknown marker flags %#x", flags)
		}
		if rec.hasTime = flags&markerHasTime != 0; rec.hasTime {
			rec.timeNanos = r.varint("newest event time")
		}
		if r.err == nil && rec.source >= rec.sources {
			return rec, r.errorf("source partition %d of %d", rec.source, rec.sources)
		}
	default:
		return rec, r.errorf("tag %q, want %q or %q", v[0], repartEventTag, repartMarkerTag)
	}
	return rec, r.finish()
}

// repartReader reads a repartition value, keeping the first error.
type repartReader struct {
	buf []byte
	off int
	err error
}

func (r *repartReader) errorf(format string, args ...any) error {
	if r.err == nil {
		r.err = fmt.Errorf("%w: at byte %d: %s", ErrRepartitionRecord, r.off, fmt.Sprintf(format, args...))
	}
	return r.err
}

func (r *repartReader) uvarint(field string) uint64 { return readVarint(r, field, binary.Uvarint) }
func (r *repartReader) varint(field string) int64   { return readVarint(r, field, binary.Varint) }

// readVarint reads one varint with read (binary.Varint or Uvarint).
func readVarint[T int64 | uint64](r *repartReader, field string, read func([]byte) (T, int)) T {
	if r.err != nil {
		return 0
	}
	v, n := read(r.buf[r.off:])
	if n <= 0 {
		r.errorf("truncated or overlong %s", field)
		return 0
	}
	r.off += n
	return v
}

func (r *repartReader) int32(field string) int32 {
	v := r.uvarint(field)
	if v > 1<<31-1 {
		r.errorf("%s %d out of range", field, v)
		return 0
	}
	return int32(v)
}

func (r *repartReader) int64(field string) int64 {
	v := r.uvarint(field)
	if v > 1<<63-1 {
		r.errorf("%s %d out of range", field, v)
		return 0
	}
	return int64(v)
}

func (r *repartReader) byte(field string) byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.buf) {
		r.errorf("truncated %s", field)
		return 0
	}
	r.off++
	return r.buf[r.off-1]
}

func (r *repartReader) string() string {
	n := r.uvarint("string length")
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.buf)-r.off) {
		r.errorf("string length %d exceeds the %d bytes left", n, len(r.buf)-r.off)
		return ""
	}
	s := string(r.buf[r.off : r.off+int(n)])
	r.off += int(n)
	return s
}

// finish fails on bytes left over.
func (r *repartReader) finish() error {
	if r.err == nil && r.off != len(r.buf) {
		r.errorf("%d trailing bytes", len(r.buf)-r.off)
	}
	return r.err
}
