package integration

import (
	"bytes"

	"github.com/sshlateral/sshlateral/consumer/decode"
	"github.com/sshlateral/sshlateral/integration/escurow"

	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/consumer"
	"github.com/sshlateral/sshlateral/processor"
	"github.com/sshlateral/sshlateral/producer"
)

// topics names one scenario's topics; each scenario gets its own broker.
type topics struct {
	input, output, dlq, changelog string
	partitions                    int32
}

func setupTopics(t *testing.T, b testBroker, partitions int32) topics {
	t.Helper()
	tp := topics{input: "endpoint.processes", output: "sshlateral.risk", dlq: "sshlateral.dlq",
		changelog: "sshlateral.state-changelog", partitions: partitions}
	compact := "compact"
	createTopic(t, b, tp.input, partitions, nil)
	createTopic(t, b, tp.output, 3, nil)
	createTopic(t, b, tp.dlq, 1, nil)
	createTopic(t, b, tp.changelog, partitions, map[string]*string{"cleanup.policy": &compact})
	return tp
}

// pipelineConfig is the config every in-process instance of a scenario uses.
func pipelineConfig(b testBroker, tp topics, emit processor.EmitMode) consumer.Config {
	cfg := consumer.DefaultConfig()
	cfg.Brokers = b.Seeds()
	cfg.Group = "sshlateral-it"
	cfg.InputTopic, cfg.OutputTopic, cfg.DLQTopic, cfg.ChangelogTopic = tp.input, tp.output, tp.dlq, tp.changelog
	cfg.Processor.Emit = emit
	// Windows close by event time (closer records), not by wall clock: the
	// data is historical, so an idle close would end windows early.
	cfg.Processor.IdleClose = 0
	cfg.TickInterval = 100 * time.Millisecond
	cfg.SessionTimeout = 10 * time.Second
	// A member learns of a rebalance within a heartbeat; kfake expires a
	// member parked in JoinGroup on its own session timer (Kafka does
	// not), so the sooner the survivors join, the wider their margin.
	cfg.HeartbeatInterval = time.Second
	cfg.RebalanceTimeout = testRebalanceTimeout
	cfg.TransactionTimeout = 5 * time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return cfg
}

// victimSessionTimeout is the session timeout of a member a test kills,
// shorter than the survivors' (10s). A rebalance that starts while the
// victim is alive waits for it to rejoin until its session expires; the
// survivors wait meanwhile, parked in JoinGroup. kfake (unlike Kafka,
// which never expires a member awaiting a join) removes a parked member
// when its own session timer fires, without answering its JoinGroup,
// which then hangs until the request times out (rebalance timeout plus
// 10s). With equal timeouts that is a race the survivors lose about half
// the time; with the victim's shorter they never run it.
const victimSessionTimeout = "6s"

// testRebalanceTimeout bounds a rebalance below the survivors' session
// timeout (10s, less a heartbeat). kfake keeps a member whose JoinGroup
// answer could not be written (its process was killed mid-rebalance)
// with no session timer, so the rebalance waits the whole rebalance
// timeout for it; past a survivor's session timeout kfake would drop the
// parked survivor too (see victimSessionTimeout). Kafka expires such a
// member after its session timeout.
const testRebalanceTimeout = 8 * time.Second

