package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/consumer"
	"github.com/sshlateral/sshlateral/integration/escurow"
	"github.com/sshlateral/sshlateral/processor"
)

// The acceptance scenarios: each runs on kfake and, in CI, on real Kafka.

var streamStart = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)

// TestEndToEnd: a generated stream with known positives through two
// instances in one group; the output holds exactly the expected records.
func TestEndToEnd(t *testing.T) {
	for _, guarantee := range []consumer.Guarantee{consumer.AtLeastOnce, consumer.ExactlyOnce} {
		t.Run(guarantee.String(), func(t *testing.T) { testEndToEnd(t, guarantee) })
	}
}

func testEndToEnd(t *testing.T, guarantee consumer.Guarantee) {
	forEachBroker(t, func(t *testing.T, b testBroker) {
		tp := setupTopics(t, b, 6)
		g := generateStream(1, 4000, 40, 40, streamStart, 2*time.Second)
		cfg := pipelineConfig(b, tp, processor.EmitFinal)
		cfg.Guarantee = guarantee
		startInstance(t, cfg)
		startInstance(t, cfg)
		produceLines(t, b, tp.input, g.lines())
		produceClosers(t, b, tp, g)

		rows := g.rows()
		requireFinal(t, b, tp.output, rows, 2*time.Second, 90*time.Second, false,
			fmt.Sprintf("end to end, %d positives", g.positives))
	})
}

// TestEarlyEmission: early mode writes an EARLY record for each group's first
// event at once, and a FINAL only for groups that changed afterwards.
func TestEarlyEmission(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b testBroker) {
		tp := setupTopics(t, b, 3)
		g := generateStream(2, 1500, 10, 20, streamStart, 2*time.Second)
		startInstance(t, pipelineConfig(b, tp, processor.EmitEarly))
		produceLines(t, b, tp.input, g.lines())
		produceClosers(t, b, tp, g)

		rows := g.rows()
		var wantFinals []expectedRow
		for _, r := range rows {
			if r.Count > 1 {
				wantFinals = append(wantFinals, r)
			}
		}
		recs := readRiskRecords(t, b, tp.output, 2*(len(rows)+len(wantFinals)), 2*time.Second, 90*time.Second)
		var early, final []riskRecord
		for _, r := range recs {
			switch r.Emission {
			case "EARLY":
				if r.Revision != 0 || r.Count != 1 || r.FirstTime != r.LastTime {
					t.Errorf("EARLY record %s: revision %d count %d %s..%s", r.identity(), r.Revision, r.Count, r.FirstTime, r.LastTime)
				}
				// An EARLY row is the group's first event: compare as count 1.
				early = append(early, r)
			case "FINAL":
				if r.Revision != 1 {
					t.Errorf("FINAL record %s after EARLY has revision %d, want 1", r.identity(), r.Revision)
				}
				final = append(final, r)
			default:
				t.Errorf("unexpected emission %s", r.identity())
			}
		}
		var firstEvents []expectedRow
		for _, r := range rows {
			r.Count, r.LastTime = 1, r.FirstTime
			firstEvents = append(firstEvents, r)
		}
		for i := range early {
			early[i].Emission = "FINAL" // compareFinal's shape check; emission was checked above
		}
		if o := compareFinal(early, firstEvents); o.missing+o.unexpected+o.duplicates > 0 {
			t.Errorf("EARLY records: %s\n%v", o, o.problems)
		}
		if o := compareFinal(final, wantFinals); o.missing+o.unexpected+o.duplicates > 0 {
			t.Errorf("FINAL records: %s\n%v", o, o.problems)
		}
		alertOf := map[string]string{}
		for _, r := range early {
			alertOf[r.row().key()+r.RiskObjectType] = r.AlertID
		}
		for _, r := range final {
			k := r.row()
			k.Count, k.LastTime = 1, k.FirstTime
			if id := alertOf[k.key()+r.RiskObjectType]; id != r.AlertID {
				t.Errorf("FINAL %s does not share the alert id of its EARLY record (%s)", r.identity(), id)
			}
		}
	})
}

