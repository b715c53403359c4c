package decode

import (
	"bytes"
	"encoding/json"
	"testing"
)

// refScan is the encoding/json reference of the JSON scanner: it reads the
// record key by key, enters the objects on the way to a known path, and
// keeps the last raw value of every known path.
func refScan(rec []byte) (map[int][]byte, bool) {
	if !json.Valid(rec) {
		return nil, false
	}
	out := map[int][]byte{}
	var walk func(raw []byte, prefix string) bool
	walk = func(raw []byte, prefix string) bool {
		dec := json.NewDecoder(bytes.NewReader(raw))
		if t, err := dec.Token(); err != nil || t != json.Delim('{') {
			return false
		}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return false
			}
			path := kt.(string)
			if prefix != "" {
				path = prefix + "." + path
			}
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return false
			}
			info, known := jsonPaths[path]
			if known && info.slot >= 0 {
				out[int(info.slot)] = v
			}
			if known && info.descend && v[0] == '{' && !walk(v, path) {
				return false
			}
		}
		return true
	}
	return out, walk(rec, "")
}

// FuzzJSONScanDifferential holds the scanner to encoding/json: the same
// records are valid, and every known path has the same last value, nested,
// dotted-flat or mixed.
func FuzzJSONScanDifferential(f *testing.F) {
	seedLines(f, jsonSeedGlobs...)
	for _, s := range shapeSeeds {
		f.Add([]byte(s))
	}
	for _, s := range cimEdgeSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"process":{"name":"a","parent":{"pid":1}},"process.name":"b","process.parent.pid":null,"process":{"pid":2}}`))
	f.Fuzz(func(t *testing.T, rec []byte) {
		var d Decoder
		err := d.scanJSON(rec)
		want, ok := refScan(rec)
		// encoding/json accepts leading and trailing blanks the scanner
		// is given trimmed; and a top-level non-object is the scanner's
		// error only.
		if !ok {
			if err == nil {
				t.Fatalf("scanner accepted what encoding/json rejects")
			}
			return
		}
		if err != nil {
			t.Fatalf("scanner: %v; encoding/json accepts", err)
		}
		for s := 0; s < numSlots; s++ {
			if s == sCustom {
				continue
			}
			got, set := []byte(nil), d.slots[s].set
			if set {
				got = d.raw(s)
			}
			w, wset := want[s]
			if set != wset || !bytes.Equal(got, w) {
				t.Fatalf("slot %d: scanner %q (%v), encoding/json %q (%v)", s, got, set, w, wset)
			}
		}
	})
}

// FuzzPlainRun holds the word-at-a-time scan to the byte-by-byte one.
func FuzzPlainRun(f *testing.F) {
	f.Add([]byte(`abcdefghijklmnop"q`))
	f.Add([]byte("0123456789\x1f"))
	f.Add([]byte("01234567\\89"))
	f.Add([]byte("ABCDEFG\x80HIJ"))
	f.Add([]byte(" !#$%&'()*+,-./[]^_`{|}~\x7f\x20\x21"))
	f.Fuzz(func(t *testing.T, s []byte) {
		want := 0
		for want < len(s) && strClass[s[want]] == 0 {
			want++
		}
		if got := plainRun(s); got != want {
			t.Fatalf("plainRun(%q) = %d, want %d", s, got, want)
		}
	})
}
