// Package processor is sshlateral's domain: the ESCU "Linux SSH Remote Services
// Script Execute" matcher, per-partition event-time windows and the results
// they emit. It is deterministic, single-threaded per partition, and imports
// only the standard library so that every transport (Kafka, files) shares it.
package processor

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// Detection metadata, as published in ESCU.
const (
	DetectionID      = "aa1748dd-4a5c-457a-9cf6-ca7b4eb711b3"
	DetectionVersion = 2
	SearchName       = "ESCU - Linux SSH Remote Services Script Execute - Rule"
	Impact           = 80
	Confidence       = 70
	RiskScore        = Impact * Confidence / 100 // 56
)

// Null is what Splunk's tstats puts in a by-field that the event lacks; the
// row is kept, not dropped.
const Null = "null"

// Event is one process start, named after the CIM Endpoint.Processes fields.
// An empty string means the field is missing from the source event.
type Event struct {
	Time              time.Time // event time (UTC)
	Dest              string
	User              string
	Process           string // full command line
	ProcessName       string // basename of the image
	ProcessPath       string
	ProcessID         string
	ParentProcess     string
	ParentProcessName string
	ParentProcessPath string
	ParentProcessID   string
	OriginalFileName  string
}

// GroupKey is the ESCU search's by-clause: one result row per distinct key.
// Missing fields hold Null.
type GroupKey struct {
	Dest              string
	User              string
	ParentProcessName string
	ProcessName       string
	Process           string
	ProcessID         string
	ParentProcessID   string
}

// KeyOf returns the by-clause of e, with missing fields set to Null.
func KeyOf(e *Event) GroupKey {
	return GroupKey{
		Dest:              orNull(e.Dest),
		User:              orNull(e.User),
		ParentProcessName: orNull(e.ParentProcessName),
		ProcessName:       orNull(e.ProcessName),
		Process:           orNull(e.Process),
		ProcessID:         orNull(e.ProcessID),
		ParentProcessID:   orNull(e.ParentProcessID),
	}
}

func orNull(s string) string {
	if s == "" {
		return Null
	}
	return s
}

// Field names one CIM Endpoint.Processes field of Event. The order is
// Event's field order, so a Field indexes arrays of per-field values.
type Field uint8

// The fields of Event, in declaration order.
const (
	FieldDest Field = iota
	FieldUser
	FieldProcess
	FieldProcessName
	FieldProcessPath
	FieldProcessID
	FieldParentProcess
	FieldParentProcessName
	FieldParentProcessPath
	FieldParentProcessID
	FieldOriginalFileName
	NumFields // the number of fields
)

// fieldNames are the CIM field names, the spelling of CIM JSON keys, filter
// rules and risk records.
var fieldNames = [NumFields]string{
	FieldDest:              "dest",
	FieldUser:              "user",
	FieldProcess:           "process",
	FieldProcessName:       "process_name",
	FieldProcessPath:       "process_path",
	FieldProcessID:         "process_id",
	FieldParentProcess:     "parent_process",
	FieldParentProcessName: "parent_process_name",
	FieldParentProcessPath: "parent_process_path",
	FieldParentProcessID:   "parent_process_id",
	FieldOriginalFileName:  "original_file_name",
}

// String returns the CIM name of f ("dest", "process_name", …).
func (f Field) String() string {
	if f < NumFields {
		return fieldNames[f]
	}
	return "field(" + strconv.Itoa(int(f)) + ")"
}

// FieldByName returns the field whose CIM name is name (case-sensitive).
func FieldByName(name string) (Field, bool) {
	for f, n := range fieldNames {
		if n == name {
			return Field(f), true
		}
	}
	return 0, false
}

// Ptr returns the address of field f of e, to read or set it. It panics on
// an f outside [0, NumFields), like an array index.
func (e *Event) Ptr(f Field) *string {
	switch f {
	case FieldDest:
		return &e.Dest
	case FieldUser:
		return &e.User
	case FieldProcess:
		return &e.Process
	case FieldProcessName:
		return &e.ProcessName
	case FieldProcessPath:
		return &e.ProcessPath
	case FieldProcessID:
		return &e.ProcessID
	case FieldParentProcess:
		return &e.ParentProcess
	case FieldParentProcessName:
		return &e.ParentProcessName
	case FieldParentProcessPath:
		return &e.ParentProcessPath
	case FieldParentProcessID:
		return &e.ParentProcessID
	case FieldOriginalFileName:
		return &e.OriginalFileName
	}
	panic("processor: field index out of range: " + strconv.Itoa(int(f)))
}

// Get returns field f of e.
func (e *Event) Get(f Field) string { return *e.Ptr(f) }

// Set sets field f of e to v.
func (e *Event) Set(f Field, v string) { *e.Ptr(f) = v }

// Event times a decoder may hand over: from the Unix epoch up to 2^62 ns
// after it (2116-02-20), the range window arithmetic holds without clamping.
// Times outside it are decode errors, not clamped.
var (
	MinEventTime = time.Unix(0, 0).UTC()
	MaxEventTime = time.Unix(0, 1<<62).UTC()
)

// ValidEventTime reports whether t is within [MinEventTime, MaxEventTime].
func ValidEventTime(t time.Time) bool {
	return !t.Before(MinEventTime) && !t.After(MaxEventTime)
}

// Bounds of what window state keeps of an event's strings: a little more
// than a risk record carries (8 KiB command lines, 1 KiB other values), so
// that the record's own cut still shows, while one hostile event cannot make
// a state entry (a changelog record) larger than Kafka accepts. Matching
// reads the whole event first. Two groups whose keys differ only beyond
// these bounds are one group.
const (
	MaxStateCommandLine = 8<<10 + 4
	MaxStateValue       = 1<<10 + 4
)

// boundKey cuts the by-clause values to the state bounds.
func boundKey(k GroupKey) GroupKey {
	k.Dest = CutUTF8(k.Dest, MaxStateValue)
	k.User = CutUTF8(k.User, MaxStateValue)
	k.ParentProcessName = CutUTF8(k.ParentProcessName, MaxStateValue)
	k.ProcessName = CutUTF8(k.ProcessName, MaxStateValue)
	k.Process = CutUTF8(k.Process, MaxStateCommandLine)
	k.ProcessID = CutUTF8(k.ProcessID, MaxStateValue)
	k.ParentProcessID = CutUTF8(k.ParentProcessID, MaxStateValue)
	return k
}

// boundContext returns the context fields a group keeps, cut to the state
// bounds.
func boundContext(e *Event) Event {
	return Event{
		ParentProcess:     CutUTF8(e.ParentProcess, MaxStateCommandLine),
		ProcessPath:       CutUTF8(e.ProcessPath, MaxStateValue),
		ParentProcessPath: CutUTF8(e.ParentProcessPath, MaxStateValue),
		OriginalFileName:  CutUTF8(e.OriginalFileName, MaxStateValue),
	}
}

// CutUTF8 cuts s to at most n bytes, on a UTF-8 sequence start (never
// inside a character); the bounds on state, dead letters and printed errors
// all cut this way.
func CutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
