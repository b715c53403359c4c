package producer

import (
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sshlateral/sshlateral/processor"
)

// AppendJSONLines appends the two risk records of r as JSON lines, each
// ending in '\n': the bytes JSON renders for each of RiskRecords(r), without
// building the native maps. It refuses what Encoder refuses.
func AppendJSONLines(dst []byte, r *processor.Result) ([]byte, error) {
	if err := checkResult(r); err != nil {
		return dst, fmt.Errorf("producer: render alert %.64q as json: %w", r.AlertID, err)
	}
	f := newRiskFields(r)
	dst, _ = appendPair(dst, jsonLayout{&f})
	return dst, nil
}

// jsonLayout is JSON's rendering, one line per record.
type jsonLayout struct{ f *riskFields }

// jsonAnnotations is the constant annotations object, rendered by JSON's
// own writer.
var jsonAnnotations = func() []byte {
	w := newJSONWriter()
	if riskRecordModelErr == nil {
		_ = w.record(riskRecordModel.fields[posAnnotations].typ, newAnnotationsNative())
	}
	return w.out
}()

func appendJSONField(dst []byte, pos int) []byte {
	if pos > 0 {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, fieldNames[pos]...)
	return append(dst, '"', ':')
}

func (l jsonLayout) head(dst []byte) []byte {
	dst = append(dst, '{')
	dst = appendJSONString(appendJSONField(dst, posAlertID), l.f.r.AlertID)
	dst = appendJSONString(appendJSONField(dst, posSearchName), processor.SearchName)
	dst = appendJSONString(appendJSONField(dst, posDetectionID), processor.DetectionID)
	return strconv.AppendInt(appendJSONField(dst, posDetectionVersion), processor.DetectionVersion, 10)
}

func (l jsonLayout) object(dst []byte, i int) []byte {
	value, _, kind := l.f.object(i)
	dst = appendJSONString(appendJSONField(dst, posRiskObject), value)
	return appendJSONString(appendJSONField(dst, posRiskObjectType), kind)
}

func (l jsonLayout) middle(dst []byte) []byte {
	f, r := l.f, l.f.r
	dst = strconv.AppendInt(appendJSONField(dst, posRiskScore), processor.RiskScore, 10)
	dst = strconv.AppendInt(appendJSONField(dst, posImpact), processor.Impact, 10)
	dst = strconv.AppendInt(appendJSONField(dst, posConfidence), processor.Confidence, 10)
	// Escaping works character by character, and every part is valid
	// UTF-8, so the parts are escaped one by one, without building the
	// message.
	dst = append(appendJSONField(dst, posRiskMessage), '"')
	for _, part := range [...]string{riskMessage1, f.processName, riskMessage2, f.dest, riskMessage3, f.user, riskMessage4} {
		dst = appendJSONChars(dst, part)
	}
	dst = append(dst, '"')
	dst = appendJSONString(appendJSONField(dst, posThreatObject), f.processName)
	dst = appendJSONString(appendJSONField(dst, posThreatObjectType), threatObjectType)
	// dest to parent_process_id are consecutive in the schema.
	for j, s := range [...]string{f.dest, f.user, f.parentProcessName, f.processName, f.process, f.processID, f.parentProcessID} {
		dst = appendJSONString(appendJSONField(dst, posDest+j), s)
	}
	dst = strconv.AppendInt(appendJSONField(dst, posCount), r.Count, 10)
	for j, t := range [...]time.Time{r.FirstSeen, r.LastSeen} {
		dst = append(appendJSONField(dst, posFirstTime+j), '"')
		dst = append(appendCTime(dst, t), '"')
	}
	for j, t := range [...]time.Time{r.FirstSeen, r.LastSeen, r.WindowStart, r.WindowEnd} {
		dst = strconv.AppendInt(appendJSONField(dst, posFirstSeen+j), t.UnixMilli(), 10)
	}
	dst = appendJSONString(appendJSONField(dst, posEmission), r.Emission.String())
	dst = strconv.AppendInt(appendJSONField(dst, posRevision), int64(r.Revision), 10)
	for j, s := range [...]string{f.parentProcess, f.processPath, f.parentProcessPath, f.originalFileName} {
		dst = appendJSONField(dst, posParentProcess+j)
		if s == "" {
			dst = append(dst, "null"...)
		} else {
			dst = appendJSONString(dst, s)
		}
	}
	return append(appendJSONField(dst, posAnnotations), jsonAnnotations...)
}

func (l jsonLayout) tail(dst []byte, i int) []byte {
	truncated, sanitized := l.f.flags(i)
	dst = appendJSONFieldSet(appendJSONField(dst, posTruncated), truncated)
	return append(appendJSONFieldSet(appendJSONField(dst, posSanitized), sanitized), '}', '\n')
}

func appendJSONFieldSet(dst []byte, s fieldSet) []byte {
	dst = append(dst, '[')
	first := true
	for pos := range fieldCount {
		if s.has(pos) {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendJSONString(dst, fieldNames[pos])
		}
	}
	return append(dst, ']')
}

const jsonHex = "0123456789abcdef"

// appendJSONString appends s as a JSON string exactly as encoding/json
// writes it with HTML escaping off (FuzzAppendJSONString checks this):
// the rendering the Python verifier reproduces.
func appendJSONString(dst []byte, s string) []byte {
	return append(appendJSONChars(append(dst, '"'), s), '"')
}

// appendJSONChars is appendJSONString without the quotes.
func appendJSONChars(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', jsonHex[b>>4], jsonHex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', jsonHex[c&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(dst, s[start:]...)
}
