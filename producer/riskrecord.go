package producer

import (
	"time"

	"github.com/linkedin/goavro/v2"

	"github.com/sshlateral/sshlateral/processor"
)

// Constant parts of every risk record, as ESCU publishes them.
const (
	threatObjectType = "process_name"
	riskObjectSystem = "system"
	riskObjectUser   = "user"
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

// Native values shared by every record Encoder writes; goavro only reads
// them, so boxing them once saves allocations per record.
var (
	sharedAnnotationsNative     = newAnnotationsNative()
	riskScoreNative         any = int32(processor.RiskScore)
	impactNative            any = int32(processor.Impact)
	confidenceNative        any = int32(processor.Confidence)
	versionNative           any = int32(processor.DetectionVersion)
)

// RiskMessage renders ESCU's risk message for a group key.
func RiskMessage(k processor.GroupKey) string {
	return "An instance of " + k.ProcessName + " was identified on endpoint " + k.Dest +
		" by user " + k.User + " attempting to move laterally and download a file."
}

// CTime renders t as security_content_ctime does: %Y-%m-%dT%H:%M:%S in UTC.
func CTime(t time.Time) string {
	return t.UTC().Format(ctimeLayout)
}

// RiskRecords returns the two risk records of r in goavro's native form
// (dest/system first, then user/user). Each call returns fresh maps that
// the caller may modify.
func RiskRecords(r processor.Result) [2]map[string]any {
	var out [2]map[string]any
	for i, obj := range riskObjectsOf(&r) {
		m := make(map[string]any, nativeFieldCount)
		fillResult(m, &r, newAnnotationsNative())
		m["risk_object"] = obj.value
		m["risk_object_type"] = obj.kind
		out[i] = m
	}
	return out
}

// nativeFieldCount is the number of top-level fields in RiskRecord.
const nativeFieldCount = 33

type riskObject struct {
	value string
	kind  string
}

func riskObjectsOf(r *processor.Result) [2]riskObject {
	return [2]riskObject{
		{value: r.Key.Dest, kind: riskObjectSystem},
		{value: r.Key.User, kind: riskObjectUser},
	}
}

// fillResult sets every field of m except risk_object and risk_object_type.
func fillResult(m map[string]any, r *processor.Result, annotations map[string]any) {
	k := &r.Key
	m["alert_id"] = r.AlertID
	m["search_name"] = processor.SearchName
	m["detection_id"] = processor.DetectionID
	m["detection_version"] = versionNative
	m["risk_score"] = riskScoreNative
	m["impact"] = impactNative
	m["confidence"] = confidenceNative
	m["risk_message"] = RiskMessage(*k)
	m["threat_object"] = k.ProcessName
	m["threat_object_type"] = threatObjectType
	m["dest"] = k.Dest
	m["user"] = k.User
	m["parent_process_name"] = k.ParentProcessName
	m["process_name"] = k.ProcessName
	m["process"] = k.Process
	m["process_id"] = k.ProcessID
	m["parent_process_id"] = k.ParentProcessID
	m["count"] = r.Count
	m["firstTime"] = CTime(r.FirstSeen)
	m["lastTime"] = CTime(r.LastSeen)
	m["first_seen"] = millis(r.FirstSeen)
	m["last_seen"] = millis(r.LastSeen)
	m["window_start"] = millis(r.WindowStart)
	m["window_end"] = millis(r.WindowEnd)
	m["emission"] = r.Emission.String()
	m["revision"] = r.Revision
	m["parent_process"] = optionalString(r.ParentProcess)
	m["process_path"] = optionalString(r.ProcessPath)
	m["parent_process_path"] = optionalString(r.ParentProcessPath)
	m["original_file_name"] = optionalString(r.OriginalFileName)
	m["annotations"] = annotations
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
