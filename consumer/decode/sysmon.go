package decode

import (
	"bytes"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/sshlateral/sshlateral/processor"
)

// The Sysmon for Linux decoder is a byte scanner over the flat layout Sysmon
// writes:
//
//	<Event><System>…<EventID>1</EventID>…<TimeCreated SystemTime="…"/>…
//	<Computer>host</Computer>…</System><EventData><Data Name="UtcTime">…</Data>…
//	</EventData></Event>
//
// It walks every tag once, tracks only the path it cares about
// (Event/System/{EventID,TimeCreated,Computer} and Event/EventData/Data) and
// copies the values it maps. Compared with encoding/xml (the reference in
// sysmon_ref_test.go) it produces the same event for every record in that
// layout and rejects, with errLayout, the few well-formed constructs Sysmon
// never writes:
//   - comments, CDATA, processing instructions, DOCTYPE (<! and <?);
//   - a ':' in an element or attribute name (namespace prefixes);
//   - an element nested inside EventID, Computer or Data;
//   - EventID outside Event/System or Data outside Event/EventData;
//   - EventID, Computer, TimeCreated or a mapped Data name given twice
//     (encoding/xml would keep the last);
//   - anything but whitespace after the closing </Event> (encoding/xml
//     ignores it).
//
// Field mapping (CIM Endpoint.Processes <- Sysmon EventID 1):
// dest=Computer, user=User, process=CommandLine, process_path=Image,
// process_name=basename(Image), process_id=ProcessId,
// parent_process=ParentCommandLine, parent_process_path=ParentImage,
// parent_process_name=basename(ParentImage), parent_process_id=ParentProcessId,
// original_file_name=OriginalFileName. "-" stays "-" (Sysmon v1.0.0 wrote it
// for unknown values, and Splunk keeps it); an empty value is missing.
// basename is the text after the last '/': "-" stays "-".
//
// Event time: UtcTime ("2006-01-02 15:04:05.000", UTC), else
// TimeCreated/@SystemTime (RFC 3339), else the syslog timestamp (RFC 3339, or
// RFC 3164 read as UTC in the current year, or the year before when that
// would put it more than 31 days in the future). Without any usable time the
// record is an error.

// sysmonErr formats a decode error.
func sysmonErr(format string, args ...any) error {
	return fmt.Errorf("sysmon: "+format, args...)
}

func layoutErr(what string) error {
	return fmt.Errorf("sysmon: %w: %s", errLayout, what)
}

// Element states along the tracked path.
const (
	stOther       uint8 = iota // an element the decoder ignores, and its subtree
	stRoot                     // Event
	stSystem                   // Event/System
	stEventData                // Event/EventData
	stEventID                  // Event/System/EventID
	stComputer                 // Event/System/Computer
	stTimeCreated              // Event/System/TimeCreated
	stData                     // Event/EventData/Data
)

// Data names the decoder maps; dataUtcTime is not an event field.
const (
	dataUtcTime = numFields + iota
	dataNone    = -1
)

// sysmonData is the Sysmon EventID 1 mapping: Data name to field index.
// process_name and parent_process_name are derived from Image and
// ParentImage; dest comes from System/Computer.
var sysmonData = []struct {
	name string
	key  int
}{
	{"UtcTime", dataUtcTime},
	{"ProcessId", fProcessID},
	{"Image", fProcessPath},
	{"OriginalFileName", fOriginalFileName},
	{"CommandLine", fProcess},
	{"User", fUser},
	{"ParentProcessId", fParentProcessID},
	{"ParentImage", fParentProcessPath},
	{"ParentCommandLine", fParentProcess},
}

var sysmonDataKeys = func() map[string]int {
	m := make(map[string]int, len(sysmonData))
	for _, d := range sysmonData {
		m[d.name] = d.key
	}
	return m
}()

func dataField(name []byte) int {
	if k, ok := sysmonDataKeys[string(name)]; ok {
		return k
	}
	return dataNone
}

