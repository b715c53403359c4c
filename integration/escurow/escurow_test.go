package escurow

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The expectation files load, and Write reproduces them byte for byte.
func TestExpectationFilesRoundTrip(t *testing.T) {
	for _, name := range []string{"positives.expected.json", "positives.expected_robust.json"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("..", "..", "testdata", "synthetic", name)
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) == 0 {
				t.Fatal("no rows")
			}
			if !slices.IsSortedFunc(rows, compare) {
				t.Error("Load did not sort")
			}
			// The file is in the generator's order; write that order back.
			var unsorted []Row
			if err := json.Unmarshal(raw, &unsorted); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), name)
			if err := Write(out, unsorted); err != nil {
				t.Fatal(err)
			}
			again, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if string(again) != string(raw) {
				t.Error("Write does not reproduce the file")
			}
		})
	}
}
