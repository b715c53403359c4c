package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sshlateral/sshlateral/integration/escurow"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The Kafka Streams peer (integration/kstreams) runs the same detection as a
// Kafka Streams application; the benchmark compares the two only if their
// result rows are equal, which this test proves against the generator's
// oracle, on both brokers and in both guarantees.

const (
	// envKstreamsJar names a built peer jar; without it the test builds one
	// with Maven when java and mvn are on PATH.
	envKstreamsJar = "SSHLATERAL_KSTREAMS_JAR"
	// envKstreamsEvents sizes the stream (default kstreamsEvents): a large
	// value turns the test into a measurement whose numbers are logged, never
	// asserted.
	envKstreamsEvents = "SSHLATERAL_KSTREAMS_EVENTS"
	kstreamsEvents    = 6000
	// envKstreamsRounds repeats every configuration, alternating, for
	// measurements on a noisy machine.
	envKstreamsRounds = "SSHLATERAL_KSTREAMS_ROUNDS"
)

var (
	kstreamsJarOnce sync.Once
	kstreamsJarPath string
	kstreamsJarErr  error
)

// kstreamsJar returns the peer jar, building it once per test binary, or
// skips when neither a jar nor java and mvn are available.
func kstreamsJar(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("java not on PATH: the Kafka Streams peer cannot run")
	}
	if jar := os.Getenv(envKstreamsJar); jar != "" {
		return jar
	}
	if _, err := exec.LookPath("mvn"); err != nil {
		t.Skipf("mvn not on PATH and %s unset: cannot build the Kafka Streams peer", envKstreamsJar)
	}
	kstreamsJarOnce.Do(func() {
		dir, err := filepath.Abs("kstreams")
		if err != nil {
			kstreamsJarErr = err
			return
		}
		cmd := exec.Command("mvn", "-q", "-B", "package")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			kstreamsJarErr = fmt.Errorf("mvn package in %s: %w\n%s", dir, err, out)
			return
		}
		kstreamsJarPath = filepath.Join(dir, "target", "sshlateral-kstreams.jar")
	})
	if kstreamsJarErr != nil {
		t.Fatalf("build the Kafka Streams peer: %v", kstreamsJarErr)
	}
	return kstreamsJarPath
}

// kstreamsSummary is the peer's one-line JSON summary.
type kstreamsSummary struct {
	Records       int64   `json:"records"`
	Matches       int64   `json:"matches"`
	Rows          int64   `json:"rows"`
	FirstToLastS  float64 `json:"first_to_last_s"`
	EventsPerS    float64 `json:"events_per_s"`
	SettledS      float64 `json:"first_to_settled_s"`
	Rebalances    int64   `json:"rebalances_in_pass"`
	CPUSecPass    float64 `json:"cpu_s_pass"`
	CPUSecProcess float64 `json:"cpu_s_process"`
	PeakRSSMiB    int64   `json:"peak_rss_mib"`
}

// kstreamsRow is one output record of the peer.
type kstreamsRow struct {
	escurow.Row
	WindowStart string `json:"window_start"`
}

func TestKafkaStreamsPeer(t *testing.T) {
	if !integrationEnabled() {
		t.Skipf("the Kafka Streams peer runs only with %s=1", envIntegration)
	}
	jar := kstreamsJar(t)
	events := kstreamsEvents
	if v := os.Getenv(envKstreamsEvents); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number of events", envKstreamsEvents, v)
		}
		events = n
	}
	forEachBroker(t, func(t *testing.T, b testBroker) {
		if b.Name() == brokerKfake {
			// Two answers of kfake break the Java clients Kafka Streams uses to
			// manage its internal topics: CreateTopics leaves each config's
			// source at -1 ("id should be positive" in the admin client), and
			// DescribeTopicPartitions leaves eligibleLeaderReplicas null (a
			// NullPointerException when the topics already exist).
			t.Skip("Kafka Streams cannot manage its internal topics on kfake; real Kafka only")
		}
		const partitions = 6
		tp := setupTopics(t, b, partitions)
		// The default stream is small and rich in matches; a measurement
		// stream has about 0.1% matching events, as the benchmark's.
		hosts, positiveEvery, step := 50, 30, time.Second
		if events > kstreamsEvents {
			hosts, positiveEvery, step = 400, 1000, 100*time.Millisecond
		}
		g := generateStream(13, events, hosts, positiveEvery, streamStart, step)
		produceEvents(t, b, tp.input, g.events)
		produceClosers(t, b, tp, g)
		want := g.rows()

		runs := []struct {
			name, guarantee  string
			commitIntervalMs int
		}{
			{"at_least_once default", "at_least_once", 0},
			{"exactly_once_v2 default", "exactly_once_v2", 0},
			{"at_least_once commit 1s", "at_least_once", 1000},
			{"exactly_once_v2 commit 1s", "exactly_once_v2", 1000},
		}
		rounds := 1
		if v := os.Getenv(envKstreamsRounds); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				t.Fatalf("%s=%q: want a positive number of rounds", envKstreamsRounds, v)
			}
			rounds = n
		}
		for i := range rounds * len(runs) {
			run := runs[i%len(runs)]
			t.Run(run.name, func(t *testing.T) {
				output := fmt.Sprintf("kstreams.rows.%d", i)
				// The peer stamps its rows with their event time (a month
				// ago here): with the default 7-day retention the broker may
				// delete them at any retention check before they are read.
				forever := "-1"
				createTopic(t, b, output, 3, map[string]*string{"retention.ms": &forever})
				appID := fmt.Sprintf("sshlateral-kstreams-it-%d", i)
				args := []string{"--bootstrap", b.Seeds()[0], "--input", tp.input, "--output", output,
					"--application-id", appID, "--guarantee", run.guarantee,
					"--exit-when-idle", "5"}
				if run.commitIntervalMs > 0 {
					args = append(args, "--commit-interval-ms", strconv.Itoa(run.commitIntervalMs))
				}
				sum, stderr := runKstreams(t, jar, args)
				t.Logf("%s on %s: %d events (%d matches, %d rows), %.0f events/s first→last (%.2f s, settled after %.2f s, %d rebalances in it), %.2f CPU s in the pass (%.2f process), peak RSS %d MiB",
					run.name, b.Name(), sum.Records, sum.Matches, sum.Rows, sum.EventsPerS, sum.FirstToLastS, sum.SettledS, sum.Rebalances, sum.CPUSecPass, sum.CPUSecProcess, sum.PeakRSSMiB)
				if want, got := int64(len(g.events)+partitions), sum.Records; got != want {
					t.Errorf("peer read %d records, want %d", got, want)
				}
				got := readKstreamsRows(t, b, output, len(want))
				if !slices.Equal(got, want) {
					t.Fatalf("peer rows differ from the oracle: got %d rows, want %d\n%s\npeer stderr: %s",
						len(got), len(want), rowDiff(got, want), tail(stderr, 4000))
				}
			})
		}
	})
}

