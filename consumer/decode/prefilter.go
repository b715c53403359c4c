package decode

import (
	"bytes"

	"github.com/sshlateral/sshlateral/processor"
)

// The prefilter spares most records a full decode. Both matcher modes
// require process_name to equal "ssh" case-insensitively (processor.Match),
// so a process start whose process_name cannot be "ssh" cannot match: it
// needs only its event time, for the watermark. The test is made on the
// field itself rather than on the whole record, which is both cheaper and
// sharper: for Sysmon, the basename of the Image value; for CIM, the
// process_name value (the scanner validates the record anyway).
// FuzzPrefilterNeverRejectsMatch holds it to processor.Match in both modes.

// mayBeSSH reports whether a process_name value could equal "ssh": an ASCII
// case-insensitive comparison, and any non-ASCII byte gets the benefit of
// the doubt (Unicode folding equates U+017F ſ with s).
func mayBeSSH(name []byte) bool {
	for _, c := range name {
		if c >= 0x80 {
			return true
		}
	}
	return len(name) == 3 && name[0]|0x20 == 's' && name[1]|0x20 == 's' && name[2]|0x20 == 'h'
}

// findData returns the text of a <Data Name="X"> element written exactly
// so, and where the text starts; needle is `X">`. It searches from off and
// then, if need be, from the start. In a record the full decoder accepts
// such an element is unique, so any occurrence found is the one it reads.
func findData(elem []byte, needle string, off int) (v []byte, at int, ok bool) {
	if v, at, ok := findDataFrom(elem, needle, off); ok || off == 0 {
		return v, at, ok
	}
	return findDataFrom(elem, needle, 0)
}

func findDataFrom(elem []byte, needle string, off int) (v []byte, at int, ok bool) {
	for {
		i := bytes.Index(elem[off:], []byte(needle))
		if i < 0 {
			return nil, 0, false
		}
		i += off
		if i >= len(dataOpen) && string(elem[i-len(dataOpen):i]) == dataOpen {
			start := i + len(needle)
			e := bytes.IndexByte(elem[start:], '<')
			if e < 0 || !hasDataClose(elem, start+e) {
				return nil, 0, false
			}
			return elem[start : start+e], start, true
		}
		off = i + 1
	}
}

// sysmonPrefilter classifies a Sysmon record without a full decode when it
// is a skip or a process start whose Image basename cannot be "ssh".
// handled is false whenever the record could match or is not in the plain
// layout the shortcut reads; the full decoder then decides.
//
// For a record the full decoder accepts, the shortcut reaches the same
// outcome: the full decoder rejects comments, data after </Event>, and
// misplaced or repeated EventID and Data elements, so the first "<EventID>"
// and the first <Data Name="Image"> and <Data Name="UtcTime"> written that
// way are the ones it reads.
func (d *Decoder) sysmonPrefilter(prefix, elem []byte, ev *processor.Event) (Outcome, bool) {
	// A truncated record goes to the full decoder, which rejects it.
	if !bytes.HasSuffix(elem, []byte("</Event>")) {
		return 0, false
	}
	const idOpen, idClose = "<EventID>", "</EventID>"
	i := bytes.Index(elem, []byte("<EventID"))
	if i < 0 || !bytes.HasPrefix(elem[i:], []byte(idOpen)) {
		return 0, false
	}
	i += len(idOpen)
	j := bytes.IndexByte(elem[i:], '<')
	if j < 0 || !bytes.HasPrefix(elem[i+j:], []byte(idClose)) {
		return 0, false
	}
	id, ok := parseEventID(elem[i : i+j])
	if !ok {
		return 0, false
	}
	if id != 1 {
		d.skip = skipReasonForEventID(id)
		return OutcomeSkip, true
	}
	// UtcTime comes before Image in Sysmon's layout; searching on from it
	// skips the System block.
	utc, at, ok := findData(elem, `UtcTime">`, i)
	if !ok || needsUnescape(utc) {
		return 0, false
	}
	image, _, ok := findData(elem, `Image">`, at)
	if !ok {
		return 0, false
	}
	if k := bytes.LastIndexByte(image, '/'); k >= 0 {
		image = image[k+1:]
	}
	if bytes.IndexByte(image, '&') >= 0 || mayBeSSH(image) {
		return 0, false
	}
	t, ok := parseUtcTime(utc)
	if !ok {
		return 0, false
	}
	ev.Time = t
	return OutcomeNoMatch, true
}