// sysmonScan is the state of one full decode.
type sysmonScan struct {
	eventID     uint32
	haveEventID bool
	seenComp    bool
	seenTC      bool
	seenData    uint32 // bit per dataField result
	utc         time.Time
	haveUTC     bool
	badUTC      bool // UtcTime has a value that is not a time: the event is corrupt
	haveSys     bool // d.sysTime holds TimeCreated/@SystemTime
}

// decodeSysmon is the full decoder of one <Event> element.
func (d *Decoder) decodeSysmon(prefix, elem []byte, ev *processor.Event) (Outcome, error) {
	d.resetFields()
	var sc sysmonScan
	// states of the open elements at depth 0..2; deeper ones are stOther.
	var stack [3]uint8
	depth := 0
	pos := 0
	closed := false
	// contentStart is where the text of the open value element begins.
	contentStart := -1
	// dataKey is the mapped field of the open <Data> element.
	dataKey := dataNone

	for !closed {
		lt := pos
		if lt >= len(elem) || elem[lt] != '<' {
			// most tags follow one another directly; IndexByte for text
			i := indexLT(elem, pos)
			if i < 0 {
				return 0, sysmonErr("missing </Event>")
			}
			lt = i
		}
		pos = lt + 1
		if pos >= len(elem) {
			return 0, sysmonErr("missing </Event>")
		}
		// Fast path for the element Sysmon writes most:
		// <Data Name="X">text</Data> inside EventData. Anything else
		// falls through to the general tag reader below.
		if contentStart < 0 && depth == 2 && stack[1] == stEventData && hasDataOpen(elem, lt) {
			vs := lt + len(dataOpen)
			ve := vs
			for ve < len(elem) && !attrStop[elem[ve]] {
				ve++
			}
			if ve+1 < len(elem) && elem[ve] == '"' && elem[ve+1] == '>' {
				cs := ve + 2
				ce := bytes.IndexByte(elem[cs:], '<')
				if ce >= 0 && hasDataClose(elem, cs+ce) {
					ce += cs
					key := dataField(elem[vs:ve])
					if key != dataNone {
						esc := needsUnescape(elem[cs:ce])
						bit := uint32(1) << uint(key)
						if sc.seenData&bit != 0 {
							return 0, layoutErr("Data " + dataName(key) + " given twice")
						}
						sc.seenData |= bit
						if err := d.sysmonValue(&sc, stData, key, elem[cs:ce], esc); err != nil {
							return 0, err
						}
					}
					pos = ce + len(dataClose)
					continue
				}
			}
		}
		switch elem[pos] {
		case '!', '?':
			return 0, layoutErr("comment, CDATA or processing instruction")
		case '/':
			// end tag
			pos++
			nameEnd, _ := scanName(elem, pos)
			if nameEnd == pos {
				return 0, sysmonErr("malformed end tag at byte %d", lt)
			}
			p := skipSpace(elem, nameEnd)
			if p >= len(elem) {
				return 0, sysmonErr("missing </Event>")
			}
			if elem[p] != '>' {
				return 0, sysmonErr("malformed end tag at byte %d", lt)
			}
			pos = p + 1
			if depth == 0 {
				return 0, sysmonErr("unbalanced end tag at byte %d", lt)
			}
			depth--
			st := stOther
			if depth < len(stack) {
				st = stack[depth]
			}
			switch st {
			case stRoot:
				closed = true
			case stEventID, stComputer, stData:
				raw := elem[contentStart:lt]
				if err := d.sysmonValue(&sc, st, dataKey, raw, needsUnescape(raw)); err != nil {
					return 0, err
				}
				contentStart = -1
			}
		default:
			// start tag
			nameStart := pos
			nameEnd, colon := scanName(elem, pos)
			if nameEnd == nameStart {
				return 0, sysmonErr("malformed tag at byte %d", lt)
			}
			name := elem[nameStart:nameEnd]
			if colon {
				return 0, layoutErr("namespace prefix")
			}
			if contentStart >= 0 {
				return 0, layoutErr("element nested in a value")
			}
			parent := stOther
			if depth > 0 && depth-1 < len(stack) {
				parent = stack[depth-1]
			}
			st := stOther
			switch string(name) {
			case "Event":
				if depth == 0 {
					st = stRoot
				}
			case "System":
				if parent == stRoot {
					st = stSystem
				}
			case "EventData":
				if parent == stRoot {
					st = stEventData
				}
			case "EventID":
				if parent != stSystem {
					return 0, layoutErr("EventID outside Event/System")
				}
				if sc.haveEventID {
					return 0, layoutErr("EventID given twice")
				}
				st = stEventID
			case "Computer":
				if parent == stSystem {
					if sc.seenComp {
						return 0, layoutErr("Computer given twice")
					}
					sc.seenComp = true
					st = stComputer
				}
			case "TimeCreated":
				if parent == stSystem {
					if sc.seenTC {
						return 0, layoutErr("TimeCreated given twice")
					}
					sc.seenTC = true
					st = stTimeCreated
				}
			case "Data":
				if parent != stEventData {
					return 0, layoutErr("Data outside Event/EventData")
				}
				st = stData
			}
			if depth == 0 && st != stRoot {
				return 0, sysmonErr("root element is not <Event>")
			}
			// attributes
			p := nameEnd
			selfClose := false
			dataKey = dataNone
			for {
				q := skipSpace(elem, p)
				if q >= len(elem) {
					return 0, sysmonErr("missing </Event>")
				}
				if elem[q] == '>' {
					p = q + 1
					break
				}
				if elem[q] == '/' {
					if q+1 >= len(elem) || elem[q+1] != '>' {
						return 0, sysmonErr("malformed tag at byte %d", lt)
					}
					p = q + 2
					selfClose = true
					break
				}
				an, colon := scanName(elem, q)
				if an == q {
					return 0, sysmonErr("malformed attribute at byte %d", q)
				}
				attr := elem[q:an]
				if colon {
					return 0, layoutErr("namespace prefix")
				}
				q = skipSpace(elem, an)
				if q >= len(elem) || elem[q] != '=' {
					return 0, sysmonErr("attribute without value at byte %d", an)
				}
				q = skipSpace(elem, q+1)
				if q >= len(elem) || (elem[q] != '"' && elem[q] != '\'') {
					return 0, sysmonErr("unquoted attribute value at byte %d", q)
				}
				quote := elem[q]
				vs := q + 1
				ve, escaped, lt2 := scanQuoted(elem, vs, quote)
				if ve < 0 {
					return 0, sysmonErr("missing </Event>")
				}
				if lt2 {
					return 0, sysmonErr("'<' in attribute value at byte %d", vs)
				}
				val := elem[vs:ve]
				p = ve + 1
				switch {
				case st == stData && string(attr) == "Name":
					key := dataNone
					if !escaped {
						key = dataField(val)
					} else {
						u, err := d.unescapeTmp(val)
						if err != nil {
							return 0, err
						}
						key = dataField(u)
					}
					dataKey = key
				case st == stTimeCreated && string(attr) == "SystemTime":
					// parsed only if UtcTime is missing
					d.sysTime = append(d.sysTime[:0], val...)
					if escaped {
						u, err := d.unescapeTmp(val)
						if err != nil {
							return 0, err
						}
						d.sysTime = append(d.sysTime[:0], u...)
					}
					sc.haveSys = true
				}
			}
			if st == stData && dataKey != dataNone {
				bit := uint32(1) << uint(dataKey)
				if sc.seenData&bit != 0 {
					return 0, layoutErr("Data " + dataName(dataKey) + " given twice")
				}
				sc.seenData |= bit
			}
			if st == stEventID {
				sc.haveEventID = true
			}
			pos = p
			if selfClose {
				switch st {
				case stRoot:
					closed = true
				case stEventID, stComputer, stData:
					if err := d.sysmonValue(&sc, st, dataKey, nil, false); err != nil {
						return 0, err
					}
				}
				continue
			}
			if depth < len(stack) {
				stack[depth] = st
			}
			depth++
			if st == stEventID || st == stComputer || st == stData {
				contentStart = pos
			}
		}
	}

	if skipSpace(elem, pos) != len(elem) {
		return 0, layoutErr("data after </Event>")
	}
	if !sc.haveEventID {
		return 0, sysmonErr("missing EventID")
	}
	if sc.eventID != 1 {
		d.skip = skipReasonForEventID(sc.eventID)
		return OutcomeSkip, nil
	}
	t, err := sysmonTime(&sc, d.sysTime, prefix, d.now)
	if errors.Is(err, errNoTime) && d.fbTimeSet {
		t, err = d.fbTime, nil // the envelope's time
	}
	if err != nil {
		return 0, err
	}
	ev.Time = t
	d.basenameField(fProcessName, fProcessPath)
	d.basenameField(fParentProcessName, fParentProcessPath)
	d.fillEvent(ev)
	return OutcomeEvent, nil
}