// produceEvents produces the events keyed by host, as shippers do, in
// chunks so a large stream is never rendered whole, compressed with zstd as
// real producers compress.
func produceEvents(t *testing.T, b testBroker, topic string, events []genEvent) {
	t.Helper()
	cl := newClient(t, b, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	const chunk = 10000
	for start := 0; start < len(events); start += chunk {
		recs := make([]*kgo.Record, 0, chunk)
		for _, e := range events[start:min(start+chunk, len(events))] {
			recs = append(recs, &kgo.Record{Key: []byte(e.host), Value: sysmonLine(e)})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce events %d.. to %s: %v", start, topic, err)
		}
	}
}

// runKstreams runs the peer until it has been idle after consuming and
// returns its summary and its log (stderr).
func runKstreams(t *testing.T, jar string, args []string) (kstreamsSummary, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "java", append([]string{"-jar", jar}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kafka streams peer %v: %v\nstdout: %s\nstderr: %s", args, err, stdout.Bytes(), tail(stderr.String(), 12000))
	}
	var sum kstreamsSummary
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &sum); err != nil {
		t.Fatalf("kafka streams peer summary %q: %v\nstderr: %s", stdout.Bytes(), err, tail(stderr.String(), 12000))
	}
	return sum, stderr.String()
}

// readKstreamsRows reads the committed rows of topic: at least n, then
// whatever else arrives within a short drain, so extra or duplicate rows fail
// the comparison. The peer has exited and committed before this runs, so a
// correct run returns as soon as the rows are read; a minute is left for a
// slow broker on a loaded machine.
func readKstreamsRows(t *testing.T, b testBroker, topic string, n int) []expectedRow {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cl := newClient(t, b, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	var rows []expectedRow
	collect := func(ctx context.Context) {
		fetches := cl.PollFetches(ctx)
		for _, fe := range fetches.Errors() {
			if ctx.Err() == nil {
				t.Fatalf("fetch %s partition %d: %v", fe.Topic, fe.Partition, fe.Err)
			}
		}
		fetches.EachRecord(func(r *kgo.Record) {
			var kr kstreamsRow
			if err := json.Unmarshal(r.Value, &kr); err != nil {
				t.Fatalf("row at %s/%d offset %d: %v: %s", r.Topic, r.Partition, r.Offset, err, r.Value)
			}
			ws, err := time.Parse(time.RFC3339, kr.WindowStart)
			if err != nil {
				t.Fatalf("row at %s/%d offset %d: window_start: %v", r.Topic, r.Partition, r.Offset, err)
			}
			rows = append(rows, expectedRow{Row: kr.Row, WindowStart: ws.UTC()})
		})
	}
	for len(rows) < n && ctx.Err() == nil {
		collect(ctx)
	}
	drain, cancelDrain := context.WithTimeout(ctx, 2*time.Second)
	defer cancelDrain()
	for drain.Err() == nil {
		collect(drain)
	}
	slices.SortFunc(rows, func(a, b expectedRow) int {
		if c := cmpString(a.key(), b.key()); c != 0 {
			return c
		}
		return int(a.Count - b.Count)
	})
	return rows
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// rowDiff lists the rows only one side has (at most 20).
func rowDiff(got, want []expectedRow) string {
	var buf bytes.Buffer
	shown := 0
	for _, r := range got {
		if !slices.Contains(want, r) && shown < 20 {
			fmt.Fprintf(&buf, "extra:   %+v\n", r)
			shown++
		}
	}
	for _, r := range want {
		if !slices.Contains(got, r) && shown < 20 {
			fmt.Fprintf(&buf, "missing: %+v\n", r)
			shown++
		}
	}
	if shown == 0 {
		buf.WriteString("(same rows, different multiplicity: duplicates)\n")
	}
	return buf.String()
}
