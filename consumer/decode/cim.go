package decode

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// The CIM mapping (json.go reads the record) takes one JSON object per record whose keys are Splunk
// Endpoint.Processes field names, with or without the "Processes." prefix:
// dest, user, process, process_name, process_path, process_id,
// parent_process, parent_process_name, parent_process_path,
// parent_process_id, original_file_name, and _time.
//
// The JSON scanner validates the whole record as JSON (the same
// documents encoding/json accepts, including its nesting limit) and unescapes
// strings as encoding/json does (invalid UTF-8 and lone surrogates become
// U+FFFD). Decisions:
//   - Keys are case-sensitive. When a field appears more than once, with or
//     without the prefix, the last one wins, as with encoding/json.
//   - A string is taken as is; null means missing; a number becomes its
//     decimal text (1234 -> "1234"; 1234.0 -> "1234"; other non-integers keep
//     their JSON spelling); true/false become "true"/"false"; an object or
//     array is an error.
//   - process_name is not derived from process_path when absent: the record
//     is already a data-model row, and tstats would see null there. (Sysmon
//     input derives it from Image, as the Splunk add-on does.)
//   - _time is an RFC 3339 string, or epoch seconds as a number or numeric
//     string, fraction allowed (read exactly to the nanosecond when written
//     as plain digits). Missing or null _time is an error, unless an
//     envelope around the record gives a time.
//   - A record with none of the eleven fields set is an ErrUnmapped error.

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

// maxEpoch is 9999-12-31T23:59:59Z.
const maxEpoch = 253402300799

// jsonErr is a JSON syntax or value error; the decoder prefixes the format.
func jsonErr(format string, args ...any) error {
	return fmt.Errorf(format, args...)
}

// scanJSONString validates the string whose opening quote is at p and
// returns the index of its closing quote. slow reports escapes or non-ASCII
// bytes, which need appendJSONUnescaped.
func scanJSONString(b []byte, p int) (end int, slow bool, err error) {
	for i := p + 1; i < len(b); i++ {
		i += plainRun(b[i:]) // plain bytes first
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			return i, slow, nil
		case c == '\\':
			slow = true
			i++
			if i >= len(b) {
				return 0, false, jsonErr("unterminated string at byte %d", p)
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) || hex4(b[i+1:i+5]) < 0 {
					return 0, false, jsonErr("invalid \\u escape at byte %d", i)
				}
				i += 4
			default:
				return 0, false, jsonErr("invalid escape at byte %d", i)
			}
		case c < 0x20:
			return 0, false, jsonErr("control character in string at byte %d", i)
		default: // >= 0x80
			slow = true
		}
	}
	return 0, false, jsonErr("unterminated string at byte %d", p)
}

// plainRun returns the length of the prefix of s that a JSON string holds
// as is: no quote, backslash, control character or non-ASCII byte. Eight
// bytes are tested at a time (the "has a byte less than" word tricks).
func plainRun(s []byte) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64(s[i:])
		ctl := (x - 0x20*ones) &^ x                  // a byte < 0x20
		q := x ^ '"'*ones                            // a zero byte where '"' was
		bs := x ^ '\\'*ones                          // a zero byte where '\\' was
		hit := ctl | x | (q-ones)&^q | (bs-ones)&^bs // x: a byte >= 0x80
		if hit&highs != 0 {
			break
		}
	}
	for i < len(s) && strClass[s[i]] == 0 {
		i++
	}
	return i
}

// strClass marks the bytes of a JSON string that need a look: the quote,
// the backslash, control characters and non-ASCII.
var strClass = func() (t [256]uint8) {
	for c := range t {
		if c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			t[c] = 1
		}
	}
	return t
}()

func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// appendJSONUnescaped appends the content of a validated JSON string as
// encoding/json decodes it.
func appendJSONUnescaped(dst, s []byte) []byte {
	for r := 0; r < len(s); {
		// copy the plain run up to the next escape or non-ASCII byte
		run := r + plainRun(s[r:])
		if run > r {
			dst = append(dst, s[r:run]...)
			r = run
			continue
		}
		c := s[r]
		switch {
		case c == '\\':
			r++
			switch s[r] {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				rr := hex4(s[r+1:])
				r += 5
				if utf16.IsSurrogate(rr) {
					if r+1 < len(s) && s[r] == '\\' && s[r+1] == 'u' {
						if dec := utf16.DecodeRune(rr, hex4(s[r+2:])); dec != utf8.RuneError {
							dst = utf8.AppendRune(dst, dec)
							r += 6
							continue
						}
					}
					rr = utf8.RuneError
				}
				dst = utf8.AppendRune(dst, rr)
				continue
			default: // " \ /
				dst = append(dst, s[r])
			}
			r++
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			dst = utf8.AppendRune(dst, rr)
			r += size
		}
	}
	return dst
}

// scanJSONNumber validates the number at p and returns its end.
func scanJSONNumber(b []byte, p int) (int, error) {
	end := jsonNumberEnd(b, p)
	if end < 0 {
		return 0, jsonErr("invalid number at byte %d", p)
	}
	return end, nil
}

