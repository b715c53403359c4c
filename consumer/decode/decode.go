package decode

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sshlateral/sshlateral/processor"
)

// Format is the encoding of input records.
type Format uint8

const (
	// FormatAuto detects the format of every record on its own: a JSON object
	// is CIM, anything holding <Event is Sysmon.
	FormatAuto Format = iota
	// FormatSysmon is Sysmon for Linux XML, bare or behind a syslog header.
	FormatSysmon
	// FormatCIM is one JSON object per record with Splunk Endpoint.Processes
	// field names.
	FormatCIM
)

// ParseFormat parses the --input-format flag value.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "auto":
		return FormatAuto, nil
	case "sysmon":
		return FormatSysmon, nil
	case "cim":
		return FormatCIM, nil
	}
	return 0, fmt.Errorf("--input-format: unknown format %q (want auto, sysmon or cim)", s)
}

// String returns the flag spelling of f.
func (f Format) String() string {
	switch f {
	case FormatAuto:
		return "auto"
	case FormatSysmon:
		return "sysmon"
	case FormatCIM:
		return "cim"
	}
	return "format(" + strconv.Itoa(int(f)) + ")"
}

// Outcome says what a decoded record is.
type Outcome uint8

const (
	// OutcomeEvent means ev is a fully decoded process start: give it to
	// Partition.Process.
	OutcomeEvent Outcome = iota
	// OutcomeNoMatch means the record is a process start that cannot match
	// the detection (decided by the prefilter); only ev.Time is set: give it
	// to Partition.Advance so the watermark still moves.
	OutcomeNoMatch
	// OutcomeSkip means the record is not a process event (another Sysmon
	// EventID, a syslog banner line, an empty line). It is counted under
	// LastSkipReason, not an error.
	OutcomeSkip
)