// instance is one in-process pipeline member.
type instance struct {
	p      *consumer.Pipeline
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

func startInstance(t *testing.T, cfg consumer.Config) *instance {
	t.Helper()
	enc, err := producer.NewEncoder(producer.EncoderConfig{Topic: cfg.OutputTopic})
	if err != nil {
		t.Fatalf("encoder: %v", err)
	}
	p, err := consumer.New(cfg, enc)
	if err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{p: p, cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- p.Run(ctx) }()
	t.Cleanup(func() { in.stop(t) })
	return in
}

// stop shuts the instance down gracefully and fails the test on a pipeline error.
func (in *instance) stop(t *testing.T) {
	t.Helper()
	in.halt(t, false)
}

// halt stops the instance once; with acceptUnknown an exactly-once stop of
// unknown outcome (ErrUnknownOutcome) is logged, not an error.
func (in *instance) halt(t *testing.T, acceptUnknown bool) {
	t.Helper()
	in.once.Do(func() {
		in.cancel()
		select {
		case in.err = <-in.done:
		case <-time.After(60 * time.Second):
			in.err = errors.New("instance did not stop within 60s")
		}
		if acceptUnknown && errors.Is(in.err, consumer.ErrUnknownOutcome) {
			t.Logf("removed instance: %v", in.err)
			in.err = nil
		}
	})
	if in.err != nil && !errors.Is(in.err, context.Canceled) {
		t.Errorf("pipeline instance: %v", in.err)
	}
}

// produceLines produces lines to topic keyed by host, and waits for acks.
// opts are added to the producing client's options.
func produceLines(t *testing.T, b testBroker, topic string, lines [][]byte, opts ...kgo.Opt) {
	t.Helper()
	dec, err := decode.NewDecoder(decode.FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	cl := newClient(t, b, append([]kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5 * time.Millisecond)}, opts...)...)
	recs := make([]*kgo.Record, 0, len(lines))
	var ev processor.Event
	for _, l := range lines {
		var key []byte
		if out, err := dec.DecodeFull(l, &ev); err == nil && out == decode.OutcomeEvent {
			key = []byte(ev.Dest)
		} else if node, ok := auditNode(l); ok {
			// An auditd line is a part of an event: all parts of a host
			// go to one partition, where they are assembled.
			key = node
		}
		recs = append(recs, &kgo.Record{Key: key, Value: l})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce %d records to %s: %v", len(recs), topic, err)
	}
}

// produceClosers sends, to every partition of topic, an event three hours
// after the stream so each partition's watermark passes every window.
func produceClosers(t *testing.T, b testBroker, tp topics, g generatedStream) {
	t.Helper()
	cl := newClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for p := int32(0); p < tp.partitions; p++ {
		rec := &kgo.Record{Topic: tp.input, Partition: p, Value: g.closer(fmt.Sprintf("closer-%d", p))}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatalf("produce closer to %s partition %d: %v", tp.input, p, err)
		}
	}
}

// riskRecord is the part of a decoded risk record the scenarios compare.
type riskRecord struct {
	AlertID, RiskObjectType, Emission string
	Revision                          int32
	expectedRow
}

func (r riskRecord) row() expectedRow { return r.expectedRow }

func (r riskRecord) identity() string {
	return fmt.Sprintf("%s/%s/%d/%s", r.AlertID, r.RiskObjectType, r.Revision, r.Emission)
}

func toRiskRecord(t *testing.T, m map[string]any) riskRecord {
	t.Helper()
	str := func(k string) string {
		switch v := m[k].(type) {
		case string:
			return v
		case map[string]any: // an Avro union as goavro decodes it
			for _, x := range v {
				if s, ok := x.(string); ok {
					return s
				}
			}
		}
		return fmt.Sprint(m[k])
	}
	r := riskRecord{AlertID: str("alert_id"), RiskObjectType: str("risk_object_type"), Emission: str("emission"),
		expectedRow: expectedRow{Row: escurow.Row{Dest: str("dest"), User: str("user"), ParentProcessName: str("parent_process_name"),
			ProcessName: str("process_name"), Process: str("process"), ProcessID: str("process_id"),
			ParentProcessID: str("parent_process_id"), FirstTime: str("firstTime"), LastTime: str("lastTime")}}}
	if v, ok := m["revision"].(int32); ok {
		r.Revision = v
	}
	if v, ok := m["count"].(int64); ok {
		r.Count = v
	}
	if v, ok := m["window_start"].(time.Time); ok {
		r.WindowStart = v.UTC()
	}
	return r
}

// readRiskRecords reads topic from the start (read_committed) until at least
// want records arrived and then quiet passed without more, or timeout.
func readRiskRecords(t *testing.T, b testBroker, topic string, want int, quiet, timeout time.Duration) []riskRecord {
	t.Helper()
	dec, err := producer.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	cl := newClient(t, b, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(200*time.Millisecond))
	var out []riskRecord
	deadline := time.Now().Add(timeout)
	lastNew := time.Now()
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fetches := cl.PollFetches(ctx)
		cancel()
		fetches.EachRecord(func(r *kgo.Record) {
			m, err := dec.Decode(r.Value)
			if err != nil {
				t.Errorf("decode risk record at %s/%d/%d: %v", r.Topic, r.Partition, r.Offset, err)
				return
			}
			out = append(out, toRiskRecord(t, m))
			lastNew = time.Now()
		})
		if len(out) >= want && time.Since(lastNew) >= quiet {
			return out
		}
	}
	t.Logf("read %d risk records from %s before the %s timeout (wanted %d)", len(out), topic, timeout, want)
	return out
}