// TestScaleOut: three instances over twelve partitions own every partition
// once; adding a fourth and removing one mid-stream loses and duplicates
// nothing.
func TestScaleOut(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b testBroker) {
		tp := setupTopics(t, b, 12)
		g := generateStream(3, 9000, 120, 30, streamStart, time.Second)
		lines := g.lines()
		cfg := pipelineConfig(b, tp, processor.EmitFinal)
		members := []*instance{startInstance(t, cfg), startInstance(t, cfg), startInstance(t, cfg)}

		third := len(lines) / 3
		produceLines(t, b, tp.input, lines[:third])
		waitFor(t, 60*time.Second, "twelve partitions owned once by three instances", func() bool {
			return ownedOnce(members, int(tp.partitions))
		})

		members = append(members, startInstance(t, cfg))
		produceLines(t, b, tp.input, lines[third:2*third])
		waitFor(t, 60*time.Second, "the fourth instance to own partitions", func() bool {
			return len(members[3].p.Partitions()) > 0 && ownedOnce(members, int(tp.partitions))
		})

		members[0].stop(t)
		produceLines(t, b, tp.input, lines[2*third:])
		waitFor(t, 60*time.Second, "the remaining three to own every partition", func() bool {
			return ownedOnce(members[1:], int(tp.partitions))
		})
		produceClosers(t, b, tp, g)

		rows := g.rows()
		requireFinal(t, b, tp.output, rows, 3*time.Second, 2*time.Minute, false,
			fmt.Sprintf("scale-out, %d positives", g.positives))
	})
}

// ownedOnce reports whether the members together own each of n partitions
// exactly once.
func ownedOnce(members []*instance, n int) bool {
	owners := map[int32]int{}
	for _, m := range members {
		for _, ps := range m.p.Partitions() {
			owners[ps.Partition]++
		}
	}
	if len(owners) != n {
		return false
	}
	for _, c := range owners {
		if c != 1 {
			return false
		}
	}
	return true
}

// TestCrashRestart: a separate pipeline process is killed with SIGKILL mid
// stream and started again; no expected record is missing, and any repeat
// is an exact copy (same alert id, revision and aggregate).
func TestCrashRestart(t *testing.T) {
	bin := buildBinary(t)
	forEachBroker(t, func(t *testing.T, b testBroker) {
		tp := setupTopics(t, b, 4)
		g := generateStream(4, 6000, 50, 30, streamStart, time.Second)
		lines := g.lines()
		args := []string{"--emit", "final"}
		first := startProcess(t, bin, b, tp, args...)
		half := len(lines) / 2
		produceLines(t, b, tp.input, lines[:half])
		waitFor(t, 60*time.Second, "the first process to commit some input", func() bool {
			return committedTotal(t, b, "sshlateral-it", tp.input) > 0
		})
		first.kill()
		startProcess(t, bin, b, tp, args...)
		produceLines(t, b, tp.input, lines[half:])
		produceClosers(t, b, tp, g)

		rows := g.rows()
		requireFinal(t, b, tp.output, rows, 3*time.Second, 2*time.Minute, true, "after kill -9")
	})
}

// committedTotal sums the group's committed offsets on topic.
func committedTotal(t *testing.T, b testBroker, group, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	offsets, err := kadm.NewClient(newClient(t, b)).FetchOffsets(ctx, group)
	if err != nil {
		return 0
	}
	var n int64
	offsets.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil {
			n += o.At
		}
	})
	return n
}

// TestBrokerRestart: the broker stops and starts mid-stream; the pipeline
// recovers by itself and the output is exact.
func TestBrokerRestart(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b testBroker) {
		tp := setupTopics(t, b, 4)
		g := generateStream(5, 4000, 30, 30, streamStart, time.Second)
		lines := g.lines()
		in := startInstance(t, pipelineConfig(b, tp, processor.EmitFinal))
		half := len(lines) / 2
		produceLines(t, b, tp.input, lines[:half])
		waitFor(t, 60*time.Second, "the first half to be consumed", func() bool {
			return in.p.Stats().Consumed >= int64(half)
		})
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		began := time.Now()
		if err := b.Restart(ctx); err != nil {
			t.Fatalf("restart broker: %v", err)
		}
		t.Logf("%s: broker restarted in %s", b.Name(), time.Since(began).Round(time.Millisecond))
		produceLines(t, b, tp.input, lines[half:])
		produceClosers(t, b, tp, g)

		rows := g.rows()
		requireFinal(t, b, tp.output, rows, 3*time.Second, 2*time.Minute, true, "after broker restart")
	})
}