// sysmonValue stores the text of a closed EventID, Computer or Data element.
// esc says whether raw holds '&' or CR.
func (d *Decoder) sysmonValue(sc *sysmonScan, st uint8, dataKey int, raw []byte, esc bool) error {
	switch st {
	case stEventID:
		v := raw
		if esc {
			u, err := d.unescapeTmp(raw)
			if err != nil {
				return err
			}
			v = u
		}
		id, ok := parseEventID(v)
		if !ok {
			return sysmonErr("invalid EventID %q", v)
		}
		sc.eventID = id
	case stComputer:
		return d.appendValue(fDest, raw, esc)
	case stData:
		switch {
		case dataKey == dataUtcTime:
			v := raw
			if esc {
				u, err := d.unescapeTmp(raw)
				if err != nil {
					return err
				}
				v = u
			}
			sc.utc, sc.haveUTC = parseUtcTime(v)
			// "-" and empty mean unknown (fall back); anything else that
			// is not a time must not silently become another time.
			sc.badUTC = !sc.haveUTC && len(v) > 0 && !(len(v) == 1 && v[0] == '-')
		case dataKey != dataNone:
			return d.appendValue(dataKey, raw, esc)
		}
	}
	return nil
}

// appendValue stores the unescaped raw text as field f.
func (d *Decoder) appendValue(f int, raw []byte, esc bool) error {
	if !esc {
		d.setField(f, raw)
		return nil
	}
	start := len(d.buf)
	var err error
	d.buf, err = appendXMLUnescaped(d.buf, raw)
	if err != nil {
		d.buf = d.buf[:start]
		return err
	}
	d.offs[f] = span{int32(start), int32(len(d.buf)), true}
	return nil
}

