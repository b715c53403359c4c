// Package clitest helps the command tests: an environment from a map, and
// files in a test's temporary directory.
package clitest

import (
	"os"
	"path/filepath"
	"testing"
)

// Getenv looks variables up in m.
func Getenv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// WriteFile writes content to a file called name in a temporary directory
// of t and returns its path.
func WriteFile(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
