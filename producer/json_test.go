package producer

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"testing"

	"github.com/sshlateral/sshlateral/processor"
)

// jsonKeys returns the top-level keys of a JSON object in document order.
func jsonKeys(t *testing.T, doc []byte) []string {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(doc))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %v %v", tok, err)
	}
	var keys []string
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("key: %v", err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			t.Fatalf("value of %v: %v", tok, err)
		}
	}
	return keys
}

func TestJSON(t *testing.T) {
	tests := []struct {
		name        string
		result      processor.Result
		optionalSet bool // parent_process, process_path, parent_process_path, original_file_name
	}{
		{name: "optional fields set", result: fullResult(), optionalSet: true},
		{name: "optional fields null", result: sparseResult(), optionalSet: false},
	}
	dec := newTestDecoder(t)
	enc := newTestEncoder(t, WireConfluent, 2)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := enc.Records([]processor.Result{tc.result}, nil)
			if err != nil {
				t.Fatalf("Records: %v", err)
			}
			for i, rec := range recs {
				native, err := dec.Decode(rec.Value)
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				doc, err := JSON(native)
				if err != nil {
					t.Fatalf("JSON: %v", err)
				}
				if bytes.ContainsRune(doc, '\n') {
					t.Errorf("JSON spans lines: %s", doc)
				}
				if got, want := jsonKeys(t, doc), schemaFieldNames(t); !reflect.DeepEqual(got, want) {
					t.Errorf("key order\n got %v\nwant %v", got, want)
				}
				// Natives from RiskRecords and from the wire render the same.
				direct, err := JSON(RiskRecords(tc.result)[i])
				if err != nil {
					t.Fatalf("JSON(RiskRecords): %v", err)
				}
				if !bytes.Equal(doc, direct) {
					t.Errorf("wire and native JSON differ\nwire   %s\nnative %s", doc, direct)
				}

				var m map[string]any
				d := json.NewDecoder(bytes.NewReader(doc))
				d.UseNumber()
				if err := d.Decode(&m); err != nil {
					t.Fatalf("JSON output does not parse: %v\n%s", err, doc)
				}
				r := tc.result
				checks := map[string]any{
					"first_seen":       json.Number(itoa(r.FirstSeen.UnixMilli())),
					"last_seen":        json.Number(itoa(r.LastSeen.UnixMilli())),
					"window_start":     json.Number(itoa(r.WindowStart.UnixMilli())),
					"window_end":       json.Number(itoa(r.WindowEnd.UnixMilli())),
					"emission":         r.Emission.String(),
					"risk_object_type": []string{"system", "user"}[i],
					"count":            json.Number(itoa(r.Count)),
					"risk_score":       json.Number("56"),
					"process":          r.Key.Process, // & < > stay unescaped and round-trip
				}
				optional := map[string]string{
					"parent_process": r.ParentProcess, "process_path": r.ProcessPath,
					"parent_process_path": r.ParentProcessPath, "original_file_name": r.OriginalFileName,
				}
				for name, v := range optional {
					if tc.optionalSet {
						checks[name] = v
					} else {
						checks[name] = nil
					}
				}
				for name, want := range checks {
					if !reflect.DeepEqual(m[name], want) {
						t.Errorf("%s: got %#v, want %#v", name, m[name], want)
					}
				}
				ann, _ := m["annotations"].(map[string]any)
				if ann["type"] != "TTP" || !reflect.DeepEqual(ann["cis20"], []any{"CIS 3", "CIS 5", "CIS 16"}) {
					t.Errorf("annotations %v", ann)
				}
			}
		})
	}
}

func TestJSONHTMLCharactersUnescaped(t *testing.T) {
	doc, err := JSON(RiskRecords(fullResult())[0])
	if err != nil {
		t.Fatalf("JSON: %v", err)
	}
	if !bytes.Contains(doc, []byte(`&& echo <ok>`)) {
		t.Errorf("command line escaped: %s", doc)
	}
}

func TestJSONErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(map[string]any)
	}{
		{name: "missing field", mutate: func(m map[string]any) { delete(m, "dest") }},
		{name: "wrong string type", mutate: func(m map[string]any) { m["dest"] = 5 }},
		{name: "wrong union", mutate: func(m map[string]any) { m["process_path"] = map[string]any{"long": int64(1)} }},
		{name: "wrong timestamp", mutate: func(m map[string]any) { m["first_seen"] = "yesterday" }},
		{name: "wrong array item", mutate: func(m map[string]any) {
			m["annotations"].(map[string]any)["nist"] = []any{1}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := RiskRecords(fullResult())[0]
			tc.mutate(m)
			if _, err := JSON(m); err == nil {
				t.Errorf("JSON accepted an invalid record")
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "ssh -oBatchMode=yes h", "\"\\\n\r\t\b\f\x00\x1f\x7f", "<&>", "\u2028\u2029", "\xff\xe2\x80", "é€𝄞"} {
		f.Add(s)
	}
	var buf bytes.Buffer
	ref := json.NewEncoder(&buf)
	ref.SetEscapeHTML(false)
	f.Fuzz(func(t *testing.T, s string) {
		buf.Reset()
		if err := ref.Encode(s); err != nil {
			t.Fatal(err)
		}
		want := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendJSONString(%q) = %s, encoding/json %s", s, got, want)
		}
	})
}