func (d *Decoder) unescapeTmp(raw []byte) ([]byte, error) {
	var err error
	d.tmp, err = appendXMLUnescaped(d.tmp[:0], raw)
	return d.tmp, err
}

func dataName(key int) string {
	for _, d := range sysmonData {
		if d.key == key {
			return d.name
		}
	}
	return "?"
}

// sysmonTime applies the event time fallbacks.
func sysmonTime(sc *sysmonScan, sysTime, prefix []byte, now func() time.Time) (time.Time, error) {
	if sc.haveUTC {
		return sc.utc, nil
	}
	if sc.badUTC {
		return time.Time{}, sysmonErr("invalid UtcTime")
	}
	if sc.haveSys {
		if t, ok := parseSystemTime(sysTime); ok {
			return t, nil
		}
	}
	if t, ok := syslogTime(prefix, now); ok {
		return t, nil
	}
	return time.Time{}, errNoTime
}

var errNoTime = errors.New("sysmon: no usable event time (UtcTime, TimeCreated, syslog timestamp)")

// scanName returns the end of the name starting at p: the first byte that
// is whitespace or one of / > = < " ' (a lenient superset of XML names);
// colon reports a ':' in it.
func scanName(b []byte, p int) (end int, colon bool) {
	for p < len(b) {
		switch nameClass[b[p]] {
		case 1:
			return p, colon
		case 2:
			colon = true
		}
		p++
	}
	return p, colon
}

