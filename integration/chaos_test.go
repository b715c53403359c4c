package integration

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The chaos test follows Kafka's own transactions system test
// (tests/kafkatest/tests/core/transactions_test.py): copy a known input
// through processes that are killed and restarted while they work, then let
// a read_committed verifier check that every expected record is there once,
// with exact aggregates. Longer soaks: go test ./integration -run TestChaos
// -args -chaos.events=1000000 -chaos.kills=50.
var (
	chaosEvents = flag.Int("chaos.events", 100_000, "events in the chaos test stream")
	chaosKills  = flag.Int("chaos.kills", 6, "kill -9 and restart cycles in the chaos test")
)

func TestChaosExactlyOnce(t *testing.T) {
	bin := buildBinary(t)
	// kfake runs in a child process here: the test binary is built with
	// -race, which slows an in-process broker under this load so much that
	// group joins time out, a fault of the harness, not of the pipeline.
	t.Run(brokerKfake, func(t *testing.T) {
		b := startKfakeProcess(t, buildCommand(t, "sshlateral-bench"))
		scenarioCounts[brokerKfake].Add(1)
		testChaos(t, bin, b)
	})
	t.Run(brokerKafka, func(t *testing.T) {
		b := startKafka(t)
		scenarioCounts[brokerKafka].Add(1)
		testChaos(t, bin, b)
	})
}

// testChaos runs the chaos scenario; extra are more run flags. With
// "--input-keying any" among them the stream is produced unkeyed,
// round-robin, through the repartition topic.
func testChaos(t *testing.T, bin string, b testBroker, extra ...string) {
	tp := setupTopics(t, b, 12)
	produce := func(lines [][]byte) { produceLines(t, b, tp.input, lines) }
	if slices.Contains(extra, "any") {
		createTopic(t, b, repartitionTopic, tp.partitions, nil)
		produce = func(lines [][]byte) { produceUnkeyed(t, b, tp.input, lines) }
	}
	g := generateStream(7, *chaosEvents, 400, 100, streamStart, 100*time.Millisecond)
	lines := g.lines()
	args := append([]string{"--guarantee", "exactly-once", "--emit", "final", "--transaction-timeout", "5s",
		"--commit-interval", "100ms"}, extra...)
	rng := rand.New(rand.NewPCG(7, 11))

	var selfExits atomic.Int64
	members := []*member{}
	for i := 0; i < 3; i++ {
		members = append(members, startMember(t, bin, b, tp, &selfExits, args...))
	}
	var kills, added, removed, brokerRestarts int
	chunks := 2 * (*chaosKills + 2)
	step := (len(lines) + chunks - 1) / chunks
	for c := 0; c*step < len(lines); c++ {
		end := min((c+1)*step, len(lines))
		produce(lines[c*step : end])
		time.Sleep(300 * time.Millisecond) // let the members work on it before the next blow
		switch {
		case c%2 == 1 && kills < *chaosKills:
			members[rng.IntN(len(members))].crash() // kill -9; the member starts a new process
			kills++
		case c == 2:
			members = append(members, startMember(t, bin, b, tp, &selfExits, args...))
			added++
		case c == 4 && len(members) > 3:
			members[len(members)-1].remove()
			members = members[:len(members)-1]
			removed++
			kills++
		case c == 6 && b.Name() == brokerKafka:
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			if err := b.Restart(ctx); err != nil {
				cancel()
				t.Fatalf("restart broker: %v", err)
			}
			cancel()
			brokerRestarts++
		}
	}
	produceClosers(t, b, tp, g)

	rows := g.rows()
	o := readFinal(t, b, tp.output, rows, 5*time.Second, 4*time.Minute)
	report := fmt.Sprintf("chaos %s: events=%d positives=%d kills=%d added=%d removed=%d self_exits=%d broker_restarts=%d expected=%d found=%d duplicates=%d missing=%d unexpected=%d",
		b.Name(), len(lines), g.positives, kills, added, removed, selfExits.Load(), brokerRestarts, o.expected, o.found, o.duplicates, o.missing, o.unexpected)
	t.Log(report)
	// go test hides a passing package's output; .ci/run prints this file.
	if path := os.Getenv(envScenarioReport); path != "" {
		if err := appendLine(path, report); err != nil {
			t.Errorf("scenario report: %v", err)
		}
	}
	if o.missing+o.duplicates+o.unexpected > 0 {
		t.Fatalf("exactly-once violated: %s\n%v", o, o.problems)
	}
	// A transaction of unknown outcome is recovered in-process: a process
	// exits only when it truly cannot go on.
	if n := selfExits.Load(); n > int64(kills) {
		t.Errorf("%d self-exits for %d kills: members exit instead of recovering", n, kills)
	}
}

// kfakeProcess is a kfake cluster served by `sshlateral-bench --serve-kfake`
// in a child process; closing its stdin stops it.
type kfakeProcess struct {
	seeds []string
}

func (k kfakeProcess) Name() string                  { return brokerKfake }
func (k kfakeProcess) Seeds() []string               { return append([]string(nil), k.seeds...) }
func (k kfakeProcess) Restart(context.Context) error { return errUnsupported }
func (k kfakeProcess) Outage(context.Context) (func(), error) {
	return nil, errUnsupported
}

func startKfakeProcess(t *testing.T, benchBin string) testBroker {
	t.Helper()
	cmd := exec.Command(benchBin, "--serve-kfake")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start kfake process: %v", err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("kfake process did not report its address: %v", err)
	}
	seeds := strings.Split(strings.TrimSpace(line), ",")
	for _, s := range seeds {
		if !strings.HasPrefix(s, "127.0.0.1:") {
			t.Fatalf("kfake process listens on %q, not loopback", s)
		}
	}
	return kfakeProcess{seeds: seeds}
}
