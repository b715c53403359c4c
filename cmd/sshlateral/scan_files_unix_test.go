//go:build unix

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// scan opens its input files one at a time: many more files than the
// process may hold open at once still scan (they used to stay open until
// the end, failing with "too many open files").
func TestScanManyFilesUnderLowFileLimit(t *testing.T) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	const files = 300
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	args := []string{"scan"}
	for i := range files {
		path := filepath.Join(dir, fmt.Sprintf("%03d.json", i))
		if err := os.WriteFile(path, []byte(matchingCIM(i, t0.Add(time.Duration(i)*time.Second))+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, path)
	}
	low := old
	low.Cur = 100
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skip(err)
	}
	code, stdout, stderr := runCLI(t, "", args...)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got := strings.Count(stdout, "\n"); got != 2*files {
		t.Errorf("%d risk records, want %d", got, 2*files)
	}
}