// String names the outcome for logs and metrics.
func (o Outcome) String() string {
	switch o {
	case OutcomeEvent:
		return "event"
	case OutcomeNoMatch:
		return "nomatch"
	case OutcomeSkip:
		return "skip"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Skip reasons. The set is small and fixed so that it can label a metric:
// "empty", "banner", "event_id_0" … "event_id_255" and "event_id_other".
const (
	SkipEmpty        = "empty"
	SkipBanner       = "banner"
	SkipEventIDOther = "event_id_other"
)

// skipEventID holds the interned "event_id_N" reasons, so a skip never
// allocates.
var skipEventID = func() (r [256]string) {
	for i := range r {
		r[i] = "event_id_" + strconv.Itoa(i)
	}
	return r
}()

func skipReasonForEventID(id uint32) string {
	if id < uint32(len(skipEventID)) {
		return skipEventID[id]
	}
	return SkipEventIDOther
}

// errLayout marks XML that is well-formed but outside the flat layout Sysmon
// writes and the fast scanner reads (comments, CDATA, namespace prefixes,
// elements nested in a value, duplicated or misplaced EventID/Data
// elements). Such records go to the dead-letter path like any other
// undecodable record.
var errLayout = errors.New("unsupported xml layout")

// Decoder turns raw records into processor.Events. It is reusable and keeps
// scratch buffers between calls, so it is not safe for concurrent use: give
// each partition worker its own.
type Decoder struct {
	format Format
	now    func() time.Time
	skip   string

	// buf collects the values of one event; one string conversion at the end
	// backs every field of the event.
	buf []byte
	// tmp holds a value that must be unescaped but is not an event field
	// (times, attribute names, JSON keys).
	tmp     []byte
	sysTime []byte
	offs    [numFields]span
	// name is the process_name of a CIM record in the prefilter pass.
	name     []byte
	haveName bool
}

// NewDecoder returns a Decoder for format.
func NewDecoder(format Format) (*Decoder, error) {
	if format > FormatCIM {
		return nil, fmt.Errorf("--input-format: unknown format %d", format)
	}
	return &Decoder{format: format, now: time.Now}, nil
}

// SetNow replaces the clock used only to infer the year of an RFC 3164
// syslog timestamp, the last fallback for the event time. nil restores
// time.Now.
func (d *Decoder) SetNow(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	d.now = now
}

// Format returns the format d was made for.
func (d *Decoder) Format() Format { return d.format }

// LastSkipReason names why the last Decode returned OutcomeSkip; it is empty
// after any other outcome.
func (d *Decoder) LastSkipReason() string { return d.skip }

// Decode parses one record (one line, or one Kafka record value). A process
// start that the prefilter proves cannot match comes back as OutcomeNoMatch
// with only ev.Time set. On error the record is undecodable and the error
// says why. Decode does not retain raw.
//
// Decode reads a non-matching record only as far as it needs to, so a
// malformed record that cannot match may come back as OutcomeNoMatch or
// OutcomeSkip where DecodeFull would reject it.
func (d *Decoder) Decode(raw []byte, ev *processor.Event) (Outcome, error) {
	return d.decode(raw, ev, true)
}

// DecodeFull is Decode without the prefilter: every process start comes back
// as OutcomeEvent, and the whole record is validated.
func (d *Decoder) DecodeFull(raw []byte, ev *processor.Event) (Outcome, error) {
	return d.decode(raw, ev, false)
}

func (d *Decoder) decode(raw []byte, ev *processor.Event, prefilter bool) (Outcome, error) {
	out, err := d.decodeRecord(raw, ev, prefilter)
	if err == nil && out != OutcomeSkip && !processor.ValidEventTime(ev.Time) {
		t := ev.Time
		*ev = processor.Event{}
		return 0, fmt.Errorf("%w: %s is outside %s to %s", ErrEventTime, t.Format(time.RFC3339Nano),
			processor.MinEventTime.Format(time.DateOnly), processor.MaxEventTime.Format(time.DateOnly))
	}
	return out, err
}

// ErrEventTime marks a record whose event time is outside the range the
// processor holds (processor.ValidEventTime): before 1970 or after
// 2116-02-20. Such a time is an error, never clamped.
var ErrEventTime = errors.New("event time out of range")

func (d *Decoder) decodeRecord(raw []byte, ev *processor.Event, prefilter bool) (Outcome, error) {
	*ev = processor.Event{}
	d.skip = ""
	line := trimLineEnd(raw)
	start := 0
	for start < len(line) && isSpace(line[start]) {
		start++
	}
	if start == len(line) {
		d.skip = SkipEmpty
		return OutcomeSkip, nil
	}
	switch d.format {
	case FormatCIM:
		return d.decodeCIM(line[start:], ev, prefilter)
	case FormatSysmon:
		return d.decodeSysmonLine(line, ev, prefilter, "sysmon: no <Event> element")
	}
	if line[start] == '{' {
		return d.decodeCIM(line[start:], ev, prefilter)
	}
	return d.decodeSysmonLine(line, ev, prefilter, "unrecognised record format")
}

// decodeSysmonLine splits a line into its syslog header and <Event>
// element. A syslog line without an element is a banner.
func (d *Decoder) decodeSysmonLine(line []byte, ev *processor.Event, prefilter bool, noEvent string) (Outcome, error) {
	prefix, elem, ok := splitSysmonLine(line)
	if !ok {
		if _, ok := syslogHeader(line); ok {
			d.skip = SkipBanner
			return OutcomeSkip, nil
		}
		return 0, errors.New(noEvent)
	}
	if prefilter {
		if out, handled := d.sysmonPrefilter(prefix, elem, ev); handled {
			return out, nil
		}
	}
	return d.decodeSysmon(prefix, elem, ev)
}

// trimLineEnd strips the line terminator (LF or CRLF, repeated) and trailing
// blanks.
func trimLineEnd(b []byte) []byte {
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// isSpace is XML and JSON whitespace.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// splitSysmonLine finds the root <Event> element: the first "<Event"
// followed by '>', '/' or whitespace. What precedes it is the syslog header
// (possibly empty).
func splitSysmonLine(line []byte) (prefix, elem []byte, ok bool) {
	for off := 0; ; {
		i := bytes.Index(line[off:], []byte("<Event"))
		if i < 0 {
			return nil, nil, false
		}
		i += off
		j := i + len("<Event")
		if j < len(line) && (line[j] == '>' || line[j] == '/' || isSpace(line[j])) {
			return line[:i], line[i:], true
		}
		off = j
	}
}

// Field indexes into Decoder.offs: the processor.Field table, as ints so
// that decoders can extend the range with codes of their own.
const (
	fDest              = int(processor.FieldDest)
	fUser              = int(processor.FieldUser)
	fProcess           = int(processor.FieldProcess)
	fProcessName       = int(processor.FieldProcessName)
	fProcessPath       = int(processor.FieldProcessPath)
	fProcessID         = int(processor.FieldProcessID)
	fParentProcess     = int(processor.FieldParentProcess)
	fParentProcessName = int(processor.FieldParentProcessName)
	fParentProcessPath = int(processor.FieldParentProcessPath)
	fParentProcessID   = int(processor.FieldParentProcessID)
	fOriginalFileName  = int(processor.FieldOriginalFileName)
	numFields          = int(processor.NumFields)
)

// span is a value's place in Decoder.buf; set is false for a missing field.
type span struct {
	start, end int32
	set        bool
}

func (d *Decoder) resetFields() {
	d.buf = d.buf[:0]
	d.offs = [numFields]span{}
}

// setField appends v as the value of field f.
func (d *Decoder) setField(f int, v []byte) {
	start := len(d.buf)
	d.buf = append(d.buf, v...)
	d.offs[f] = span{int32(start), int32(len(d.buf)), true}
}

// basenameField sets field dst to the part of field src after its last '/'.
// It shares src's bytes.
func (d *Decoder) basenameField(dst, src int) {
	s := d.offs[src]
	if !s.set {
		return
	}
	v := d.buf[s.start:s.end]
	if i := bytes.LastIndexByte(v, '/'); i >= 0 {
		s.start += int32(i + 1)
	}
	d.offs[dst] = s
}

// fillEvent copies the collected values into ev with a single allocation.
func (d *Decoder) fillEvent(ev *processor.Event) {
	if len(d.buf) == 0 {
		return
	}
	all := string(d.buf)
	for f, s := range d.offs {
		if s.set {
			ev.Set(processor.Field(f), all[s.start:s.end])
		}
	}
}
