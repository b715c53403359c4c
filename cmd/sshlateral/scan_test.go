package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/linkedin/goavro/v2"
	"github.com/sshlateral/sshlateral/integration/escurow"
	"github.com/sshlateral/sshlateral/processor"
)

// runCLI runs the command line in-process and returns stdout and stderr.
func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, func(string) string { return "" }, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// scanRows runs scan and returns the system risk records as rows (one per
// ESCU result), checking that every result also has its user record.
func scanRows(t *testing.T, args ...string) []escurow.Row {
	t.Helper()
	code, stdout, stderr := runCLI(t, "", append([]string{"scan"}, args...)...)
	if code != 0 {
		t.Fatalf("scan %v: exit %d\n%s", args, code, stderr)
	}
	if !strings.Contains(stderr, "decode errors 0") {
		t.Errorf("scan %v reported decode errors:\n%s", args, stderr)
	}
	var system, user []escurow.Row
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var rec struct {
			escurow.Row
			RiskObjectType string `json:"risk_object_type"`
			RiskObject     string `json:"risk_object"`
			RiskScore      int    `json:"risk_score"`
			Emission       string `json:"emission"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("scan printed a non-JSON line: %v: %s", err, sc.Text())
		}
		if rec.RiskScore != 56 || rec.Emission != "FINAL" {
			t.Errorf("record risk_score=%d emission=%s, want 56 FINAL", rec.RiskScore, rec.Emission)
		}
		switch rec.RiskObjectType {
		case "system":
			if rec.RiskObject != rec.Dest {
				t.Errorf("system risk object %q, want dest %q", rec.RiskObject, rec.Dest)
			}
			system = append(system, rec.Row)
		case "user":
			if rec.RiskObject != rec.User {
				t.Errorf("user risk object %q, want user %q", rec.RiskObject, rec.User)
			}
			user = append(user, rec.Row)
		default:
			t.Errorf("risk_object_type %q", rec.RiskObjectType)
		}
	}
	escurow.Sort(system)
	escurow.Sort(user)
	if !slices.Equal(system, user) {
		t.Errorf("system and user records describe different results")
	}
	return system
}

func loadExpected(t *testing.T, path string) []escurow.Row {
	t.Helper()
	rows, err := escurow.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

const testdataDir = "../../testdata"

// TestScanRealTelemetryHasNoDetections: real public Sysmon for Linux files
// (none holds the behaviour) give zero detections and zero decode errors,
// with the prefilter and without it, LF and CRLF.
func TestScanRealTelemetryHasNoDetections(t *testing.T) {
	var files []string
	for _, dir := range []string{"elastic_sysmon_linux", "sigma_regression", "zircolite_sysmon_linux"} {
		found, err := filepath.Glob(filepath.Join(testdataDir, "real", dir, "*.log"))
		if err != nil || len(found) == 0 {
			t.Fatalf("real Sysmon files in %s: %v %v", dir, found, err)
		}
		files = append(files, found...)
	}
	for _, f := range files {
		for _, mode := range []string{"escu", "robust"} {
			for _, pre := range []bool{true, false} {
				name := filepath.Base(filepath.Dir(f)) + "/" + filepath.Base(f) + "/" + mode
				if !pre {
					name += "/no-prefilter"
				}
				t.Run(name, func(t *testing.T) {
					args := []string{"--match", mode, f}
					if !pre {
						args = append([]string{"--no-prefilter"}, args...)
					}
					if rows := scanRows(t, args...); len(rows) != 0 {
						t.Errorf("want no detections, got %d: %+v", len(rows), rows)
					}
				})
			}
		}
	}
}

// TestScanAuditd: the real auditd logs are an input format now: every
// line decodes (assembled into events at EOE, or at the end of the file),
// nothing is reported as an error, and none of them is a detection.
func TestScanAuditd(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(testdataDir, "real", "go_libaudit", "*.log"))
	if len(files) == 0 {
		t.Fatal("no auditd test data")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			code, stdout, stderr := runCLI(t, "", "scan", "--input-format", "auditd", f)
			if code != 0 || stdout != "" {
				t.Fatalf("exit %d, stdout %q; want exit 0 and no detection\n%s", code, stdout, stderr)
			}
			if !strings.Contains(stderr, "decode errors 0") {
				t.Fatalf("summary reports decode errors: %s", stderr)
			}
			if !strings.Contains(stderr, "scan: auditd events completed at EOE") {
				t.Fatalf("summary lacks the auditd completions: %s", stderr)
			}
		})
	}
}

// TestScanSyntheticPositivesMatchESCU pins the scan output to the labelled
// expectation, for the Sysmon and the CIM rendering of the same events.
func TestScanSyntheticPositivesMatchESCU(t *testing.T) {
	cases := []struct {
		name, match, input, expected string
		extra                        []string
	}{
		{"sysmon escu", "escu", "positives.log", "positives.expected.json", nil},
		{"sysmon escu without prefilter", "escu", "positives.log", "positives.expected.json", []string{"--no-prefilter"}},
		{"sysmon robust", "robust", "positives.log", "positives.expected_robust.json", nil},
		{"cim escu", "escu", "positives_cim.json", "positives.expected.json", nil},
		{"cim robust", "robust", "positives_cim.json", "positives.expected_robust.json", nil},
		{"envelope auto", "escu", "positives_envelope.jsonl", "positives.expected.json", nil},
		{"envelope", "escu", "positives_envelope.jsonl", "positives.expected.json", []string{"--input-format", "envelope"}},
		{"hec auto", "escu", "positives_hec.jsonl", "positives.expected.json", nil},
		{"hec", "robust", "positives_hec.jsonl", "positives.expected_robust.json", []string{"--input-format", "hec"}},
		{"ecs auto", "escu", "positives_ecs.jsonl", "positives.expected.json", nil},
		{"ecs", "robust", "positives_ecs.jsonl", "positives.expected_robust.json", []string{"--input-format", "ecs"}},
		{"ocsf auto", "escu", "positives_ocsf.jsonl", "positives.expected.json", nil},
		{"ocsf", "robust", "positives_ocsf.jsonl", "positives.expected_robust.json", []string{"--input-format", "ocsf"}},
		{"auditd auto", "escu", "positives_auditd.log", "positives.expected.json", nil},
		{"auditd", "robust", "positives_auditd.log", "positives.expected_robust.json", []string{"--input-format", "auditd"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(testdataDir, "synthetic")
			args := append(append([]string{}, tc.extra...), "--match", tc.match, filepath.Join(dir, tc.input))
			got := scanRows(t, args...)
			want := loadExpected(t, filepath.Join(dir, tc.expected))
			if strings.Contains(tc.input, "auditd") {
				// auditd names no parent process: tstats shows null.
				for i := range want {
					want[i].ParentProcessName = processor.Null
				}
			}
			if !slices.Equal(got, want) {
				gj, _ := json.MarshalIndent(got, "", " ")
				t.Fatalf("scan rows differ from %s: got %d rows, want %d\n%s", tc.expected, len(got), len(want), gj)
			}
		})
	}
}

// TestScanAvroOutput writes an object container file and reads it back with
// goavro's own reader.
func TestScanAvroOutput(t *testing.T) {
	out := filepath.Join(t.TempDir(), "risk.avro")
	in := filepath.Join(testdataDir, "synthetic", "positives.log")
	if code, _, stderr := runCLI(t, "", "scan", "--output", "avro", "--out", out, in); code != 0 {
		t.Fatalf("scan: exit %d: %s", code, stderr)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := goavro.NewOCFReader(bufio.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for r.Scan() {
		if _, err := r.Read(); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if want := 2 * len(loadExpected(t, filepath.Join(testdataDir, "synthetic", "positives.expected.json"))); n != want {
		t.Errorf("avro file holds %d records, want %d", n, want)
	}
}

// TestScanStdinAndErrors: "-" reads stdin; an undecodable line is reported
// with its position and does not stop the scan.
func TestScanStdinAndErrors(t *testing.T) {
	in, err := os.ReadFile(filepath.Join(testdataDir, "synthetic", "positives.log"))
	if err != nil {
		t.Fatal(err)
	}
	input := "<Event><System>broken\n" + string(in)
	code, stdout, stderr := runCLI(t, input, "scan", "-")
	if code != exitInputErrors {
		t.Fatalf("exit %d, want %d (a line failed to decode): %s", code, exitInputErrors, stderr)
	}
	if !strings.Contains(stderr, "-:1: ") || !strings.Contains(stderr, "decode errors 1") {
		t.Errorf("the broken first line is not reported: %s", stderr)
	}
	if strings.Count(stdout, "\n") != 2*len(loadExpected(t, filepath.Join(testdataDir, "synthetic", "positives.expected.json"))) {
		t.Errorf("the scan did not go on after the bad line")
	}
}

// TestScanAllowlist: the filter macro suppresses after aggregation; the
// suppressed rows disappear from the output and are counted by rule.
func TestScanAllowlist(t *testing.T) {
	in := filepath.Join(testdataDir, "synthetic", "positives.log")
	all := scanRows(t, in)
	if len(all) == 0 {
		t.Fatal("no rows to suppress")
	}
	dest := all[0].Dest
	var others int
	for _, r := range all {
		if r.Dest != dest {
			others++
		}
	}
	filter := filepath.Join(t.TempDir(), "allow.yaml")
	if err := os.WriteFile(filter, []byte("rules:\n  - name: known-admin-host\n    dest: \""+dest+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "", "scan", "--filter", filter, in)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got := strings.Count(stdout, "\n"); got != 2*others {
		t.Errorf("with the allowlist: %d risk records, want %d", got, 2*others)
	}
	if strings.Contains(stdout, `"dest":"`+dest+`"`) {
		t.Errorf("suppressed dest %s still in the output", dest)
	}
	if !strings.Contains(stderr, "known-admin-host:") {
		t.Errorf("suppression not counted by rule: %s", stderr)
	}
}

func TestExitCodes(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want int
	}{
		{"no command", nil, 2},
		{"unknown command", []string{"nope"}, 2},
		{"help of a command", []string{"scan", "-h"}, 0},
		{"unknown flag", []string{"scan", "--bogus"}, 2},
		{"invalid value", []string{"scan", "--match", "fuzzy", "x.log"}, 2},
		{"invalid config value", []string{"scan", "--window", "0s", "x.log"}, 1},
		{"version", []string{"version"}, 0},
		{"run without brokers", []string{"run", "--http-addr", ""}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, stderr := runCLI(t, "", tc.args...); code != tc.want {
				t.Errorf("exit %d, want %d\n%s", code, tc.want, stderr)
			}
		})
	}
}
