package processor

import (
	"fmt"
	"strings"
)

// MatchMode selects how strictly the command line is compared with the ESCU
// conditions.
type MatchMode uint8

const (
	// MatchESCU is the search exactly as ESCU writes it: process_name=ssh and
	// case-insensitive substrings of the raw command line.
	MatchESCU MatchMode = iota
	// MatchRobust is a superset of MatchESCU: it also reads the command line
	// as shell words, so that spaced, quoted or split -o options match.
	MatchRobust
)

// ParseMatchMode parses "escu" or "robust" (any case).
func ParseMatchMode(s string) (MatchMode, error) {
	switch {
	case strings.EqualFold(s, "escu"):
		return MatchESCU, nil
	case strings.EqualFold(s, "robust"):
		return MatchRobust, nil
	}
	return 0, fmt.Errorf("unknown match mode %q (want escu or robust)", s)
}

// String returns the --match spelling of m.
func (m MatchMode) String() string {
	switch m {
	case MatchESCU:
		return "escu"
	case MatchRobust:
		return "robust"
	}
	return fmt.Sprintf("MatchMode(%d)", uint8(m))
}

// Set parses s into m, so that *MatchMode is a flag.Value.
func (m *MatchMode) Set(s string) error {
	v, err := ParseMatchMode(s)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// UnmarshalText parses text like Set, for configuration files.
func (m *MatchMode) UnmarshalText(text []byte) error { return m.Set(string(text)) }

// MarshalText returns the --match spelling of m.
func (m MatchMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// The ESCU conditions, lower case. Folding is ASCII only: Splunk's wildcard
// comparison is byte-oriented, and Unicode folding (U+017F "ſ" to "s", U+212A
// Kelvin sign to "k") would let names match that the decoders' prefilter
// (process name "ssh" in ASCII) could not see.
var (
	escuOptions = [...]string{"ostricthostkeychecking", "oconnecttimeout", "obatchmode"}
	// optionKeys are escuOptions without the leading "o": the ssh_config
	// keywords as they appear in the word after a separate -o.
	optionKeys = [...]string{"stricthostkeychecking", "connecttimeout", "batchmode"}
)

// Match reports whether e satisfies the detection in the given mode.
//
// Both modes require ProcessName to equal "ssh" in ASCII case-insensitively
// (an empty, i.e. missing, name is Splunk's null and never equals ssh; a path
// such as "/usr/bin/ssh" is not the basename and does not match; the decoder
// derives the basename, the matcher does not guess it from ProcessPath, so
// the result's process_name is never "null") and the command line to contain
// "http:" or "https:" case-insensitively.
//
// MatchESCU then requires one of the substrings oStrictHostKeyChecking,
// oConnectTimeout or oBatchMode anywhere in the raw command line; like Splunk,
// "-o StrictHostKeyChecking=no" (with a space) does not match.
//
// MatchRobust accepts whatever MatchESCU accepts and, in addition, splits the
// command line into words as a POSIX shell would (single and double quotes,
// backslash escapes, blanks between words) and accepts an option for one of
// the three keywords given in any form: "-o Key=v" with any blanks, quoted
// ("-o 'Key=v'", -o'Key=v', "-oKey=v"), "-o Key v" (an argv element holding
// a blank, flattened into the command line), clustered flags ("-qo Key=v"),
// upper-case option letters (-O, as the ESCU substring test also allows) and
// keywords in any case.
//
// An unknown mode matches nothing. Match does not allocate.
func Match(mode MatchMode, e *Event) bool {
	if mode > MatchRobust || !isSSHName(e.ProcessName) || !hasURL(e.Process) {
		return false
	}
	if hasESCUOption(e.Process) {
		return true
	}
	return mode == MatchRobust && hasOptionWord(e.Process)
}

func isSSHName(s string) bool {
	return len(s) == 3 && lowerASCII(s[0]) == 's' && lowerASCII(s[1]) == 's' && lowerASCII(s[2]) == 'h'
}

// hasURL reports whether cmd contains "http:" or "https:" (ASCII case-folded),
// in one pass over the occurrences of "http".
func hasURL(cmd string) bool {
	for rest := cmd; ; {
		i := indexFold(rest, "http")
		if i < 0 {
			return false
		}
		rest = rest[i+len("http"):]
		if len(rest) > 0 && (rest[0] == ':' || (lowerASCII(rest[0]) == 's' && len(rest) > 1 && rest[1] == ':')) {
			return true
		}
	}
}

func hasESCUOption(cmd string) bool {
	for _, o := range escuOptions {
		if indexFold(cmd, o) >= 0 {
			return true
		}
	}
	return false
}

// hasOptionWord splits cmd into shell words without allocating and reports
// whether one of them carries an ssh option for one of optionKeys: either a
// word containing "o"+key (the ESCU test applied to the unquoted word) or a
// word starting with key (then "=", a blank or its end) right after an option
// cluster ending in o or O ("-o", "-qo").
func hasOptionWord(cmd string) bool {
	var w optionWord
	w.reset()
	afterOptionFlag := false
	inWord := false
	var quote byte
	for i := 0; i < len(cmd); i++ {
		c := cmd[i]
		switch quote {
		case '\'':
			if c == '\'' {
				quote = 0
			} else {
				w.add(c)
			}
			continue
		case '"':
			switch {
			case c == '"':
				quote = 0
			case c == '\\' && i+1 < len(cmd) && strings.IndexByte("\"\\$`\n", cmd[i+1]) >= 0:
				i++
				if cmd[i] != '\n' {
					w.add(cmd[i])
				}
			default:
				w.add(c)
			}
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			if inWord {
				if w.carriesOption(afterOptionFlag) {
					return true
				}
				afterOptionFlag = w.isOptionFlag()
				w.reset()
				inWord = false
			}
		case '\'', '"':
			quote = c
			inWord = true
		case '\\':
			inWord = true
			if i+1 < len(cmd) {
				i++
				if cmd[i] != '\n' {
					w.add(cmd[i])
				}
			}
		default:
			inWord = true
			w.add(c)
		}
	}
	return inWord && w.carriesOption(afterOptionFlag)
}

// optionWord is the streaming state of one shell word: enough to tell whether
// it contains "o"+key, starts with key, or is an option cluster ending in o.
type optionWord struct {
	n        int      // bytes so far
	tail     [32]byte // ring of the last bytes, lower case
	contains bool     // contains "o"+key for some key
	// head holds the first bytes after leading blanks, lower case.
	head    [32]byte
	headLen int // bytes after leading blanks (may exceed len(head))
	// option cluster: "-" then letters or digits, last one o or O.
	second  byte
	last    byte
	alnum   bool
	leading bool
}

func (w *optionWord) reset() {
	w.n, w.headLen, w.contains, w.second, w.last, w.alnum, w.leading = 0, 0, false, 0, 0, true, true
}

func (w *optionWord) add(c byte) {
	if w.n == 0 {
		w.alnum = c == '-'
	} else {
		if w.n == 1 {
			w.second = c
		}
		w.alnum = w.alnum && isAlnum(c)
	}
	w.last = c
	l := lowerASCII(c)
	w.tail[w.n%len(w.tail)] = l
	w.n++
	// Leading blanks can only come from quotes ("-o ' BatchMode=yes'"); ssh
	// skips them when it parses the option, so head does too.
	if !w.leading || (c != ' ' && c != '\t') {
		w.leading = false
		if w.headLen < len(w.head) {
			w.head[w.headLen] = l
		}
		w.headLen++
	}
	if w.contains {
		return
	}
	for _, o := range escuOptions {
		if l == o[len(o)-1] && w.n >= len(o) && w.tailEndsWith(o) {
			w.contains = true
			return
		}
	}
}

func (w *optionWord) tailEndsWith(s string) bool {
	for k := 0; k < len(s); k++ {
		if w.tail[(w.n-len(s)+k)%len(w.tail)] != s[k] {
			return false
		}
	}
	return true
}

// isOptionFlag reports whether the word is "-o", "-O" or a cluster such as
// "-qo" whose last flag takes the next word as its argument.
func (w *optionWord) isOptionFlag() bool {
	return w.n >= 2 && w.alnum && w.second != '-' && (w.last == 'o' || w.last == 'O')
}

func (w *optionWord) carriesOption(afterOptionFlag bool) bool {
	if w.contains {
		return true
	}
	if !afterOptionFlag {
		return false
	}
	for _, k := range optionKeys {
		if w.headLen < len(k) || string(w.head[:len(k)]) != k {
			continue
		}
		if w.headLen == len(k) {
			return true
		}
		switch w.head[len(k)] {
		case '=', ' ', '\t':
			return true
		}
	}
	return false
}

func isAlnum(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

type byteSeq interface{ ~string | ~[]byte }

const (
	swarOnes  = 0x0101010101010101
	swarHighs = 0x8080808080808080
)

// indexFold returns the first index of needle in h, comparing ASCII letters
// case-insensitively and every other byte exactly, or -1. It does not
// allocate and examines eight candidate positions per step.
func indexFold[T byteSeq](h T, needle string) int {
	n := len(needle)
	if n == 0 {
		return 0
	}
	last := len(h) - n // last candidate start
	if last < 0 {
		return -1
	}
	first := lowerASCII(needle[0])
	// OR-ing 0x20 folds A-Z onto a-z. For a first byte without that bit
	// (e.g. '@', '_') the mask must stay 0 or it could never be found.
	var mask byte
	if first&0x20 != 0 {
		mask = 0x20
	}
	i := 0
	if last >= 8 {
		pattern := uint64(first) * swarOnes
		bits := uint64(mask) * swarOnes
		for ; i+8 <= last+1; i += 8 {
			v := (uint64(h[i]) | uint64(h[i+1])<<8 | uint64(h[i+2])<<16 | uint64(h[i+3])<<24 |
				uint64(h[i+4])<<32 | uint64(h[i+5])<<40 | uint64(h[i+6])<<48 | uint64(h[i+7])<<56)
			v = (v | bits) ^ pattern
			if (v-swarOnes)&^v&swarHighs == 0 {
				continue // no candidate first byte among these eight
			}
			for j := i; j < i+8; j++ {
				if h[j]|mask == first && equalFoldAt(h, j, needle) {
					return j
				}
			}
		}
	}
	for ; i <= last; i++ {
		if h[i]|mask == first && equalFoldAt(h, i, needle) {
			return i
		}
	}
	return -1
}

func equalFoldAt[T byteSeq](h T, at int, needle string) bool {
	for k := 0; k < len(needle); k++ {
		if lowerASCII(h[at+k]) != lowerASCII(needle[k]) {
			return false
		}
	}
	return true
}