// outcome compares risk records with the expected FINAL rows.
type outcome struct {
	expected, found, missing, duplicates, unexpected int
	problems                                         []string
}

func (o outcome) String() string {
	return fmt.Sprintf("expected=%d found=%d missing=%d duplicates=%d unexpected=%d", o.expected, o.found, o.missing, o.duplicates, o.unexpected)
}

// compareFinal checks that every expected row is present as a FINAL record
// for both risk objects with exact count, firstTime and lastTime; that no
// record is unexpected; and counts duplicates (the same alert id, risk
// object and revision more than once: harmless downstream, but counted).
func compareFinal(recs []riskRecord, rows []expectedRow) outcome {
	o := outcome{expected: 2 * len(rows)}
	want := map[string]expectedRow{}
	for _, r := range rows {
		for _, obj := range []string{"system", "user"} {
			want[obj+"\x1e"+r.key()] = r
		}
	}
	seen := map[string]int{}
	for _, rec := range recs {
		if rec.Emission != "FINAL" {
			o.unexpected++
			o.problems = append(o.problems, "non-final record "+rec.identity())
			continue
		}
		k := rec.RiskObjectType + "\x1e" + rec.row().key()
		exp, ok := want[k]
		if !ok {
			o.unexpected++
			o.problems = append(o.problems, fmt.Sprintf("unexpected %s %+v", rec.identity(), rec.row()))
			continue
		}
		if exp.Count != rec.Count || exp.FirstTime != rec.FirstTime || exp.LastTime != rec.LastTime {
			o.unexpected++
			o.problems = append(o.problems, fmt.Sprintf("wrong aggregate for %s: got count=%d %s..%s want count=%d %s..%s",
				rec.identity(), rec.Count, rec.FirstTime, rec.LastTime, exp.Count, exp.FirstTime, exp.LastTime))
			continue
		}
		seen[k]++
	}
	for k := range want {
		switch n := seen[k]; {
		case n == 0:
			o.missing++
			if len(o.problems) < 20 {
				o.problems = append(o.problems, "missing "+strings.ReplaceAll(k, "\x1f", " | "))
			}
		default:
			o.found++
			o.duplicates += n - 1
		}
	}
	sort.Strings(o.problems)
	return o
}

// readFinal reads the output topic until the FINAL records of rows (two per
// row) arrived and quiet passed without more, or timeout, and compares them.
func readFinal(t *testing.T, b testBroker, topic string, rows []expectedRow, quiet, timeout time.Duration) outcome {
	t.Helper()
	return compareFinal(readRiskRecords(t, b, topic, 2*len(rows), quiet, timeout), rows)
}

// requireFinal is readFinal that logs the outcome as what and fails the test
// on anything missing or unexpected, and on duplicates unless allowed (an
// at-least-once crash may repeat an exact copy).
func requireFinal(t *testing.T, b testBroker, topic string, rows []expectedRow, quiet, timeout time.Duration, allowDuplicates bool, what string) outcome {
	t.Helper()
	o := readFinal(t, b, topic, rows, quiet, timeout)
	t.Logf("%s: %s: %s", b.Name(), what, o)
	bad := o.missing + o.unexpected
	if !allowDuplicates {
		bad += o.duplicates
	}
	if bad > 0 {
		t.Fatalf("%s: output differs from expectation: %s\n%v", what, o, o.problems)
	}
	return o
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// buildBinary compiles cmd/sshlateral for scenarios that need a real
// separate process to kill.
func buildBinary(t *testing.T) string {
	t.Helper()
	return buildCommand(t, "sshlateral")
}

// buildCommand compiles ./cmd/<name> into a temporary directory.
func buildCommand(t *testing.T, name string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/"+name)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/%s: %v\n%s", name, err, out)
	}
	return bin
}

// process is a pipeline running as a separate OS process.
type process struct {
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
}

