package decode

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/sshlateral/sshlateral/processor"
)

// JSON records of every format are read by one scanner: it validates the
// whole record (the documents encoding/json accepts) and notes where the
// values of known paths are, without copying them. A path is the keys from
// the top joined with '.', so nested ECS ({"process":{"pid":1}}), dotted-flat
// ECS ({"process.pid":1}) and any mix give the same path. Only objects on
// the way to a known path are entered; everything else is skipped whole.
// When a path occurs twice the last value wins, as with encoding/json.
//
// The record's shape then decides its format (FormatAuto), or the format is
// given, and a per-format table (mappings below) says which paths feed which
// CIM field. Values are copied once, into the event's single string.

// Slots: the known paths whose values the scanner notes. Several formats
// share a path (process.name, process.pid); the mapping table of the format
// decides what it means.
const (
	sTime           = iota // time: HEC epoch seconds, OCSF epoch milliseconds
	sUTime                 // _time: CIM, Splunk export
	sTimestamp             // @timestamp: ECS, go-libaudit
	sMessage               // envelope fields
	sLog                   //
	sRaw                   //
	sEvent                 //
	sEventOriginal         //
	sCustom                // the path given by WithEnvelopeField
	sEventCategory         // ECS event.category
	sEventType             // ECS event.type
	sECS                   // ECS ecs / ecs.version
	sHost                  // HEC host (a string; ECS host is an object)
	sHostName              // ECS host.name
	sHostHostname          // ECS host.hostname
	sUserName              // ECS user.name
	sUserNamesUID          // go-libaudit user.names.uid
	sUserIDsUID            // go-libaudit user.ids.uid
	sRecordType            // go-libaudit record_type
	sResult                // go-libaudit result
	sDataSyscall           // go-libaudit data.syscall
	sClassUID              // OCSF class_uid
	sActivityID            // OCSF activity_id
	sTypeUID               // OCSF type_uid
	sDeviceHostname        // OCSF device.hostname
	sDeviceName            // OCSF device.name
	sActorUserName         // OCSF actor.user.name
	sProcUserName          // OCSF process.user.name
	sCIM                   // sCIM+f: CIM field f, bare or "Processes."-prefixed
	sGroup          = sCIM + numFields
)

// Process groups: the same attributes under several prefixes.
const (
	gProc       = iota // process (ECS, OCSF, go-libaudit)
	gParent            // process.parent (ECS)
	gParentProc        // process.parent_process (OCSF)
	gActorProc         // actor.process (OCSF)
	numGroups
)

var groupPrefix = [numGroups]string{"process", "process.parent", "process.parent_process", "actor.process"}

// Attributes of a process group.
const (
	aName         = iota // name
	aPID                 // pid
	aExecutable          // executable (ECS)
	aCommandLine         // command_line (ECS)
	aArgs                // args (ECS, go-libaudit)
	aExe                 // exe (go-libaudit)
	aPPID                // ppid (go-libaudit)
	aCmdLine             // cmd_line (OCSF)
	aFilePath            // file.path (OCSF)
	aFileName            // file.name (OCSF)
	aOriginalFile        // pe.original_file_name (ECS)
	numAttrs
)

var attrPath = [numAttrs]string{"name", "pid", "executable", "command_line", "args", "exe", "ppid", "cmd_line", "file.path", "file.name", "pe.original_file_name"}

func gs(g, a int) int { return sGroup + g*numAttrs + a }

const numSlots = sGroup + numGroups*numAttrs

// pathInfo says what the scanner does at a path: note the value in slot
// (-1: none) and, for an object, enter it (descend).
type pathInfo struct {
	slot    int16
	descend bool
}

