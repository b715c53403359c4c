package producer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/linkedin/goavro/v2"

	"github.com/sshlateral/sshlateral/processor"
)

// Constant parts of every risk record, as ESCU publishes them.
const (
	threatObjectType = "process_name"
	typeSystem       = "system"
	typeUser         = "user"
	// ctimeLayout is security_content_ctime's %Y-%m-%dT%H:%M:%S.
	ctimeLayout = "2006-01-02T15:04:05"
)

// Annotation values of the detection.
var (
	annotationMitreAttack   = []string{"T1021.004"}
	annotationTactic        = []string{"Lateral Movement"}
	annotationKillChain     = []string{"Exploitation"}
	annotationNIST          = []string{"DE.CM"}
	annotationCIS20         = []string{"CIS 3", "CIS 5", "CIS 16"}
	annotationAnalyticStory = []string{"Linux Living Off The Land"}
	annotationDetectionType = "TTP"
)

// The three parts of ESCU's risk message around $process_name$, $dest$ and
// $user$.
const (
	riskMessage1 = "An instance of "
	riskMessage2 = " was identified on endpoint "
	riskMessage3 = " by user "
	riskMessage4 = " attempting to move laterally and download a file."
)

// RiskMessage renders ESCU's risk message for a group key, unbounded.
func RiskMessage(k processor.GroupKey) string {
	return riskMessage1 + k.ProcessName + riskMessage2 + k.Dest + riskMessage3 + k.User + riskMessage4
}

// CTime renders t as security_content_ctime does: %Y-%m-%dT%H:%M:%S in UTC.
func CTime(t time.Time) string {
	return t.UTC().Format(ctimeLayout)
}

// appendCTime appends CTime(t) without parsing the layout on every call;
// the fast paths check it against CTime.
func appendCTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, ctimeLayout)
	}
	hour, minute, sec := t.Clock()
	dst = append(dst, byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-')
	for i, v := range [...]int{int(month), day, hour, minute, sec} {
		dst = append(dst, byte('0'+v/10), byte('0'+v%10), "-T::."[i])
	}
	return dst[:len(dst)-1]
}

// errEmptyAlertID guards the record key and Decoder's wire-format detection,
// which relies on plain records never starting with 0x00 (an empty
// alert_id).
var errEmptyAlertID = errors.New("result has an empty alert id")

// riskFields is one result as its two risk records carry it: every string
// valid UTF-8 and within its bound, with the fields that had to change. The
// two records differ only in risk_object, risk_object_type and, when only
// one of dest and user changed, in the truncated and sanitized lists.
type riskFields struct {
	r *processor.Result

	dest, user, parentProcessName, processName, process, processID, parentProcessID string
	parentProcess, processPath, parentProcessPath, originalFileName                 string

	// truncated and sanitized hold the fields shared by both records;
	// risk_object is added per record.
	truncated, sanitized fieldSet
}

// checkResult reports what no bound can repair. The alert id is the Kafka
// key and must stay as the processor computed it, so an id that could not
// be written unchanged is an error, as is an emission without a symbol.
func checkResult(r *processor.Result) error {
	switch {
	case r.AlertID == "":
		return errEmptyAlertID
	case len(r.AlertID) > MaxValueBytes || !utf8.ValidString(r.AlertID):
		return fmt.Errorf("alert id %.64q is not valid UTF-8 of at most %d bytes", r.AlertID, MaxValueBytes)
	case r.Emission > processor.EmissionLate:
		return fmt.Errorf("emission %s (%d) has no enum symbol", r.Emission, uint8(r.Emission))
	}
	return nil
}

// newRiskFields bounds and sanitizes the fields of r taken from events.
func newRiskFields(r *processor.Result) riskFields {
	f := riskFields{r: r}
	k := &r.Key
	f.dest = f.bound(posDest, k.Dest, MaxValueBytes)
	f.user = f.bound(posUser, k.User, MaxValueBytes)
	f.parentProcessName = f.bound(posParentProcessName, k.ParentProcessName, MaxValueBytes)
	f.processName = f.bound(posProcessName, k.ProcessName, MaxValueBytes)
	f.process = f.bound(posProcess, k.Process, MaxCommandLineBytes)
	f.processID = f.bound(posProcessID, k.ProcessID, MaxValueBytes)
	f.parentProcessID = f.bound(posParentProcessID, k.ParentProcessID, MaxValueBytes)
	f.parentProcess = f.bound(posParentProcess, r.ParentProcess, MaxCommandLineBytes)
	f.processPath = f.bound(posProcessPath, r.ProcessPath, MaxValueBytes)
	f.parentProcessPath = f.bound(posParentProcessPath, r.ParentProcessPath, MaxValueBytes)
	f.originalFileName = f.bound(posOriginalFileName, r.OriginalFileName, MaxValueBytes)
	// Values built from the changed ones changed with them.
	for _, set := range []*fieldSet{&f.truncated, &f.sanitized} {
		if set.has(posProcessName) {
			set.add(posThreatObject)
		}
		if set.has(posProcessName) || set.has(posDest) || set.has(posUser) {
			set.add(posRiskMessage)
		}
	}
	return f
}

