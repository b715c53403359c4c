package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
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
	_, file, _, _ := runtime.Caller(0)
	verifier := filepath.Join(filepath.Dir(file), "verify", "decode_avro.py")

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
			cmd := exec.Command(python, verifier, "--kcat-file", dump, "--wire", "plain", "--lib", lib)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s verifier: %v\n%s", lib, err, stderr.String())
			}
			decoded := 0
			ids := map[string]int{}
			theirs := map[string]int{}
			sc := bufio.NewScanner(&stdout)
			sc.Buffer(make([]byte, 1<<20), 16<<20)
			for sc.Scan() {
				var rec map[string]any
				if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
					t.Fatalf("%s verifier printed a non-JSON line: %v: %s", lib, err, sc.Text())
				}
				decoded++
				theirs[sc.Text()]++
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
