package decode

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/sshlateral/sshlateral/processor"
)

// The sample of every format in docs/formats.md decodes, with its format
// and in auto mode, to the same matching event.
func TestDocSamples(t *testing.T) {
	b, err := os.ReadFile("../../docs/formats.md")
	if err != nil {
		t.Fatal(err)
	}
	want := processor.Event{Time: time.Date(2026, 11, 2, 10, 0, 0, 100e6, time.UTC), Dest: "web-01", User: "root",
		Process: "ssh -oBatchMode=yes 10.0.0.1 http://x/a.sh", ProcessName: "ssh", ProcessPath: "/usr/bin/ssh",
		ProcessID: "4242", ParentProcessID: "4000"}
	seen := 0
	for _, part := range bytes.Split(b, []byte("<!-- sample: "))[1:] {
		name, rest, _ := bytes.Cut(part, []byte(" -->\n```\n"))
		body, _, _ := bytes.Cut(rest, []byte("```"))
		format, err := ParseFormat(string(name))
		if err != nil {
			t.Fatal(err)
		}
		seen++
		for _, f := range []Format{format, FormatAuto} {
			t.Run(string(name)+"/"+f.String(), func(t *testing.T) {
				got, _ := decodeAll(t, f, bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n")), false)
				if len(got) != 1 || !processor.Match(processor.MatchESCU, &got[0]) {
					t.Fatalf("events %+v, want one match", got)
				}
				if diff := diffEvents(got[0], want); diff != "" {
					t.Fatal(diff)
				}
			})
		}
	}
	if seen != int(numFormats)-1 {
		t.Fatalf("%d samples, want one per format but auto", seen)
	}
}