var jsonPaths = func() map[string]pathInfo {
	m := map[string]pathInfo{}
	add := func(path string, slot int) {
		pi := m[path]
		if pi.slot == 0 && !pi.descend {
			pi.slot = -1
		}
		pi.slot = int16(slot)
		m[path] = pi
		for i := len(path) - 1; i > 0; i-- {
			if path[i] == '.' {
				p := m[path[:i]]
				if p.slot == 0 && !p.descend {
					p.slot = -1
				}
				p.descend = true
				m[path[:i]] = p
			}
		}
	}
	for path, slot := range map[string]int{
		"time": sTime, "_time": sUTime, "@timestamp": sTimestamp,
		"message": sMessage, "log": sLog, "_raw": sRaw, "event": sEvent, "event.original": sEventOriginal,
		"event.category": sEventCategory, "event.type": sEventType, "ecs": sECS, "ecs.version": sECS,
		"host": sHost, "host.name": sHostName, "host.hostname": sHostHostname, "user.name": sUserName,
		"user.names.uid": sUserNamesUID, "user.ids.uid": sUserIDsUID,
		"record_type": sRecordType, "result": sResult, "data.syscall": sDataSyscall,
		"class_uid": sClassUID, "activity_id": sActivityID, "type_uid": sTypeUID,
		"device.hostname": sDeviceHostname, "device.name": sDeviceName,
		"actor.user.name": sActorUserName, "process.user.name": sProcUserName,
	} {
		add(path, slot)
	}
	for f := processor.Field(0); f < processor.NumFields; f++ {
		add(f.String(), sCIM+int(f))
		// The prefixed spelling is one key, not an object to enter.
		m["Processes."+f.String()] = pathInfo{slot: int16(sCIM + int(f))}
	}
	for g, prefix := range groupPrefix {
		for a, attr := range attrPath {
			add(prefix+"."+attr, gs(g, a))
		}
	}
	return m
}()

// pathTable is jsonPaths as an open-addressing table: the scanner looks up
// every key, and a map costs a third of the time of a short record.
var pathTable = func() (t [1024]pathEntry) {
	for k, v := range jsonPaths {
		i := pathHash([]byte(k)) & uint32(len(t)-1)
		for t[i].key != "" {
			i = (i + 1) & uint32(len(t)-1)
		}
		t[i] = pathEntry{k, v}
	}
	return t
}()

type pathEntry struct {
	key  string
	info pathInfo
}

// pathHash mixes the length and five bytes of a path: enough to spread
// the known paths, in constant time.
func pathHash(b []byte) uint32 {
	n := len(b)
	if n == 0 {
		return 0
	}
	h := uint32(n) * 0x9E3779B1
	h ^= uint32(b[0]) | uint32(b[n/2])<<8 | uint32(b[n-1])<<16 | uint32(b[n*3/4])<<24
	h ^= uint32(b[n/4]) * 0x85EBCA6B
	h ^= h >> 15
	h *= 0x2C1B3C6D
	return h ^ h>>12
}

func lookupPath(path []byte) (pathInfo, bool) {
	const mask = uint32(len(pathTable) - 1)
	for i := pathHash(path) & mask; ; i = (i + 1) & mask {
		e := &pathTable[i]
		if e.key == "" {
			return pathInfo{}, false
		}
		if e.key == string(path) {
			return e.info, true
		}
	}
}

// slotSet is a set of slots: those with a non-null value.
type slotSet [(numSlots + 63) / 64]uint64

func (m *slotSet) put(s int, on bool) {
	if on {
		m[s/64] |= 1 << (s % 64)
	} else {
		m[s/64] &^= 1 << (s % 64)
	}
}

func (m *slotSet) has(s int) bool { return m[s/64]&(1<<(s%64)) != 0 }

// any reports whether m and o share a slot.
func (m *slotSet) any(o *slotSet) bool {
	for i := range m {
		if m[i]&o[i] != 0 {
			return true
		}
	}
	return false
}

// slotsOf returns the set of the given slots.
func slotsOf(slots ...int) (m slotSet) {
	for _, s := range slots {
		m.put(s, true)
	}
	return m
}

// procSlots are the ECS process and process.parent attributes: any of them
// marks a record as ECS.
var procSlots = func() (m slotSet) {
	for a := 0; a < numAttrs; a++ {
		m.put(gs(gProc, a), true)
		m.put(gs(gParent, a), true)
	}
	return m
}()