func (f *riskFields) bound(pos int, s string, max int) string {
	out, truncated, sanitized := boundString(s, max)
	if truncated {
		f.truncated.add(pos)
	}
	if sanitized {
		f.sanitized.add(pos)
	}
	return out
}

// recordDest and recordUser index a result's two risk records.
const (
	recordDest = 0
	recordUser = 1
)

// object returns risk_object, its enum symbol index and name for record i.
func (f *riskFields) object(i int) (value string, index int64, kind string) {
	if i == recordDest {
		return f.dest, 0, typeSystem
	}
	return f.user, 1, typeUser
}

// flags returns record i's truncated and sanitized lists.
func (f *riskFields) flags(i int) (truncated, sanitized fieldSet) {
	src := posDest
	if i == recordUser {
		src = posUser
	}
	truncated, sanitized = f.truncated, f.sanitized
	if truncated.has(src) {
		truncated.add(posRiskObject)
	}
	if sanitized.has(src) {
		sanitized.add(posRiskObject)
	}
	return truncated, sanitized
}

func (f *riskFields) riskMessage() string {
	return riskMessage1 + f.processName + riskMessage2 + f.dest + riskMessage3 + f.user + riskMessage4
}

// The Avro binary encoding of RiskRecord, appended field by field in
// schema order. TestFastPathsMatchReference and FuzzFastPathsMatchReference
// check every byte against goavro's encoding of the native form.

// Encoded constants: search_name, detection_id, detection_version (head);
// risk_score, impact, confidence (after the object); threat_object_type;
// annotations.
var (
	binHeadConst   = appendAvroInt(appendAvroString(appendAvroString(nil, processor.SearchName), processor.DetectionID), processor.DetectionVersion)
	binScores      = appendAvroInt(appendAvroInt(appendAvroInt(nil, processor.RiskScore), processor.Impact), processor.Confidence)
	binThreatType  = appendAvroString(nil, threatObjectType)
	binAnnotations = appendAnnotations(nil)
)

func appendAvroLong(dst []byte, v int64) []byte { return binary.AppendVarint(dst, v) }

func appendAvroInt(dst []byte, v int) []byte { return binary.AppendVarint(dst, int64(v)) }

func appendAvroString(dst []byte, s string) []byte {
	dst = binary.AppendVarint(dst, int64(len(s)))
	return append(dst, s...)
}

// appendAvroOptional writes ["null","string"]: null for an empty value.
func appendAvroOptional(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, 0)
	}
	return appendAvroString(append(dst, 2), s)
}

func appendAvroStrings(dst []byte, ss []string) []byte {
	if len(ss) > 0 {
		dst = appendAvroLong(dst, int64(len(ss)))
		for _, s := range ss {
			dst = appendAvroString(dst, s)
		}
	}
	return append(dst, 0)
}

func appendAvroFieldSet(dst []byte, s fieldSet) []byte {
	if n := s.len(); n > 0 {
		dst = appendAvroLong(dst, int64(n))
		for pos := range fieldCount {
			if s.has(pos) {
				dst = appendAvroString(dst, fieldNames[pos])
			}
		}
	}
	return append(dst, 0)
}

func appendAnnotations(dst []byte) []byte {
	for _, ss := range [][]string{annotationMitreAttack, annotationTactic, annotationKillChain,
		annotationNIST, annotationCIS20, annotationAnalyticStory} {
		dst = appendAvroStrings(dst, ss)
	}
	return appendAvroString(dst, annotationDetectionType)
}

// avroLayout is the Avro binary encoding, each record preceded by prefix
// (the Confluent frame header, or nothing).
type avroLayout struct {
	f      *riskFields
	prefix []byte
}

func (l avroLayout) head(dst []byte) []byte {
	dst = append(dst, l.prefix...)
	dst = appendAvroString(dst, l.f.r.AlertID)
	return append(dst, binHeadConst...)
}

func (l avroLayout) object(dst []byte, i int) []byte {
	value, index, _ := l.f.object(i)
	return appendAvroLong(appendAvroString(dst, value), index)
}

func (l avroLayout) middle(dst []byte) []byte {
	f, r := l.f, l.f.r
	dst = append(dst, binScores...)
	msgLen := len(riskMessage1) + len(f.processName) + len(riskMessage2) + len(f.dest) + len(riskMessage3) + len(f.user) + len(riskMessage4)
	dst = appendAvroLong(dst, int64(msgLen))
	dst = append(append(append(append(append(append(append(dst,
		riskMessage1...), f.processName...), riskMessage2...), f.dest...), riskMessage3...), f.user...), riskMessage4...)
	dst = appendAvroString(dst, f.processName) // threat_object
	dst = append(dst, binThreatType...)
	for _, s := range [...]string{f.dest, f.user, f.parentProcessName, f.processName, f.process, f.processID, f.parentProcessID} {
		dst = appendAvroString(dst, s)
	}
	dst = appendAvroLong(dst, r.Count)
	for _, t := range [...]time.Time{r.FirstSeen, r.LastSeen} {
		dst = appendAvroLong(dst, int64(len(ctimeLayout)))
		dst = appendCTime(dst, t)
	}
	for _, t := range [...]time.Time{r.FirstSeen, r.LastSeen, r.WindowStart, r.WindowEnd} {
		dst = appendAvroLong(dst, t.UnixMilli())
	}
	dst = appendAvroLong(dst, int64(r.Emission))
	dst = appendAvroLong(dst, int64(r.Revision))
	for _, s := range [...]string{f.parentProcess, f.processPath, f.parentProcessPath, f.originalFileName} {
		dst = appendAvroOptional(dst, s)
	}
	return append(dst, binAnnotations...)
}

