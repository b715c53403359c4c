package processor

import "time"

// Emission says why a result was emitted.
type Emission uint8

const (
	// EmissionEarly is a group's first matching event, emitted at once.
	EmissionEarly Emission = iota
	// EmissionFinal is a group's aggregate at window close.
	EmissionFinal
	// EmissionLate is a matching event that arrived after its window closed;
	// it is emitted on its own rather than dropped.
	EmissionLate
)

// String returns the Avro enum symbol: EARLY, FINAL or LATE.
func (e Emission) String() string {
	switch e {
	case EmissionEarly:
		return "EARLY"
	case EmissionFinal:
		return "FINAL"
	case EmissionLate:
		return "LATE"
	}
	return "UNKNOWN"
}

// Result is one row of the ESCU search: a group, its count and times, in one
// window. Every Result becomes two risk records (dest/system, user/user).
type Result struct {
	// AlertID is deterministic: the same group in the same window (and, for
	// LATE, the same event time) always gets the same id, so redelivery is
	// harmless downstream.
	AlertID     string
	Key         GroupKey
	Count       int64
	FirstSeen   time.Time
	LastSeen    time.Time
	WindowStart time.Time
	WindowEnd   time.Time
	Emission    Emission
	Revision    int32

	// Context from the group's first event; empty when the source lacked it.
	ParentProcess     string
	ProcessPath       string
	ParentProcessPath string
	OriginalFileName  string
}