var cimSlots = func() (m slotSet) {
	for f := 0; f < numFields; f++ {
		m.put(sCIM+f, true)
	}
	return m
}()

// jval is where a noted value lies in the record; set is false for a path
// the record lacks.
type jval struct {
	start, end int32
	set        bool
}

// scanJSON validates the object rec and notes the values of known paths in
// d.slots.
func (d *Decoder) scanJSON(rec []byte) error {
	d.rec = rec
	d.slots = [numSlots]jval{}
	d.present = slotSet{}
	d.path = d.path[:0]
	p := skipSpace(rec, 0)
	if p >= len(rec) || rec[p] != '{' {
		return jsonErr("record is not a json object")
	}
	p, err := d.walk(rec, p, 1)
	if err != nil {
		return err
	}
	if p = skipSpace(rec, p); p != len(rec) {
		return jsonErr("trailing data after object at byte %d", p)
	}
	return nil
}

// walk reads the object at rec[p], depth levels deep (the record is 1),
// and returns the position after it.
func (d *Decoder) walk(rec []byte, p, depth int) (int, error) {
	p = skipSpace(rec, p+1)
	if p < len(rec) && rec[p] == '}' {
		return p + 1, nil
	}
	for {
		if p >= len(rec) || rec[p] != '"' {
			return p, jsonErr("expected object key at byte %d", p)
		}
		// Keys are short and plain: scan them inline, the general scanner
		// only for escapes and non-ASCII.
		ke, slow := p+1, false
		for ke < len(rec) && strClass[rec[ke]] == 0 {
			ke++
		}
		if ke >= len(rec) || rec[ke] != '"' {
			var err error
			if ke, slow, err = scanJSONString(rec, p); err != nil {
				return p, err
			}
		}
		var err error
		mark := len(d.path)
		if mark > 0 {
			d.path = append(d.path, '.')
		}
		if slow {
			d.path = appendJSONUnescaped(d.path, rec[p+1:ke])
		} else {
			d.path = append(d.path, rec[p+1:ke]...)
		}
		info, known := lookupPath(d.path)
		custom := d.envField != "" && string(d.path) == d.envField
		p = skipSpace(rec, ke+1)
		if p >= len(rec) || rec[p] != ':' {
			return p, jsonErr("expected ':' at byte %d", p)
		}
		p = skipSpace(rec, p+1)
		start := p
		descend := known && info.descend || d.onEnvelopePath()
		switch {
		case descend && p < len(rec) && rec[p] == '{' && depth < maxJSONDepth:
			// The object is noted before what is inside it, so that a
			// path inside (ecs.version) given later wins over it (ecs).
			if known && info.slot >= 0 {
				d.slots[info.slot] = jval{int32(start), int32(start), true}
				d.present.put(int(info.slot), true)
			}
			p, err = d.walk(rec, p, depth+1)
			if err == nil && known && info.slot >= 0 && d.slots[info.slot].start == int32(start) {
				d.slots[info.slot].end = int32(p)
			}
			known = false // noted
		case d.lazy:
			p, err = skipValueFast(rec, p)
		default:
			p, err = skipJSONValue(rec, p, depth+1)
		}
		if err != nil {
			return p, err
		}
		v := jval{int32(start), int32(p), true}
		if known && info.slot >= 0 {
			d.slots[info.slot] = v
			d.present.put(int(info.slot), rec[start] != 'n')
		}
		if custom {
			d.slots[sCustom] = v
			d.present.put(sCustom, rec[start] != 'n')
		}
		d.path = d.path[:mark]
		more := false
		if p, more, err = afterValue(rec, p, '}'); err != nil || !more {
			return p, err
		}
	}
}

// onEnvelopePath reports whether the current path leads to the
// WithEnvelopeField path.
func (d *Decoder) onEnvelopePath() bool {
	n := len(d.path)
	return len(d.envField) > n && d.envField[n] == '.' && d.envField[:n] == string(d.path)
}