func (l avroLayout) tail(dst []byte, i int) []byte {
	truncated, sanitized := l.f.flags(i)
	return appendAvroFieldSet(appendAvroFieldSet(dst, truncated), sanitized)
}

// recordLayout renders the records of one result in one format, part by
// part in schema order.
type recordLayout interface {
	head(dst []byte) []byte          // up to risk_object
	object(dst []byte, i int) []byte // risk_object and risk_object_type of record i
	middle(dst []byte) []byte        // risk_score to annotations
	tail(dst []byte, i int) []byte   // truncated and sanitized of record i, and the end
}

// appendPair appends both records of a result and returns where the first
// ends. The records share everything but the risk object and the flag
// lists, so the second copies the first's head and middle instead of
// rendering them again.
func appendPair[L recordLayout](dst []byte, l L) (out []byte, firstEnd int) {
	start := len(dst)
	dst = l.head(dst)
	headEnd := len(dst)
	dst = l.object(dst, recordDest)
	midStart := len(dst)
	dst = l.middle(dst)
	midEnd := len(dst)
	dst = l.tail(dst, recordDest)
	firstEnd = len(dst)

	dst = append(dst, dst[start:headEnd]...)
	dst = l.object(dst, recordUser)
	dst = append(dst, dst[midStart:midEnd]...)
	return l.tail(dst, recordUser), firstEnd
}

// RiskRecords returns the two risk records of r in goavro's native form
// (dest/system first, then user/user), with the field bounds and UTF-8
// sanitizing applied as Encoder applies them. Each call returns fresh maps
// that the caller may modify. A result Encoder refuses (empty alert id,
// unknown emission) yields maps that fail to encode.
func RiskRecords(r processor.Result) [2]map[string]any {
	f := newRiskFields(&r)
	return [2]map[string]any{f.native(recordDest), f.native(recordUser)}
}

func (f *riskFields) native(i int) map[string]any {
	r := f.r
	value, _, kind := f.object(i)
	truncated, sanitized := f.flags(i)
	return map[string]any{
		"alert_id":            r.AlertID,
		"search_name":         processor.SearchName,
		"detection_id":        processor.DetectionID,
		"detection_version":   int32(processor.DetectionVersion),
		"risk_object":         value,
		"risk_object_type":    kind,
		"risk_score":          int32(processor.RiskScore),
		"impact":              int32(processor.Impact),
		"confidence":          int32(processor.Confidence),
		"risk_message":        f.riskMessage(),
		"threat_object":       f.processName,
		"threat_object_type":  threatObjectType,
		"dest":                f.dest,
		"user":                f.user,
		"parent_process_name": f.parentProcessName,
		"process_name":        f.processName,
		"process":             f.process,
		"process_id":          f.processID,
		"parent_process_id":   f.parentProcessID,
		"count":               r.Count,
		"firstTime":           CTime(r.FirstSeen),
		"lastTime":            CTime(r.LastSeen),
		"first_seen":          millis(r.FirstSeen),
		"last_seen":           millis(r.LastSeen),
		"window_start":        millis(r.WindowStart),
		"window_end":          millis(r.WindowEnd),
		"emission":            r.Emission.String(),
		"revision":            r.Revision,
		"parent_process":      optionalString(f.parentProcess),
		"process_path":        optionalString(f.processPath),
		"parent_process_path": optionalString(f.parentProcessPath),
		"original_file_name":  optionalString(f.originalFileName),
		"annotations":         newAnnotationsNative(),
		"truncated":           truncated.names(),
		"sanitized":           sanitized.names(),
	}
}

// millis is t at millisecond precision in UTC, the form goavro decodes
// timestamp-millis to, so that native records compare equal after a round
// trip.
func millis(t time.Time) time.Time {
	return time.UnixMilli(t.UnixMilli()).UTC()
}

// optionalString is the native form of ["null","string"]: nil when the
// source event lacked the field.
func optionalString(s string) any {
	if s == "" {
		return nil
	}
	return goavro.Union("string", s)
}

func newAnnotationsNative() map[string]any {
	return map[string]any{
		"mitre_attack":      stringsNative(annotationMitreAttack),
		"tactic":            stringsNative(annotationTactic),
		"kill_chain_phases": stringsNative(annotationKillChain),
		"nist":              stringsNative(annotationNIST),
		"cis20":             stringsNative(annotationCIS20),
		"analytic_story":    stringsNative(annotationAnalyticStory),
		"type":              annotationDetectionType,
	}
}

func stringsNative(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