// jsonNumberEnd returns the end of the JSON number at p, or -1.
func jsonNumberEnd(b []byte, p int) int {
	i := p
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return -1
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return -1
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i
}

func scanLiteral(b []byte, p int, lit string) (int, error) {
	if !bytes.HasPrefix(b[p:], []byte(lit)) {
		return 0, jsonErr("invalid literal at byte %d", p)
	}
	return p + len(lit), nil
}

// skipJSONValue validates the value at p, nested depth levels deep (the
// top-level object is 1), and returns its end.
func skipJSONValue(b []byte, p, depth int) (int, error) {
	if p >= len(b) {
		return p, jsonErr("unexpected end of record")
	}
	switch c := b[p]; {
	case c == '"':
		end, _, err := scanJSONString(b, p)
		return end + 1, err
	case c == '-' || isDigit(c):
		return scanJSONNumber(b, p)
	case c == 't':
		return scanLiteral(b, p, "true")
	case c == 'f':
		return scanLiteral(b, p, "false")
	case c == 'n':
		return scanLiteral(b, p, "null")
	case c == '{' || c == '[':
		if depth > maxJSONDepth {
			return p, jsonErr("exceeded max depth")
		}
		closeBy := byte('}')
		if c == '[' {
			closeBy = ']'
		}
		p = skipSpace(b, p+1)
		if p < len(b) && b[p] == closeBy {
			return p + 1, nil
		}
		for {
			var err error
			if c == '{' {
				if p >= len(b) || b[p] != '"' {
					return p, jsonErr("expected object key at byte %d", p)
				}
				end, _, err := scanJSONString(b, p)
				if err != nil {
					return p, err
				}
				p = skipSpace(b, end+1)
				if p >= len(b) || b[p] != ':' {
					return p, jsonErr("expected ':' at byte %d", p)
				}
				p = skipSpace(b, p+1)
			}
			if p, err = skipJSONValue(b, p, depth+1); err != nil {
				return p, err
			}
			more := false
			if p, more, err = afterValue(b, p, closeBy); err != nil || !more {
				return p, err
			}
		}
	}
	return p, jsonErr("invalid value at byte %d", p)
}

// afterValue reads what follows a value inside an object or array closed
// by closeBy: a ',' (more is true, p is at the next key or value) or the
// closing byte (p is after it).
func afterValue(b []byte, p int, closeBy byte) (next int, more bool, err error) {
	p = skipSpace(b, p)
	switch {
	case p >= len(b):
		return p, false, jsonErr("unexpected end of record")
	case b[p] == ',':
		return skipSpace(b, p+1), true, nil
	case b[p] == closeBy:
		return p + 1, false, nil
	}
	return p, false, jsonErr("expected ',' or '%c' at byte %d", closeBy, p)
}

// appendCIMNumber appends the field text of a JSON number.
func appendCIMNumber(dst, lit []byte) []byte {
	if bytes.IndexAny(lit, ".eE") < 0 {
		return append(dst, lit...)
	}
	v, err := strconv.ParseFloat(string(lit), 64)
	if err == nil && v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.AppendInt(dst, int64(v), 10)
	}
	return append(dst, lit...)
}

// parseCIMTimeString reads _time given as a string: RFC 3339 or epoch
// seconds.
func parseCIMTimeString(s []byte) (time.Time, bool) {
	if jsonNumberEnd(s, 0) == len(s) {
		return parseEpoch(s)
	}
	return parseRFC3339(s)
}

func hasExponent(b []byte) bool {
	for _, c := range b {
		if c == 'e' || c == 'E' {
			return true
		}
	}
	return false
}

// parseEpoch reads epoch seconds from a JSON number. Plain decimals are read
// exactly (nanoseconds truncated); exponents go through float64. Negative
// times and times after year 9999 are refused.
func parseEpoch(lit []byte) (time.Time, bool) {
	intEnd := 0
	for intEnd < len(lit) && isDigit(lit[intEnd]) {
		intEnd++
	}
	if intEnd > 0 && (intEnd == len(lit) || lit[intEnd] == '.' && !hasExponent(lit[intEnd:])) {
		var sec int64
		for _, c := range lit[:intEnd] {
			sec = sec*10 + int64(c-'0')
			if sec > maxEpoch {
				return time.Time{}, false
			}
		}
		var nsec int64
		if intEnd < len(lit) {
			frac := lit[intEnd+1:]
			for i := 0; i < 9; i++ {
				nsec *= 10
				if i < len(frac) {
					nsec += int64(frac[i] - '0')
				}
			}
		}
		return time.Unix(sec, nsec).UTC(), true
	}
	v, err := strconv.ParseFloat(string(lit), 64)
	if err != nil || math.IsNaN(v) || v < 0 || v > maxEpoch {
		return time.Time{}, false
	}
	sec := math.Floor(v)
	nsec := int64(math.Round((v - sec) * 1e9))
	if nsec >= 1e9 {
		nsec = 1e9 - 1
	}
	return time.Unix(int64(sec), nsec).UTC(), true
}
