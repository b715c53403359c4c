package decode

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/sshlateral/sshlateral/processor"
)

// ErrUnmapped marks a record that is clearly in a known format and a
// process start, but sets none of the CIM fields. It is an error (a dead
// letter with reason "unmapped"), never a process event.
var ErrUnmapped = errors.New("unmapped")

// source is one place a CIM field may come from: the value at slot, its
// basename (the text after the last '/'), or an array of strings joined
// with single spaces.
type source struct {
	slot int
	base bool
	join bool
}

// mapping is one JSON format's field table. For each CIM field the first
// source the record has wins.
type mapping struct {
	name   string
	fields [numFields][]source
	// times are the event time's sources, with the unit of a number.
	times []timeSource
	// start reports whether the record is a process start; nil: always.
	start func(d *Decoder) bool
	// sources is the set of every field source's slot (sourceSet).
	sources slotSet
}

// withSources fills m.sources.
func withSources(m mapping) mapping {
	for _, srcs := range m.fields {
		for _, s := range srcs {
			m.sources.put(s.slot, true)
		}
	}
	return m
}

type timeSource struct {
	slot int
	unit time.Duration
}

func src(slot int) source  { return source{slot: slot} }
func base(slot int) source { return source{slot: slot, base: true} }
func join(slot int) source { return source{slot: slot, join: true} }

// cimMapping: Splunk Endpoint.Processes names, bare or "Processes."-prefixed.
var cimMapping = func() mapping {
	m := mapping{name: "cim", times: []timeSource{{sUTime, time.Second}}}
	for f := range numFields {
		m.fields[f] = []source{src(sCIM + f)}
	}
	return withSources(m)
}()

// ecsMapping: Elastic Common Schema, nested or dotted-flat (Elastic Agent
// Sysmon for Linux, Elastic Defend, Auditbeat / auditd_manager).
var ecsMapping = withSources(mapping{
	name: "ecs",
	fields: [numFields][]source{
		fDest:              {src(sHostName), src(sHostHostname)},
		fUser:              {src(sUserName)},
		fProcess:           {src(gs(gProc, aCommandLine)), join(gs(gProc, aArgs))},
		fProcessName:       {src(gs(gProc, aName)), base(gs(gProc, aExecutable))},
		fProcessPath:       {src(gs(gProc, aExecutable))},
		fProcessID:         {src(gs(gProc, aPID))},
		fParentProcess:     {src(gs(gParent, aCommandLine)), join(gs(gParent, aArgs))},
		fParentProcessName: {src(gs(gParent, aName)), base(gs(gParent, aExecutable))},
		fParentProcessPath: {src(gs(gParent, aExecutable))},
		fParentProcessID:   {src(gs(gParent, aPID))},
		fOriginalFileName:  {src(gs(gProc, aOriginalFile))},
	},
	times: []timeSource{{sTimestamp, time.Millisecond}},
	start: func(d *Decoder) bool { return d.is(sEventCategory, "process") && d.is(sEventType, "start") },
})

// auditJSONMapping: go-libaudit's aucoalesce JSON (one object per event).
var auditJSONMapping = withSources(mapping{
	name: "auditd-json",
	fields: [numFields][]source{
		fDest:              {src(sHostName), src(sHostHostname)},
		fUser:              {src(sUserNamesUID), src(sUserIDsUID)},
		fProcess:           {join(gs(gProc, aArgs))},
		fProcessName:       {src(gs(gProc, aName)), base(gs(gProc, aExe))},
		fProcessPath:       {src(gs(gProc, aExe))},
		fProcessID:         {src(gs(gProc, aPID))},
		fParentProcessID:   {src(gs(gProc, aPPID))},
		fParentProcess:     nil,
		fParentProcessName: nil,
	},
	times: []timeSource{{sTimestamp, time.Millisecond}},
	start: func(d *Decoder) bool {
		return (d.is(sRecordType, "syscall") || d.is(sRecordType, "SYSCALL")) &&
			(d.is(sDataSyscall, "execve") || d.is(sDataSyscall, "execveat")) && !d.is(sResult, "fail")
	},
})