// TestPoisonInput: malformed records go to the dead-letter topic with their
// reason and source position; nothing else is lost.
func TestPoisonInput(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b testBroker) {
		tp := setupTopics(t, b, 3)
		g := generateStream(6, 1200, 12, 20, streamStart, 2*time.Second)
		lines := g.lines()
		poison := [][]byte{
			[]byte(`<Event><System><EventID>1</EventID>`),
			[]byte(`{"dest": "host-1", "_time": "not a time"`),
			[]byte("\x00\x01\x02 binary garbage"),
			[]byte(`Nov  2 08:00:00 host-x sysmon: <Event><System><EventID>1</EventID></System><EventData><Data Name="UtcTime">yesterday</Data></EventData></Event>`),
		}
		var mixed [][]byte
		for i, l := range lines {
			mixed = append(mixed, l)
			if i%300 == 0 && i/300 < len(poison) {
				mixed = append(mixed, poison[i/300])
			}
		}
		in := startInstance(t, pipelineConfig(b, tp, processor.EmitFinal))
		produceLines(t, b, tp.input, mixed)
		produceClosers(t, b, tp, g)

		rows := g.rows()
		requireFinal(t, b, tp.output, rows, 2*time.Second, 90*time.Second, false, "with poison input")
		dl := readDeadLetters(t, b, tp.dlq, len(poison))
		if len(dl) != len(poison) {
			t.Fatalf("dead letters: got %d, want %d", len(dl), len(poison))
		}
		for _, r := range dl {
			h := headers(r)
			if h[consumer.HeaderDLQReason] != consumer.DLQReasonDecode || h[consumer.HeaderDLQError] == "" {
				t.Errorf("dead letter at offset %d lacks a reason: %v", r.Offset, h)
			}
			if h[consumer.HeaderSourceTopic] != tp.input {
				t.Errorf("dead letter source topic %q, want %q", h[consumer.HeaderSourceTopic], tp.input)
			}
			if _, err := strconv.ParseInt(h[consumer.HeaderSourceOffset], 10, 64); err != nil {
				t.Errorf("dead letter source offset %q: %v", h[consumer.HeaderSourceOffset], err)
			}
		}
		if got := sumMap(in.p.Stats().DeadLettered); got != int64(len(poison)) {
			t.Errorf("dead-letter counter %d, want %d", got, len(poison))
		}
	})
}

func readDeadLetters(t *testing.T, b testBroker, topic string, want int) []*kgo.Record {
	t.Helper()
	cl := newClient(t, b, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var out []*kgo.Record
	deadline := time.Now().Add(30 * time.Second)
	for len(out) < want && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
		cancel()
	}
	// Anything beyond want would be a wrongly dead-lettered record.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
	cancel()
	return out
}

func headers(r *kgo.Record) map[string]string {
	m := map[string]string{}
	for _, h := range r.Headers {
		m[h.Key] = string(h.Value)
	}
	return m
}