// nameClass: 1 ends a name, 2 is the namespace colon.
var nameClass = func() (t [256]uint8) {
	for _, c := range []byte(" \t\n\r/>=<\"'") {
		t[c] = 1
	}
	t[':'] = 2
	return t
}()

// scanQuoted finds the closing quote of an attribute value starting at p
// and reports whether the value holds '&' or CR (escaped) or '<'.
func scanQuoted(b []byte, p int, quote byte) (end int, escaped, lt bool) {
	for i := p; i < len(b); i++ {
		if !attrStop[b[i]] {
			continue
		}
		switch b[i] {
		case quote:
			return i, escaped, lt
		case '&', '\r':
			escaped = true
		case '<':
			lt = true
		}
	}
	return -1, escaped, lt
}

// attrStop marks the bytes that end the plain run of an attribute value
// in the Data fast path: quotes, and what needs care (< & CR).
var attrStop = func() (t [256]bool) {
	for _, c := range []byte("\"'<&\r") {
		t[c] = true
	}
	return t
}()

const (
	dataOpen  = `<Data Name="`
	dataClose = `</Data>`
)

func hasDataOpen(b []byte, p int) bool {
	return len(b)-p > len(dataOpen) && string(b[p:p+len(dataOpen)]) == dataOpen
}

func hasDataClose(b []byte, p int) bool {
	return len(b)-p >= len(dataClose) && string(b[p:p+len(dataClose)]) == dataClose
}

// indexLT returns the index of the first '<' at or after p, or -1. Text
// between tags is mostly short, so a plain loop is tried before IndexByte.
func indexLT(b []byte, p int) int {
	end := min(p+16, len(b))
	for i := p; i < end; i++ {
		if b[i] == '<' {
			return i
		}
	}
	if i := bytes.IndexByte(b[end:], '<'); i >= 0 {
		return end + i
	}
	return -1
}

// needsUnescape reports whether a value holds an entity or a CR.
func needsUnescape(b []byte) bool {
	if len(b) > 32 {
		return bytes.IndexByte(b, '&') >= 0 || bytes.IndexByte(b, '\r') >= 0
	}
	for _, c := range b {
		if c == '&' || c == '\r' {
			return true
		}
	}
	return false
}

func skipSpace(b []byte, p int) int {
	for p < len(b) && isSpace(b[p]) {
		p++
	}
	return p
}

// parseEventID reads a decimal EventID (leading zeros allowed) up to
// 2^32-1.
func parseEventID(b []byte) (uint32, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
		if v > 1<<32-1 {
			return 0, false
		}
	}
	return uint32(v), true
}

// utcTimeLayout is Sysmon's UtcTime.
const utcTimeLayout = "2006-01-02 15:04:05.000"

