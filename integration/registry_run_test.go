package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/processor"
	"github.com/sshlateral/sshlateral/schemas"
)

// TestRunSchemaRegistry: `sshlateral run --schema-registry` against Apicurio
// Registry. With the registry down at start the process waits, not ready,
// writing nothing; once the registry is up it registers the schema and its
// records carry the id the registry assigned, with every expected row. A
// run whose subject holds a schema ours is incompatible with stops at start
// with the registry's message.
func TestRunSchemaRegistry(t *testing.T) {
	if !integrationEnabled() {
		t.Skipf("real schema registry disabled: set %s=1 (and %s, see integration/registryimage/build.sh) to run it", envIntegration, envRegistryImage)
	}
	bin := buildBinary(t)
	python := requireTool(t, "python3")
	requirePythonRegistry(t, python)
	forEachBroker(t, func(t *testing.T, b testBroker) {
		port := freeLoopbackPorts(t, 1)[0]
		url := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + ccompatPath
		tp := setupTopics(t, b, 2)
		g := generateStream(21, 600, 6, 10, streamStart, 2*time.Second)
		pr := startProcess(t, bin, b, tp, "--emit", "final", "--schema-registry", url, "--schema-registry-timeout", "2s")
		produceLines(t, b, tp.input, g.lines())
		produceClosers(t, b, tp, g)

		time.Sleep(3 * time.Second)
		select {
		case <-pr.done:
			t.Fatal("run exited while the registry was down; it must wait for it")
		default:
		}
		ops := "http://" + processHTTPAddr(t, pr)
		if code, body := httpGet(t, ops+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "registering the risk-record schema") {
			t.Fatalf("/readyz with the registry down: %d %q, want 503 saying it waits for the schema registry", code, body)
		}
		if n := len(readRiskRecords(t, b, tp.output, 0, time.Second, 2*time.Second)); n != 0 {
			t.Fatalf("%d risk records written before the schema was registered", n)
		}

		startRegistryOn(t, port)
		rows := g.rows()
		requireFinal(t, b, tp.output, rows, 2*time.Second, 90*time.Second, false, "with the schema registry")
		if code, body := httpGet(t, ops+"/readyz"); code != http.StatusOK {
			t.Fatalf("/readyz with the registry up: %d %q, want 200", code, body)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		want, err := newRegistryClient(t, url, nil).RegisterRiskRecord(ctx, tp.output)
		if err != nil {
			t.Fatalf("look up the registered schema: %v", err)
		}
		cl := newClient(t, b, kgo.ConsumeTopics(tp.output), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		fetches := cl.PollFetches(ctx)
		n := 0
		fetches.EachRecord(func(r *kgo.Record) {
			n++
			if len(r.Value) < 5 || r.Value[0] != 0 || int32(binary.BigEndian.Uint32(r.Value[1:5])) != want.ID {
				t.Errorf("record at offset %d does not carry schema id %d: % x", r.Offset, want.ID, r.Value[:min(5, len(r.Value))])
			}
		})
		if n == 0 {
			t.Fatal("no risk record read back")
		}
		t.Logf("%s: %d records carry the registry's id %d (subject %s version %d)", b.Name(), n, want.ID, want.Subject, want.Version)
		// An independent registry-aware reader of what run wrote.
		for i, r := range readThroughRegistry(t, python, b, tp.output, url, n) {
			if r.SchemaID != want.ID || r.Record["alert_id"] == nil || r.Record["risk_score"] != float64(processor.RiskScore) {
				t.Fatalf("python record %d (%s): schema id %d (want %d), %v", i, r.Position, r.SchemaID, want.ID, r.Record)
			}
		}

		// A subject whose latest schema lacks a required field of ours:
		// BACKWARD refuses ours, and run must not start.
		other := tp
		other.output = "sshlateral.risk.refused"
		createTopic(t, b, other.output, 1, nil)
		if _, err := newRegistryClient(t, url, nil).RegisterSchema(ctx, other.output, "io.sshlateral.v1.RiskRecord",
			riskRecordWithout(t, "count")); err != nil {
			t.Fatalf("register the older schema: %v", err)
		}
		refused := startProcess(t, bin, b, other, "--group", "sshlateral-refused", "--schema-registry", url)
		select {
		case <-refused.done:
		case <-time.After(60 * time.Second):
			t.Fatal("run kept running with a schema the registry refused")
		}
		log, _ := os.ReadFile(refused.log.Name())
		// Apicurio's own words, passed on: not only ours.
		if !bytes.Contains(log, []byte("Incompatible artifact")) || refused.cmd.ProcessState.ExitCode() == 0 {
			t.Fatalf("run exited %d without the registry's refusal:\n%s", refused.cmd.ProcessState.ExitCode(), tail(string(log), 2000))
		}
		t.Logf("%s: refused at start: %s", b.Name(), strings.TrimSpace(tail(string(log), 300)))
	})
}

// riskRecordWithout returns the RiskRecord schema without one field.
func riskRecordWithout(t *testing.T, name string) string {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(schemas.RiskRecordSchema), &doc); err != nil {
		t.Fatal(err)
	}
	var kept []any
	for _, f := range doc["fields"].([]any) {
		if f.(map[string]any)["name"] != name {
			kept = append(kept, f)
		}
	}
	doc["fields"] = kept
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// processHTTPAddr is the operations endpoint a `run` process logged.
func processHTTPAddr(t *testing.T, pr *process) string {
	t.Helper()
	re := regexp.MustCompile(`msg="operations endpoint listening" addr=(\S+)`)
	var addr string
	waitFor(t, 30*time.Second, "the operations endpoint in the log", func() bool {
		b, _ := os.ReadFile(pr.log.Name())
		if m := re.FindSubmatch(b); m != nil {
			addr = string(m[1])
			return true
		}
		return false
	})
	return addr
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