func sumMap(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// TestSyntheticPositives replays the labelled synthetic dataset (worm ssh
// lines in Sysmon envelopes, testdata/synthetic) through two instances; the
// output holds exactly the rows its generator labelled.
func TestSyntheticPositives(t *testing.T) {
	root := filepath.Join("..", "testdata", "synthetic")
	rows, last := syntheticRows(t, root)
	raw, err := os.ReadFile(filepath.Join(root, "positives.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimRight(raw, "\n"), []byte("\n"))

	forEachBroker(t, func(t *testing.T, b testBroker) {
		tp := setupTopics(t, b, 4)
		cfg := pipelineConfig(b, tp, processor.EmitFinal)
		startInstance(t, cfg)
		startInstance(t, cfg)
		produceLines(t, b, tp.input, lines)
		closers := generatedStream{events: []genEvent{{at: last}}}
		produceClosers(t, b, tp, closers)

		requireFinal(t, b, tp.output, rows, 2*time.Second, 90*time.Second, false, "synthetic positives")
	})
}

// TestInputFormats: the same labelled positives in every input shape a data
// lake carries (CIM, JSON envelopes around Sysmon lines, Splunk HEC, ECS,
// OCSF, raw auditd), read with --input-format auto, give exactly the rows of
// the Sysmon XML. (auditd records name no parent process: its rows have
// parent_process_name null, as tstats would show.)
func TestInputFormats(t *testing.T) {
	root := filepath.Join("..", "testdata", "synthetic")
	rows, last := syntheticRows(t, root)
	files := []string{"positives_cim.json", "positives_envelope.jsonl", "positives_hec.jsonl", "positives_ecs.jsonl",
		"positives_ocsf.jsonl", "positives_auditd.log"}
	forEachBroker(t, func(t *testing.T, b testBroker) {
		for i, file := range files {
			t.Run(file, func(t *testing.T) {
				raw, err := os.ReadFile(filepath.Join(root, file))
				if err != nil {
					t.Fatal(err)
				}
				lines := bytes.Split(bytes.TrimRight(raw, "\n"), []byte("\n"))
				suffix := "." + strconv.Itoa(i)
				tp := topics{input: "in" + suffix, output: "out" + suffix, dlq: "dlq" + suffix, changelog: "changelog" + suffix, partitions: 2}
				compact := "compact"
				createTopic(t, b, tp.input, 2, nil)
				createTopic(t, b, tp.output, 1, nil)
				createTopic(t, b, tp.dlq, 1, nil)
				createTopic(t, b, tp.changelog, 2, map[string]*string{"cleanup.policy": &compact})
				cfg := pipelineConfig(b, tp, processor.EmitFinal)
				cfg.Group = "formats" + suffix
				in := startInstance(t, cfg)
				produceLines(t, b, tp.input, lines)
				produceClosers(t, b, tp, generatedStream{events: []genEvent{{at: last}}})
				want := rows
				if strings.Contains(file, "auditd") {
					want = make([]expectedRow, len(rows))
					for i, r := range rows {
						r.ParentProcessName = processor.Null
						want[i] = r
					}
				}
				requireFinal(t, b, tp.output, want, 2*time.Second, 90*time.Second, false, file)
				if st := in.p.Stats(); sumMap(st.DeadLettered) != 0 {
					t.Errorf("%s: dead letters %v", file, st.DeadLettered)
				}
			})
		}
	})
}

// syntheticRows loads the labelled expectation of the synthetic positives
// and the newest event time in it.
func syntheticRows(t *testing.T, root string) ([]expectedRow, time.Time) {
	t.Helper()
	labelled, err := escurow.Load(filepath.Join(root, "positives.expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []expectedRow
	var last time.Time
	for _, l := range labelled {
		first, err := time.Parse(escurow.TimeLayout, l.FirstTime)
		if err != nil {
			t.Fatal(err)
		}
		if lt, _ := time.Parse(escurow.TimeLayout, l.LastTime); lt.After(last) {
			last = lt
		}
		rows = append(rows, expectedRow{Row: l, WindowStart: escuWindowStart(first)})
	}
	return rows, last
}

// TestIdleClose: a partition that goes quiet still closes its windows by
// wall clock (the data is historical, so now − grace passes every window),
// in both modes, also when the state was restored from the changelog by a
// new instance after a restart.
func TestIdleClose(t *testing.T) {
	for _, guarantee := range []consumer.Guarantee{consumer.AtLeastOnce, consumer.ExactlyOnce} {
		t.Run(guarantee.String(), func(t *testing.T) {
			forEachBroker(t, func(t *testing.T, b testBroker) {
				tp := setupTopics(t, b, 3)
				g := generateStream(9, 1500, 15, 20, streamStart, 2*time.Second)
				lines := g.lines()
				cfg := pipelineConfig(b, tp, processor.EmitFinal)
				cfg.Guarantee = guarantee

				// The first instance sees every event but never idles long
				// enough to close anything, then stops.
				cfg.Processor.IdleClose = time.Hour
				first := startInstance(t, cfg)
				produceLines(t, b, tp.input, lines)
				waitFor(t, 60*time.Second, "all events consumed", func() bool {
					return first.p.Stats().Consumed >= int64(len(lines))
				})
				if n := len(readRiskRecords(t, b, tp.output, 0, time.Second, 2*time.Second)); n != 0 {
					t.Fatalf("%d records before any window closed", n)
				}
				first.stop(t)

				// The second restores the open windows and closes them on idle.
				cfg.Processor.IdleClose = time.Second
				startInstance(t, cfg)
				rows := g.rows()
				requireFinal(t, b, tp.output, rows, 2*time.Second, 90*time.Second, false,
					fmt.Sprintf("%s idle close after restore", guarantee))
			})
		})
	}
}