// ocsfMapping: OCSF Process Activity (class_uid 1007), Launch (activity_id
// 1). The parent is process.parent_process, else the actor's process.
var ocsfMapping = withSources(mapping{
	name: "ocsf",
	fields: [numFields][]source{
		fDest:          {src(sDeviceHostname), src(sDeviceName)},
		fUser:          {src(sActorUserName), src(sProcUserName)},
		fProcess:       {src(gs(gProc, aCmdLine))},
		fProcessName:   {src(gs(gProc, aName)), src(gs(gProc, aFileName)), base(gs(gProc, aFilePath))},
		fProcessPath:   {src(gs(gProc, aFilePath))},
		fProcessID:     {src(gs(gProc, aPID))},
		fParentProcess: {src(gs(gParentProc, aCmdLine)), src(gs(gActorProc, aCmdLine))},
		fParentProcessName: {src(gs(gParentProc, aName)), src(gs(gParentProc, aFileName)), base(gs(gParentProc, aFilePath)),
			src(gs(gActorProc, aName)), src(gs(gActorProc, aFileName)), base(gs(gActorProc, aFilePath))},
		fParentProcessPath: {src(gs(gParentProc, aFilePath)), src(gs(gActorProc, aFilePath))},
		fParentProcessID:   {src(gs(gParentProc, aPID)), src(gs(gActorProc, aPID))},
	},
	times: []timeSource{{sTime, time.Millisecond}},
	start: func(d *Decoder) bool {
		t, _ := d.text(sClassUID)
		if string(t) != "1007" {
			return false
		}
		a, _ := d.text(sActivityID)
		if string(a) == "1" {
			return true
		}
		u, _ := d.text(sTypeUID)
		return string(u) == "100701"
	},
})

// first returns the first source of srcs the record has.
func (d *Decoder) first(srcs []source) (source, bool) {
	for _, s := range srcs {
		if d.kind(s.slot) != 0 {
			return s, true
		}
	}
	return source{}, false
}

// mapJSON turns the scanned record into an event with table m. With
// prefilter set, a process start whose process_name cannot be "ssh" ends as
// OutcomeNoMatch before any field is copied.
func (d *Decoder) mapJSON(ev *processor.Event, prefilter bool, m *mapping) (Outcome, error) {
	if m.start != nil && !m.start(d) {
		d.skip = SkipNotProcessStart
		return OutcomeSkip, nil
	}
	t, err := d.mappedTime(m)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", m.name, err)
	}
	if !d.present.any(&m.sources) {
		return 0, fmt.Errorf("%s: %w: no process field in the record", m.name, ErrUnmapped)
	}
	if prefilter {
		var name []byte
		s, ok := d.first(m.fields[fProcessName])
		if ok {
			var err error
			if d.name, err = d.appendSource(d.name[:0], s); err != nil {
				ok = false // the full decode reports it
				prefilter = false
			}
			name = d.name
		}
		if prefilter && (!ok || !mayBeSSH(name)) {
			ev.Time = t
			return OutcomeNoMatch, nil
		}
		// A possible match: decodeJSON decodes it in full, validating.
		return OutcomeEvent, nil
	}
	d.resetFields()
	for f, srcs := range m.fields {
		s, ok := d.first(srcs)
		if !ok {
			continue
		}
		start := len(d.buf)
		if d.buf, err = d.appendSource(d.buf, s); err != nil {
			return 0, fmt.Errorf("%s: field %s: %w", m.name, processor.Field(f), err)
		}
		d.offs[f] = span{int32(start), int32(len(d.buf)), true}
	}
	ev.Time = t
	d.fillEvent(ev)
	return OutcomeEvent, nil
}

// appendSource appends the text of s.
func (d *Decoder) appendSource(dst []byte, s source) ([]byte, error) {
	if s.join && d.kind(s.slot) == '[' {
		start := len(dst)
		d.eachString(s.slot, func(e []byte) {
			if len(dst) > start {
				dst = append(dst, ' ')
			}
			dst = append(dst, e...)
		})
		return dst, nil
	}
	start := len(dst)
	dst, err := d.appendText(dst, s.slot)
	if err == nil && s.base {
		if i := bytes.LastIndexByte(dst[start:], '/'); i >= 0 {
			dst = append(dst[:start], dst[start+i+1:]...)
		}
	}
	return dst, err
}

// mappedTime reads the event time from the first time source the record
// has, else the envelope's time.
func (d *Decoder) mappedTime(m *mapping) (time.Time, error) {
	for _, ts := range m.times {
		if d.kind(ts.slot) != 0 {
			return d.epochOrRFC3339(ts.slot, ts.unit)
		}
	}
	if d.fbTimeSet {
		return d.fbTime, nil
	}
	return time.Time{}, fmt.Errorf("missing %s", slotName(m.times[0].slot))
}

func slotName(s int) string {
	switch s {
	case sTime:
		return "time"
	case sUTime:
		return "_time"
	case sTimestamp:
		return "@timestamp"
	}
	return "?"
}
