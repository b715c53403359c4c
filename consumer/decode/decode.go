package decode

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sshlateral/sshlateral/processor"
)

// Format is the encoding of input records.
type Format uint8

const (
	// FormatAuto detects the format of every record on its own: a JSON
	// object is told apart by its fields (OCSF, an envelope, go-libaudit
	// JSON, ECS, CIM, in that order), anything holding <Event is Sysmon.
	FormatAuto Format = iota
	// FormatSysmon is Sysmon for Linux XML, bare or behind a syslog header.
	FormatSysmon
	// FormatCIM is one JSON object per record with Splunk Endpoint.Processes
	// field names.
	FormatCIM
	// FormatEnvelope is a JSON object with one field holding the event, as a
	// string (a Sysmon line, Sysmon XML, a JSON record) or as an object: the
	// field given by WithEnvelopeField, else message, log, event, _raw or
	// event.original.
	FormatEnvelope
	// FormatHEC is a Splunk HTTP Event Collector envelope: the event is in
	// "event"; "time" and "host" stand in for what the event lacks.
	FormatHEC
	// FormatECS is Elastic Common Schema, nested or dotted-flat; go-libaudit
	// (aucoalesce) JSON is read too.
	FormatECS
	// FormatOCSF is OCSF Process Activity (class_uid 1007).
	FormatOCSF
	// FormatAuditd is raw Linux audit.log lines, assembled per event
	// (auditd.go): Decode may return OutcomePending, and Expire and Ready
	// hand out what completes later.
	FormatAuditd
	numFormats
)

var formatNames = [numFormats]string{"auto", "sysmon", "cim", "envelope", "hec", "ecs", "ocsf", "auditd"}

// ParseFormat parses a format name, in any case (as Guarantee and the
// other enums do).
func ParseFormat(s string) (Format, error) {
	for f, n := range formatNames {
		if strings.EqualFold(n, s) {
			return Format(f), nil
		}
	}
	return 0, fmt.Errorf("unknown format %q (want one of %s)", s, strings.Join(formatNames[:], ", "))
}

// String returns the flag spelling of f.
func (f Format) String() string {
	if f < numFormats {
		return formatNames[f]
	}
	return "format(" + strconv.Itoa(int(f)) + ")"
}

// Set parses s into f, so that *Format is a flag.Value. Its error leaves
// naming the flag to the flag package.
func (f *Format) Set(s string) error {
	v, err := ParseFormat(s)
	if err != nil {
		return err
	}
	*f = v
	return nil
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
	case OutcomePending:
		return "pending"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Skip reasons. The set is small and fixed so that it can label a metric:
// "empty", "banner", "event_id_0" … "event_id_255" and "event_id_other".
const (
	SkipEmpty        = "empty"
	SkipBanner       = "banner"
	SkipEventIDOther = "event_id_other"
	// SkipNotProcessStart is a record in a structured format (ECS, OCSF,
	// go-libaudit JSON) that is not a process start.
	SkipNotProcessStart = "not_process_start"
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
	format      Format
	now         func() time.Time
	skip        string
	noPrefilter bool

	// buf collects the values of one event; one string conversion at the end
	// backs every field of the event.
	buf []byte
	// tmp holds a value that must be unescaped but is not an event field
	// (times, attribute names, JSON keys).
	tmp     []byte
	sysTime []byte
	offs    [numFields]span
	// name is the process_name of a JSON record in the prefilter pass.
	name []byte

	// The JSON scanner's state (json.go): the record, the noted values and
	// the current path.
	rec     []byte
	slots   [numSlots]jval
	present slotSet
	path    []byte

	// envField is the envelope field path given by WithEnvelopeField.
	envField string
	// inner holds the unescaped string event of an envelope; inString is
	// set while it is being decoded.
	inner    []byte
	inString bool
	// lazy is set during the prefilter pass over a JSON record.
	lazy bool
	// The envelope's stand-ins for the inner event's time and host.
	fbTime    time.Time
	fbTimeSet bool
	fbHost    []byte
	fbHostSet bool

	// audit holds the open auditd assemblies; pos is the caller's position
	// of the record being decoded (SetPosition).
	audit auditState
	pos   int64
}

// Option configures a Decoder.
type Option func(*Decoder) error

// WithEnvelopeField names the field (a dotted path, e.g. "payload.raw")
// that holds the inner event of an envelope, besides the usual ones. With
// FormatEnvelope only this field is read.
func WithEnvelopeField(path string) Option {
	return func(d *Decoder) error {
		if err := CheckEnvelopeField(path); err != nil {
			return err
		}
		d.envField = path
		return nil
	}
}

// CheckEnvelopeField reports whether path is a usable envelope field path:
// non-empty dotted names.
func CheckEnvelopeField(path string) error {
	if path == "" || path[0] == '.' || path[len(path)-1] == '.' || strings.Contains(path, "..") {
		return fmt.Errorf("invalid envelope field path %q (dotted names, e.g. payload.raw)", path)
	}
	return nil
}

// WithPrefilter turns the prefilter of Decode on (the default) or off; off,
// Decode is DecodeFull.
func WithPrefilter(on bool) Option {
	return func(d *Decoder) error {
		d.noPrefilter = !on
		return nil
	}
}

// NewDecoder returns a Decoder for format.
func NewDecoder(format Format, opts ...Option) (*Decoder, error) {
	if format >= numFormats {
		return nil, fmt.Errorf("unknown format %d", format)
	}
	d := &Decoder{format: format, now: time.Now}
	for _, o := range opts {
		if err := o(d); err != nil {
			return nil, err
		}
	}
	return d, nil
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
	return d.decode(raw, ev, !d.noPrefilter)
}

// DecodeFull is Decode without the prefilter: every process start comes back
// as OutcomeEvent, and the whole record is validated.
func (d *Decoder) DecodeFull(raw []byte, ev *processor.Event) (Outcome, error) {
	return d.decode(raw, ev, false)
}

func (d *Decoder) decode(raw []byte, ev *processor.Event, prefilter bool) (Outcome, error) {
	out, err := d.decodeRecord(raw, ev, prefilter)
	if err == nil && (out == OutcomeEvent || out == OutcomeNoMatch) && !processor.ValidEventTime(ev.Time) {
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
	d.inString, d.fbTimeSet, d.fbHostSet = false, false, false
	line := trimLineEnd(raw)
	start := skipSpace(line, 0)
	if start == len(line) {
		d.skip = SkipEmpty
		return OutcomeSkip, nil
	}
	switch d.format {
	case FormatAuto:
		if isAuditLine(line[start:]) {
			return d.decodeAuditd(line[start:], ev, prefilter)
		}
		return d.decodeInnerLine(line, ev, prefilter, 0)
	case FormatAuditd:
		return d.decodeAuditd(line[start:], ev, prefilter)
	case FormatSysmon:
		return d.decodeSysmonLine(line, ev, prefilter, "sysmon: no <Event> element")
	}
	return d.decodeJSON(line[start:], ev, prefilter, d.format, 0)
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
		if d.lazy {
			// Inside a JSON envelope's prefilter pass: the envelope is
			// decoded again in full, so a possible match stops here.
			return OutcomeEvent, nil
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
	if s := d.offs[fDest]; (!s.set || s.start == s.end) && d.fbHostSet {
		d.setField(fDest, d.fbHost)
	}
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