// parseUtcTime parses UtcTime. The common exact form is read by hand;
// anything else goes to time.Parse, which decides.
func parseUtcTime(b []byte) (time.Time, bool) {
	if len(b) == len(utcTimeLayout) && b[4] == '-' && b[7] == '-' && b[10] == ' ' &&
		b[13] == ':' && b[16] == ':' && b[19] == '.' {
		y, ok1 := digits(b[0:4])
		mo, ok2 := digits(b[5:7])
		dd, ok3 := digits(b[8:10])
		hh, ok4 := digits(b[11:13])
		mi, ok5 := digits(b[14:16])
		ss, ok6 := digits(b[17:19])
		ms, ok7 := digits(b[20:23])
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 &&
			mo >= 1 && mo <= 12 && dd >= 1 && dd <= daysIn(mo, y) && hh < 24 && mi < 60 && ss < 60 {
			return time.Date(y, time.Month(mo), dd, hh, mi, ss, ms*1e6, time.UTC), true
		}
	}
	t, err := time.Parse(utcTimeLayout, string(b))
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

func digits(b []byte) (int, bool) {
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// parseSystemTime parses TimeCreated/@SystemTime (RFC 3339, any fraction).
func parseSystemTime(b []byte) (time.Time, bool) {
	return parseRFC3339(b)
}

// parseRFC3339 parses an RFC 3339 time as time.Parse(time.RFC3339Nano) does
// and returns it in UTC. The usual forms ("2006-01-02T15:04:05[.frac]" then
// "Z" or "+hh:mm") are read by hand without allocating; anything else goes
// to time.Parse, which decides.
func parseRFC3339(s []byte) (time.Time, bool) {
	if t, ok := parseRFC3339Common(s); ok {
		return t, true
	}
	t, err := time.Parse(time.RFC3339Nano, string(s))
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

func parseRFC3339Common(s []byte) (time.Time, bool) {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	y, ok1 := digits(s[0:4])
	mo, ok2 := digits(s[5:7])
	dd, ok3 := digits(s[8:10])
	hh, ok4 := digits(s[11:13])
	mi, ok5 := digits(s[14:16])
	ss, ok6 := digits(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || dd < 1 || dd > daysIn(mo, y) ||
		hh > 23 || mi > 59 || ss > 59 {
		return time.Time{}, false
	}
	p, ns := 19, 0
	if s[p] == '.' {
		p++
		start := p
		for p < len(s) && isDigit(s[p]) && p-start < 9 {
			ns = ns*10 + int(s[p]-'0')
			p++
		}
		if p == start || p < len(s) && isDigit(s[p]) {
			return time.Time{}, false
		}
		for k := p - start; k < 9; k++ {
			ns *= 10
		}
	}
	if p >= len(s) {
		return time.Time{}, false
	}
	off := 0
	switch s[p] {
	case 'Z':
		p++
	case '+', '-':
		if len(s)-p != 6 || s[p+3] != ':' {
			return time.Time{}, false
		}
		oh, ok1 := digits(s[p+1 : p+3])
		om, ok2 := digits(s[p+4 : p+6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		off = oh*3600 + om*60
		if s[p] == '-' {
			off = -off
		}
		p += 6
	default:
		return time.Time{}, false
	}
	if p != len(s) {
		return time.Time{}, false
	}
	return time.Date(y, time.Month(mo), dd, hh, mi, ss, ns, time.UTC).Add(-time.Duration(off) * time.Second), true
}

// appendXMLUnescaped appends raw with entities and character references
// decoded and CR / CRLF turned into LF, as encoding/xml does.
func appendXMLUnescaped(dst, raw []byte) ([]byte, error) {
	prevCR := false
	for i := 0; i < len(raw); {
		// copy the plain run up to the next '&' or CR in one go
		j := i
		for j < len(raw) && raw[j] != '&' && raw[j] != '\r' {
			j++
		}
		if j > i {
			if prevCR && raw[i] == '\n' {
				i++ // CRLF: the CR already became LF
			}
			dst = append(dst, raw[i:j]...)
			prevCR = false
			i = j
			if i == len(raw) {
				break
			}
		}
		if raw[i] == '\r' {
			dst = append(dst, '\n')
			prevCR = true
			i++
			continue
		}
		semi := bytes.IndexByte(raw[i:], ';')
		if semi < 0 {
			return dst, sysmonErr("invalid character entity (no semicolon)")
		}
		ent := raw[i+1 : i+semi]
		r, ok := xmlEntity(ent)
		if !ok {
			return dst, sysmonErr("invalid character entity &%s;", ent)
		}
		dst = utf8.AppendRune(dst, r)
		i += semi + 1
		prevCR = false
	}
	return dst, nil
}

// xmlEntity resolves the text between & and ;.
func xmlEntity(ent []byte) (rune, bool) {
	switch string(ent) {
	case "amp":
		return '&', true
	case "lt":
		return '<', true
	case "gt":
		return '>', true
	case "quot":
		return '"', true
	case "apos":
		return '\'', true
	}
	if len(ent) < 2 || ent[0] != '#' {
		return 0, false
	}
	base := uint64(10)
	num := ent[1:]
	if num[0] == 'x' {
		base = 16
		num = num[1:]
	}
	if len(num) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range num {
		var dv uint64
		switch {
		case c >= '0' && c <= '9':
			dv = uint64(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			dv = uint64(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			dv = uint64(c-'A') + 10
		default:
			return 0, false
		}
		v = v*base + dv
		if v > utf8.MaxRune {
			return 0, false
		}
	}
	// Any code point is taken, XML-illegal ones (&#0;) included: the same
	// bytes written raw are taken as they are, and a detection must not
	// depend on which of the two spellings the writer chose.
	return rune(v), true
}

var months = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// syslogHeader recognises a line that starts with an RFC 3164
// ("Oct 24 17:05:46 ") or RFC 3339 ("2026-06-08T05:28:19.188419+00:00 ")
// timestamp and returns the timestamp.
func syslogHeader(line []byte) ([]byte, bool) {
	if n := rfc3164Len(line); n > 0 {
		return line[:n], true
	}
	if len(line) > 11 && isDigit(line[0]) && isDigit(line[1]) && isDigit(line[2]) && isDigit(line[3]) &&
		line[4] == '-' && isDigit(line[5]) && isDigit(line[6]) && line[7] == '-' &&
		isDigit(line[8]) && isDigit(line[9]) && line[10] == 'T' {
		if sp := bytes.IndexByte(line, ' '); sp > 0 {
			return line[:sp], true
		}
	}
	return nil, false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// rfc3164Len returns the length of a leading "Mmm dd hh:mm:ss" (day one or
// two digits, space padded) followed by a space, or 0.
func rfc3164Len(b []byte) int {
	if len(b) < 15 || monthIndex(b) < 0 || b[3] != ' ' {
		return 0
	}
	p := 4
	if b[p] == ' ' {
		p++
	}
	ds := p
	for p < len(b) && isDigit(b[p]) {
		p++
	}
	if n := p - ds; n < 1 || n > 2 {
		return 0
	}
	if len(b) < p+10 || b[p] != ' ' {
		return 0
	}
	c := b[p+1:]
	if !(isDigit(c[0]) && isDigit(c[1]) && c[2] == ':' && isDigit(c[3]) && isDigit(c[4]) &&
		c[5] == ':' && isDigit(c[6]) && isDigit(c[7])) {
		return 0
	}
	end := p + 9
	if end < len(b) && b[end] != ' ' {
		return 0
	}
	return end
}

func monthIndex(b []byte) int {
	if len(b) < 3 {
		return -1
	}
	for i, m := range months {
		if b[0] == m[0] && b[1] == m[1] && b[2] == m[2] {
			return i
		}
	}
	return -1
}

// syslogTime parses the syslog timestamp at the start of prefix.
func syslogTime(prefix []byte, now func() time.Time) (time.Time, bool) {
	stamp, ok := syslogHeader(prefix)
	if !ok {
		return time.Time{}, false
	}
	if stamp[0] >= '0' && stamp[0] <= '9' {
		t, err := time.Parse(time.RFC3339Nano, string(stamp))
		if err != nil {
			return time.Time{}, false
		}
		return t.UTC(), true
	}
	mon := monthIndex(stamp) + 1
	p := 4
	if stamp[p] == ' ' {
		p++
	}
	day := 0
	for isDigit(stamp[p]) {
		day = day*10 + int(stamp[p]-'0')
		p++
	}
	c := stamp[p+1:]
	hh := int(c[0]-'0')*10 + int(c[1]-'0')
	mi := int(c[3]-'0')*10 + int(c[4]-'0')
	ss := int(c[6]-'0')*10 + int(c[7]-'0')
	n := now().UTC()
	year := n.Year()
	if day < 1 || day > 31 || hh > 23 || mi > 59 || ss > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(mon), day, hh, mi, ss, 0, time.UTC)
	// RFC 3164 has no year: a stamp far in the future was written last year
	// (a December line read in January).
	if t.Sub(n) > 31*24*time.Hour || t.Month() != time.Month(mon) {
		t = time.Date(year-1, time.Month(mon), day, hh, mi, ss, 0, time.UTC)
		if t.Month() != time.Month(mon) {
			return time.Time{}, false
		}
	}
	return t, true
}