// kind returns the first byte of the value in slot s, or 0 when the record
// lacks it. null counts as missing.
func (d *Decoder) kind(s int) byte {
	if !d.present.has(s) {
		return 0
	}
	return d.rec[d.slots[s].start]
}

func (d *Decoder) raw(s int) []byte {
	v := d.slots[s]
	return d.rec[v.start:v.end]
}

// appendText appends the value of slot s as field text: a string
// unescaped, a number as appendCIMNumber writes it, true/false as such. An
// object or array is an error.
func (d *Decoder) appendText(dst []byte, s int) ([]byte, error) {
	if !d.valid(s) {
		return dst, errLazyInvalid
	}
	v := d.raw(s)
	switch v[0] {
	case '"':
		return appendJSONUnescaped(dst, v[1:len(v)-1]), nil
	case 't', 'f':
		return append(dst, v...), nil
	case '{', '[':
		return dst, errNotScalar
	}
	return appendCIMNumber(dst, v), nil
}

var errNotScalar = errors.New("objects and arrays are not supported")

// errLazyInvalid is a value the prefilter pass read and found invalid; the
// full pass reports the exact error.
var errLazyInvalid = errors.New("invalid json value")

// valid reports whether the value in slot s is valid JSON: always so after
// a full scan; a prefilter scan skips values unchecked, so the few it reads
// are checked here.
func (d *Decoder) valid(s int) bool {
	if !d.lazy {
		return true
	}
	v := d.raw(s)
	end, err := skipJSONValue(v, 0, 2)
	return err == nil && end == len(v)
}

// skipValueFast returns the end of the value at p without validating it:
// the prefilter pass's skip. Strings are crossed with IndexByte.
func skipValueFast(b []byte, p int) (int, error) {
	depth := 0
	for p < len(b) {
		switch c := b[p]; c {
		case '"':
			q := p + 1
			// short values end before IndexByte pays off
			for end := min(q+16, len(b)); q < end && b[q] != '"' && b[q] != '\\'; q++ {
			}
			if q < len(b) && b[q] == '"' {
				p = q + 1
				break
			}
			for {
				j := bytes.IndexByte(b[q:], '"')
				if j < 0 {
					return p, errLazyInvalid
				}
				q += j
				k := q - 1
				for b[k] == '\\' {
					k--
				}
				if (q-1-k)%2 == 0 {
					break
				}
				q++
			}
			p = q + 1
		case '{', '[':
			depth++
			p++
		case '}', ']':
			if depth == 0 {
				return p, nil
			}
			depth--
			p++
		case ',':
			if depth == 0 {
				return p, nil
			}
			p++
		default:
			if depth == 0 && isSpace(c) {
				return p, nil
			}
			p++
		}
		if depth == 0 && p < len(b) && (b[p] == ',' || b[p] == '}' || b[p] == ']' || isSpace(b[p])) {
			return p, nil
		}
	}
	return p, errLazyInvalid
}

