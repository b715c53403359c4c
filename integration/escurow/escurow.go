// Package escurow is the result row of the ESCU search "Linux SSH Remote
// Services Script Execute" as the synthetic expectations store it
// (testdata/synthetic/positives.expected*.json): one type and one reader and
// writer, shared by the generator that writes the files and every test that
// compares output with them.
package escurow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
)

// TimeLayout is the layout of FirstTime and LastTime: the search's
// strftime(firstTime, "%Y-%m-%dT%H:%M:%S"), in UTC.
const TimeLayout = "2006-01-02T15:04:05"

// Row is one result: the search's by-clause, its count and time span. The
// JSON names are the search's field names, which the risk records keep.
type Row struct {
	Dest              string `json:"dest"`
	User              string `json:"user"`
	ParentProcessName string `json:"parent_process_name"`
	ProcessName       string `json:"process_name"`
	Process           string `json:"process"`
	ProcessID         string `json:"process_id"`
	ParentProcessID   string `json:"parent_process_id"`
	Count             int64  `json:"count"`
	FirstTime         string `json:"firstTime"`
	LastTime          string `json:"lastTime"`
}

// Load reads an expectation file, sorted as Sort sorts.
func Load(path string) ([]Row, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rows []Row
	if err := json.Unmarshal(b, &rows); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	Sort(rows)
	return rows, nil
}

// Sort orders rows by dest, user, process, process id and first time, so
// that two sets of rows compare with slices.Equal.
func Sort(rows []Row) { slices.SortFunc(rows, compare) }

func compare(a, b Row) int { return strings.Compare(a.sortKey(), b.sortKey()) }

func (r Row) sortKey() string {
	return strings.Join([]string{r.Dest, r.User, r.Process, r.ProcessID, r.FirstTime}, "|")
}

// Write stores rows as an expectation file, in the order given: indented
// JSON, without HTML escaping, so that command lines read as they are.
func Write(path string, rows []Row) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rows); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
