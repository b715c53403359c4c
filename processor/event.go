// Package processor is sshlateral's domain: the ESCU "Linux SSH Remote Services
// Script Execute" matcher, per-partition event-time windows and the results
// they emit. It is deterministic, single-threaded per partition, and imports
// only the standard library so that every transport (Kafka, files) shares it.
package processor

import "time"

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
