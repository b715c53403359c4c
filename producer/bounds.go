package producer

import (
	"math/bits"
	"unicode/utf8"
)

// Maximum lengths, in bytes of UTF-8, of the string fields of a risk record.
// A matching event is reported however large its fields are; a longer value
// is cut on a rune boundary and named in the record's truncated list. With
// these bounds a risk record (key and value) stays below 32 KiB with the
// processor's alert ids, far below the 1 MB default record limit of Kafka
// brokers and producers. docs/risk-record.md has the details.
const (
	// MaxCommandLineBytes bounds process and parent_process.
	MaxCommandLineBytes = 8 << 10
	// MaxValueBytes bounds every other value taken from the event: dest,
	// user, parent_process_name, process_name, process_id,
	// parent_process_id, process_path, parent_process_path,
	// original_file_name, and so risk_object and threat_object.
	// risk_message is rendered from the bounded process_name, dest and user.
	MaxValueBytes = 1 << 10
)

// Positions of RiskRecord's top-level fields in schema order;
// TestFieldPositions checks them against risk_record.avsc.
const (
	posAlertID = iota
	posSearchName
	posDetectionID
	posDetectionVersion
	posRiskObject
	posRiskObjectType
	posRiskScore
	posImpact
	posConfidence
	posRiskMessage
	posThreatObject
	posThreatObjectType
	posDest
	posUser
	posParentProcessName
	posProcessName
	posProcess
	posProcessID
	posParentProcessID
	posCount
	posFirstTime
	posLastTime
	posFirstSeen
	posLastSeen
	posWindowStart
	posWindowEnd
	posEmission
	posRevision
	posParentProcess
	posProcessPath
	posParentProcessPath
	posOriginalFileName
	posAnnotations
	posTruncated
	posSanitized
	fieldCount
)

// fieldNames are the schema's top-level field names by position.
var fieldNames = [fieldCount]string{
	"alert_id", "search_name", "detection_id", "detection_version",
	"risk_object", "risk_object_type", "risk_score", "impact", "confidence",
	"risk_message", "threat_object", "threat_object_type",
	"dest", "user", "parent_process_name", "process_name", "process",
	"process_id", "parent_process_id", "count", "firstTime", "lastTime",
	"first_seen", "last_seen", "window_start", "window_end", "emission",
	"revision", "parent_process", "process_path", "parent_process_path",
	"original_file_name", "annotations", "truncated", "sanitized",
}

// fieldSet is a set of top-level fields, one bit per position.
type fieldSet uint64

func (s fieldSet) has(pos int) bool { return s&(1<<pos) != 0 }

func (s *fieldSet) add(pos int) { *s |= 1 << pos }

func (s fieldSet) len() int { return bits.OnesCount64(uint64(s)) }

// names lists the set's field names in schema order.
func (s fieldSet) names() []any {
	out := make([]any, 0, s.len())
	for pos := range fieldCount {
		if s.has(pos) {
			out = append(out, fieldNames[pos])
		}
	}
	return out
}

// boundString returns s as written into a risk record: every byte that is
// not part of a valid UTF-8 sequence replaced by U+FFFD (Avro strings must
// be UTF-8), then cut to at most max bytes on a rune boundary. It allocates
// only when it changes s.
func boundString(s string, max int) (out string, truncated, sanitized bool) {
	if len(s) <= max && utf8.ValidString(s) {
		return s, false, false
	}
	var b []byte
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		add := s[i : i+size]
		if r == utf8.RuneError && size == 1 {
			add = string(utf8.RuneError)
		}
		if len(b)+len(add) > max {
			return string(b), true, sanitized
		}
		if len(add) != size {
			sanitized = true
		}
		if b == nil {
			b = make([]byte, 0, min(len(s)+8, max))
		}
		b = append(b, add...)
		i += size
	}
	return string(b), false, sanitized
}
