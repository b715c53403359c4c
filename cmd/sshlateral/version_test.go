package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestVersionDefault(t *testing.T) {
	code, stdout, stderr := runCLI(t, "", "version")
	if code != 0 || stdout != "sshlateral dev (commit dev, "+runtime.Version()+")\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// The release build stamps version and commit with -ldflags -X, as the
// Dockerfile documents.
func TestVersionStampedAtBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "sshlateral")
	build := exec.Command("go", "build", "-o", bin, "-ldflags", "-X main.version=v1.2.3 -X main.commit=0123abc", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("version: %v\n%s", err, out)
	}
	if want := "sshlateral v1.2.3 (commit 0123abc, "; !strings.HasPrefix(string(out), want) {
		t.Fatalf("version printed %q, want it to start with %q", out, want)
	}
}