func startProcess(t *testing.T, bin string, b testBroker, tp topics, extra ...string) *process {
	t.Helper()
	pr, err := launchProcess(t.TempDir(), bin, b, tp, extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pr.kill()
		if t.Failed() {
			pr.dumpLog(t)
		}
	})
	return pr
}

// launchProcess starts `sshlateral run` logging into dir; the caller kills it.
func launchProcess(dir, bin string, b testBroker, tp topics, extra ...string) (*process, error) {
	logf, err := os.CreateTemp(dir, "sshlateral-*.log")
	if err != nil {
		return nil, err
	}
	args := append([]string{"run", "--brokers", strings.Join(b.Seeds(), ","), "--group", "sshlateral-it",
		"--input-topic", tp.input, "--output-topic", tp.output, "--dlq-topic", tp.dlq, "--changelog-topic", tp.changelog,
		"--idle-close", "0", "--session-timeout", "10s", "--heartbeat-interval", "1s", "--rebalance-timeout", testRebalanceTimeout.String(), "--transaction-timeout", "5s", "--log-format", "text", "--log-level", "info", "--http-addr", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	pr := &process{cmd: cmd, log: logf, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(pr.done) }()
	return pr, nil
}

func (pr *process) dumpLog(t *testing.T) {
	t.Helper()
	if b, err := os.ReadFile(pr.log.Name()); err == nil {
		t.Logf("log of pid %d:\n%s", pr.cmd.Process.Pid, tail(string(b), 4000))
	}
}

// member is a pipeline process slot that is restarted whenever its process
// ends, as a Deployment restarts a crashed pod: after a kill -9 by the test,
// or when the pipeline exits by itself (an exactly-once transaction of
// unknown outcome makes it exit so that a new process rebuilds its state).
type member struct {
	mu       sync.Mutex
	cur      *process
	all      []*process
	removed  bool
	launch   func() (*process, error)
	selfExit *atomic.Int64 // exits the test did not cause
	killed   bool          // the current process was killed by the test
	stopped  chan struct{}
}

func startMember(t *testing.T, bin string, b testBroker, tp topics, selfExit *atomic.Int64, extra ...string) *member {
	t.Helper()
	dir := t.TempDir()
	m := &member{launch: func() (*process, error) { return launchProcess(dir, bin, b, tp, extra...) },
		selfExit: selfExit, stopped: make(chan struct{})}
	pr, err := m.launch()
	if err != nil {
		t.Fatal(err)
	}
	m.cur, m.all = pr, []*process{pr}
	go m.supervise(t)
	t.Cleanup(func() {
		m.remove()
		<-m.stopped
		if t.Failed() {
			for _, pr := range m.all {
				pr.dumpLog(t)
			}
		}
	})
	return m
}

func (m *member) supervise(t *testing.T) {
	defer close(m.stopped)
	for {
		m.mu.Lock()
		cur := m.cur
		m.mu.Unlock()
		<-cur.done
		m.mu.Lock()
		if m.removed {
			m.mu.Unlock()
			return
		}
		if !m.killed {
			m.selfExit.Add(1)
		}
		m.killed = false
		time.Sleep(200 * time.Millisecond) // a restart back-off, as a supervisor has
		pr, err := m.launch()
		if err != nil {
			m.mu.Unlock()
			t.Errorf("restart member: %v", err)
			return
		}
		m.cur = pr
		m.all = append(m.all, pr)
		m.mu.Unlock()
	}
}

// crash kills the current process with SIGKILL; the member restarts it.
func (m *member) crash() {
	m.mu.Lock()
	cur := m.cur
	m.killed = true
	m.mu.Unlock()
	cur.kill()
}

// remove kills the current process for good.
func (m *member) remove() {
	m.mu.Lock()
	m.removed = true
	cur := m.cur
	m.mu.Unlock()
	cur.kill()
}

// kill sends SIGKILL: no shutdown, no commit, no flush.
func (pr *process) kill() {
	select {
	case <-pr.done:
		return
	default:
	}
	_ = pr.cmd.Process.Kill()
	<-pr.done
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// auditNode returns the node= name an auditd line starts with.
func auditNode(line []byte) ([]byte, bool) {
	rest, ok := bytes.CutPrefix(line, []byte("node="))
	if !ok {
		return nil, false
	}
	node, _, ok := bytes.Cut(rest, []byte(" "))
	return node, ok
}