// text returns the text of slot s, as appendText writes it, without a
// copy where the record holds it as is; else in d.tmp (valid until the next
// use).
func (d *Decoder) text(s int) ([]byte, bool) {
	if d.kind(s) == 0 {
		return nil, false
	}
	v := d.raw(s)
	switch v[0] {
	case '"':
		end, slow, err := scanJSONString(v, 0)
		if err != nil || end != len(v)-1 {
			return nil, false
		}
		if !slow {
			return v[1:end], true
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if jsonNumberEnd(v, 0) != len(v) {
			return nil, false
		}
		if !hasFraction(v) {
			return v, true
		}
	}
	var err error
	d.tmp, err = d.appendText(d.tmp[:0], s)
	return d.tmp, err == nil
}

func hasFraction(b []byte) bool {
	for _, c := range b {
		if c == '.' || c == 'e' || c == 'E' {
			return true
		}
	}
	return false
}

// is reports whether slot s is the string want, or an array holding it.
func (d *Decoder) is(s int, want string) bool {
	switch d.kind(s) {
	case '"':
		t, _ := d.text(s)
		return string(t) == want
	case '[':
		if !d.valid(s) {
			return false
		}
		found := false
		d.eachString(s, func(e []byte) {
			found = found || string(e) == want
		})
		return found
	}
	return false
}

// eachString calls fn with each string element of the array in slot s,
// unescaped; other elements are skipped. The record is already validated.
func (d *Decoder) eachString(s int, fn func([]byte)) {
	v := d.raw(s)
	p := skipSpace(v, 1)
	for p < len(v) && v[p] != ']' {
		if v[p] == '"' {
			end, slow, _ := scanJSONString(v, p)
			e := v[p+1 : end]
			if slow {
				d.tmp = appendJSONUnescaped(d.tmp[:0], e)
				e = d.tmp
			}
			fn(e)
			p = end + 1
		} else {
			p, _ = skipJSONValue(v, p, 2)
		}
		p = skipSpace(v, p)
		if p < len(v) && v[p] == ',' {
			p = skipSpace(v, p+1)
		}
	}
}

// jsonFormat is the shape of a JSON record.
type jsonFormat uint8

const (
	jsonUnknown jsonFormat = iota
	jsonCIM
	jsonECS
	jsonOCSF
	jsonAudit // go-libaudit (aucoalesce) JSON
	jsonEnvelope
)

// envelopeSlots are the fields auto-detection unwraps, in order of trust.
var envelopeSlots = [...]int{sRaw, sEventOriginal, sMessage, sLog, sEvent}

// classify decides the format of the scanned record for FormatAuto; for an
// envelope it also returns the slot holding the inner event.
func (d *Decoder) classify() (jsonFormat, int) {
	if d.kind(sClassUID) != 0 {
		return jsonOCSF, 0
	}
	if k := d.kind(sCustom); k == '"' || k == '{' {
		return jsonEnvelope, sCustom
	}
	for _, s := range envelopeSlots {
		if d.kind(s) == '"' && looksLikeEvent(d.raw(s)) {
			return jsonEnvelope, s
		}
	}
	ecsMarks := d.kind(sTimestamp) != 0 || d.kind(sECS) != 0
	procMarks := d.present.any(&procSlots)
	if d.kind(sEvent) == '{' && !ecsMarks && !procMarks {
		return jsonEnvelope, sEvent // HEC with an object event
	}
	if d.kind(sRecordType) != 0 {
		return jsonAudit, 0
	}
	if ecsMarks || procMarks || d.kind(sEventCategory) != 0 {
		return jsonECS, 0
	}
	if d.present.any(&cimSlots) {
		return jsonCIM, 0
	}
	if d.kind(sUTime) != 0 && d.kind(sRaw) == 0 {
		return jsonCIM, 0
	}
	for _, s := range envelopeSlots {
		if d.kind(s) == '"' {
			return jsonEnvelope, s // a line that is no event (a banner?) decides itself
		}
	}
	return jsonUnknown, 0
}

// looksLikeEvent reports whether a JSON string (quotes included) holds
// Sysmon XML or a JSON object, also when its '<' is written \u003c.
func looksLikeEvent(raw []byte) bool {
	s := raw[1 : len(raw)-1]
	i := 0
	for i < len(s) && (isSpace(s[i]) || s[i] == '\\' && i+1 < len(s) && (s[i+1] == 'n' || s[i+1] == 'r' || s[i+1] == 't')) {
		if s[i] == '\\' {
			i++
		}
		i++
	}
	if i < len(s) && s[i] == '{' {
		return true
	}
	return bytes.Contains(s, []byte("<Event")) || bytes.Contains(s, []byte(`\u003cEvent`)) || bytes.Contains(s, []byte(`\u003CEvent`))
}

// Envelope limits: an object event may sit inside envelopes this deep; a
// string event is unescaped (copied) once, so a string envelope cannot hold
// another string envelope.
const maxEnvelopeDepth = 4

// decodeJSON decodes one JSON record of format f (FormatAuto: any) at
// envelope depth depth.
//
// With prefilter set, the record is first read without validating what
// the decision does not need; anything but a NoMatch or a skip (a possible
// match, an error) is then decided by the full, validating decode, so
// Decode never yields an event or error that DecodeFull would not.
func (d *Decoder) decodeJSON(rec []byte, ev *processor.Event, prefilter bool, f Format, depth int) (Outcome, error) {
	if prefilter {
		outer := d.lazy
		d.lazy = true
		out, err := d.decodeJSONOnce(rec, ev, true, f, depth)
		d.lazy = outer
		if outer || err == nil && out != OutcomeEvent {
			return out, err // an enclosing envelope's pass decides
		}
		*ev = processor.Event{}
		d.skip = ""
	}
	return d.decodeJSONOnce(rec, ev, false, f, depth)
}

func (d *Decoder) decodeJSONOnce(rec []byte, ev *processor.Event, prefilter bool, f Format, depth int) (Outcome, error) {
	name := jsonFormatName(f)
	if err := d.scanJSON(rec); err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	var jf jsonFormat
	env := 0
	switch f {
	case FormatCIM:
		jf = jsonCIM
	case FormatECS:
		jf = jsonECS
		if d.kind(sRecordType) != 0 {
			jf = jsonAudit
		}
	case FormatOCSF:
		jf = jsonOCSF
	case FormatHEC:
		jf, env = jsonEnvelope, sEvent
	case FormatEnvelope:
		jf = jsonEnvelope
		env = sCustom
		if d.envField == "" {
			for _, s := range envelopeSlots {
				if d.kind(s) != 0 {
					env = s
					break
				}
			}
		}
	default:
		jf, env = d.classify()
	}
	switch jf {
	case jsonEnvelope:
		return d.unwrap(ev, prefilter, env, depth)
	case jsonCIM:
		return d.mapJSON(ev, prefilter, &cimMapping)
	case jsonECS:
		return d.mapJSON(ev, prefilter, &ecsMapping)
	case jsonOCSF:
		return d.mapJSON(ev, prefilter, &ocsfMapping)
	case jsonAudit:
		return d.mapJSON(ev, prefilter, &auditJSONMapping)
	}
	return 0, errors.New("json: no known format (CIM, ECS, OCSF, go-libaudit, or an envelope field)")
}

func jsonFormatName(f Format) string {
	if f == FormatAuto {
		return "json"
	}
	return f.String()
}

// unwrap decodes the inner event held in slot s of an envelope. The
// envelope's time (time, _time) and host (host, host.name) stand in for an
// inner event that lacks them; an outer envelope's stand-ins win.
func (d *Decoder) unwrap(ev *processor.Event, prefilter bool, s, depth int) (Outcome, error) {
	field := envelopeFieldName(s, d.envField)
	k := d.kind(s)
	if k == 0 {
		return 0, fmt.Errorf("envelope: no event in field %s", field)
	}
	if depth+1 >= maxEnvelopeDepth {
		return 0, fmt.Errorf("envelope: nested more than %d deep", maxEnvelopeDepth)
	}
	if err := d.envelopeFallbacks(); err != nil {
		return 0, err
	}
	v := d.slots[s]
	rec := d.rec
	switch k {
	case '{':
		return d.decodeJSON(rec[v.start:v.end], ev, prefilter, FormatAuto, depth+1)
	case '"':
		if !d.valid(s) {
			return 0, errLazyInvalid
		}
		inner := rec[v.start+1 : v.end-1]
		if bytes.IndexByte(inner, '\\') >= 0 || !isASCII(inner) {
			if d.inString {
				return 0, fmt.Errorf("envelope: field %s: a string event inside a string event", field)
			}
			d.inner = appendJSONUnescaped(d.inner[:0], inner)
			inner = d.inner
			d.inString = true
			defer func() { d.inString = false }()
		}
		out, err := d.decodeInnerLine(inner, ev, prefilter, depth+1)
		if err != nil {
			return 0, fmt.Errorf("envelope field %s: %w", field, err)
		}
		return out, nil
	}
	return 0, fmt.Errorf("envelope: field %s is neither a string nor an object", field)
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

func envelopeFieldName(s int, custom string) string {
	switch s {
	case sMessage:
		return "message"
	case sLog:
		return "log"
	case sRaw:
		return "_raw"
	case sEvent:
		return "event"
	case sEventOriginal:
		return "event.original"
	}
	return custom
}

// envelopeFallbacks notes the envelope's time and host, unless an outer
// envelope gave them.
func (d *Decoder) envelopeFallbacks() error {
	if !d.fbTimeSet {
		for _, s := range [...]int{sTime, sUTime} {
			if d.kind(s) == 0 {
				continue
			}
			t, err := d.epochOrRFC3339(s, time.Second)
			if err != nil {
				return fmt.Errorf("envelope: %w", err)
			}
			d.fbTime, d.fbTimeSet = t, true
			break
		}
	}
	if !d.fbHostSet {
		for _, s := range [...]int{sHost, sHostName} {
			if k := d.kind(s); k == '"' {
				d.fbHost, _ = d.appendText(d.fbHost[:0], s)
				d.fbHostSet = len(d.fbHost) > 0
				break
			}
		}
	}
	return nil
}

// decodeInnerLine decodes the line an envelope holds, in auto mode.
func (d *Decoder) decodeInnerLine(line []byte, ev *processor.Event, prefilter bool, depth int) (Outcome, error) {
	line = trimLineEnd(line)
	start := skipSpace(line, 0)
	if start == len(line) {
		d.skip = SkipEmpty
		return OutcomeSkip, nil
	}
	if line[start] == '{' {
		return d.decodeJSON(line[start:], ev, prefilter, FormatAuto, depth)
	}
	if depth > 0 && isAuditLine(line[start:]) {
		// audit.log forwarded line by line ({"message": "type=SYSCALL
		// ..."}). A line feeds the assembler once: the prefilter pass
		// leaves it to the full pass.
		if d.lazy {
			return OutcomeEvent, nil
		}
		return d.decodeAuditd(line[start:], ev, false)
	}
	if depth > 0 {
		// The envelope plays the syslog header's part: a text without
		// <Event is a log line, such as a banner, not an event.
		if _, _, ok := splitSysmonLine(line); !ok {
			d.skip = SkipBanner
			return OutcomeSkip, nil
		}
	}
	return d.decodeSysmonLine(line, ev, prefilter, "unrecognised record format")
}

// epochOrRFC3339 reads a time: a number or numeric string counts unit per
// unit (time.Second, time.Millisecond); other strings are RFC 3339.
func (d *Decoder) epochOrRFC3339(s int, unit time.Duration) (time.Time, error) {
	t, ok := d.text(s)
	if !ok {
		return time.Time{}, fmt.Errorf("invalid %s %s", slotName(s), d.raw(s))
	}
	if jsonNumberEnd(t, 0) == len(t) {
		if unit == time.Second {
			if tt, ok := parseEpoch(t); ok {
				return tt, nil
			}
		} else if tt, ok := parseEpochUnit(t, unit); ok {
			return tt, nil
		}
		return time.Time{}, fmt.Errorf("invalid %s %s", slotName(s), d.raw(s))
	}
	tt, ok := parseRFC3339(t)
	if !ok {
		return time.Time{}, fmt.Errorf("invalid %s %s", slotName(s), d.raw(s))
	}
	return tt, nil
}

// parseEpochUnit reads a non-negative JSON number of units since the epoch:
// plain digits exactly, anything else through float64.
func parseEpochUnit(lit []byte, unit time.Duration) (time.Time, bool) {
	limit := int64(math.MaxInt64 / unit)
	n, plain := int64(0), len(lit) > 0
	for _, c := range lit {
		if !isDigit(c) {
			plain = false
			break
		}
		if n = n*10 + int64(c-'0'); n >= limit {
			return time.Time{}, false
		}
	}
	if plain {
		return time.Unix(0, n*int64(unit)).UTC(), true
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f >= float64(limit) {
		return time.Time{}, false
	}
	return time.Unix(0, int64(f*float64(unit))).UTC(), true
}
