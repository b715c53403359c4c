package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/consumer"
	"github.com/sshlateral/sshlateral/processor"
)

// The repartition scenarios: the same generated events, produced keyed by
// host or with no key spread round-robin over the partitions, give the
// same result rows once the pipeline is told how its input is keyed.

// repartitionTopic is the repartition topic of the scenarios' group.
const repartitionTopic = "sshlateral-it.repartition"

// setupRepartitionTopics adds the repartition topic, with the changelog's
// partitions, to a scenario's topics.
func setupRepartitionTopics(t *testing.T, b testBroker, partitions int32) topics {
	t.Helper()
	tp := setupTopics(t, b, partitions)
	createTopic(t, b, repartitionTopic, partitions, nil)
	return tp
}

// produceUnkeyed produces lines to topic with no key, round-robin over its
// partitions, as Fluent Bit, Vector or rsyslog's omkafka do by default.
func produceUnkeyed(t *testing.T, b testBroker, topic string, lines [][]byte) {
	t.Helper()
	cl := newClient(t, b, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond))
	recs := make([]*kgo.Record, len(lines))
	for i, l := range lines {
		recs[i] = &kgo.Record{Value: l}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce %d unkeyed records to %s: %v", len(recs), topic, err)
	}
}

// TestRepartition: host-keyed input read with --input-keying host, and the
// same events unkeyed and round-robin read with --input-keying any, give
// exactly the expected rows, in both guarantees, on two instances.
func TestRepartition(t *testing.T) {
	for _, guarantee := range []consumer.Guarantee{consumer.AtLeastOnce, consumer.ExactlyOnce} {
		for _, tc := range []struct {
			name    string
			keying  consumer.InputKeying
			produce func(t *testing.T, b testBroker, topic string, lines [][]byte)
		}{
			{"host-keyed input, keying host", consumer.KeyingHost, func(t *testing.T, b testBroker, topic string, lines [][]byte) {
				produceLines(t, b, topic, lines)
			}},
			{"unkeyed input, keying any", consumer.KeyingAny, produceUnkeyed},
		} {
			t.Run(guarantee.String()+"/"+tc.name, func(t *testing.T) {
				forEachBroker(t, func(t *testing.T, b testBroker) {
					tp := setupRepartitionTopics(t, b, 6)
					g := generateStream(1, 4000, 40, 40, streamStart, 2*time.Second)
					cfg := pipelineConfig(b, tp, processor.EmitFinal)
					cfg.Guarantee, cfg.InputKeying, cfg.RepartitionTopic = guarantee, tc.keying, repartitionTopic
					startInstance(t, cfg)
					startInstance(t, cfg)
					tc.produce(t, b, tp.input, g.lines())
					produceClosers(t, b, tp, g)
					requireFinal(t, b, tp.output, g.rows(), 2*time.Second, 90*time.Second, false,
						fmt.Sprintf("%s, %d positives", tc.name, g.positives))
				})
			})
		}
	}
}

// TestRepartitionNeeded: unkeyed input read with --input-keying host splits
// hosts over partitions, so the rows differ from the expectation; the
// scenarios above can therefore tell the two keyings apart.
func TestRepartitionNeeded(t *testing.T) {
	b := startKfake(t, 1)
	tp := setupRepartitionTopics(t, b, 6)
	g := generateStream(1, 4000, 40, 40, streamStart, 2*time.Second)
	startInstance(t, pipelineConfig(b, tp, processor.EmitFinal))
	produceUnkeyed(t, b, tp.input, g.lines())
	produceClosers(t, b, tp, g)
	o := readFinal(t, b, tp.output, g.rows(), 2*time.Second, 30*time.Second)
	t.Logf("unkeyed input, keying host: %s", o)
	if o.missing+o.unexpected == 0 {
		t.Fatalf("unkeyed input with keying host gave the expected rows: %s", o)
	}
}

// TestRepartitionScaleOut: with --input-keying any, over unkeyed input, an
// instance is added and one removed while the stream flows; in
// exactly-once one is also killed with SIGKILL. The rows are exactly the
// expected ones (at-least-once: repeats are exact copies).
func TestRepartitionScaleOut(t *testing.T) {
	bin := buildBinary(t)
	for _, guarantee := range []consumer.Guarantee{consumer.AtLeastOnce, consumer.ExactlyOnce} {
		t.Run(guarantee.String(), func(t *testing.T) {
			forEachBroker(t, func(t *testing.T, b testBroker) {
				tp := setupRepartitionTopics(t, b, 6)
				g := generateStream(3, 6000, 60, 30, streamStart, time.Second)
				lines := g.lines()
				cfg := pipelineConfig(b, tp, processor.EmitFinal)
				cfg.Guarantee, cfg.InputKeying, cfg.RepartitionTopic = guarantee, consumer.KeyingAny, repartitionTopic
				first := startInstance(t, cfg)
				startInstance(t, cfg)
				victim := startProcess(t, bin, b, tp, "--emit", "final", "--guarantee", guarantee.String(),
					"--input-keying", "any", "--repartition-topic", repartitionTopic, "--session-timeout", victimSessionTimeout)

				quarter := len(lines) / 4
				produceUnkeyed(t, b, tp.input, lines[:quarter])
				waitFor(t, 60*time.Second, "stage 1 to commit some input", func() bool {
					return committedTotal(t, b, "sshlateral-it-stage1", tp.input) > 0
				})
				victim.kill()
				produceUnkeyed(t, b, tp.input, lines[quarter:2*quarter])
				startInstance(t, cfg)
				produceUnkeyed(t, b, tp.input, lines[2*quarter:3*quarter])
				removeInstance(t, first)
				produceUnkeyed(t, b, tp.input, lines[3*quarter:])
				produceClosers(t, b, tp, g)
				requireFinal(t, b, tp.output, g.rows(), 3*time.Second, 2*time.Minute, guarantee == consumer.AtLeastOnce,
					fmt.Sprintf("any keying, kill -9, add and remove, %d positives", g.positives))
			})
		})
	}
}

// TestChaosAnyKeying is the chaos scenario (kill -9 cycles, a member added
// and removed, on real Kafka a broker restart) in exactly-once mode over
// unkeyed round-robin input with --input-keying any.
func TestChaosAnyKeying(t *testing.T) {
	bin := buildBinary(t)
	anyKeying := []string{"--input-keying", "any", "--repartition-topic", repartitionTopic}
	t.Run(brokerKfake, func(t *testing.T) {
		b := startKfakeProcess(t, buildCommand(t, "sshlateral-bench"))
		scenarioCounts[brokerKfake].Add(1)
		testChaos(t, bin, b, anyKeying...)
	})
	t.Run(brokerKafka, func(t *testing.T) {
		b := startKafka(t)
		scenarioCounts[brokerKafka].Add(1)
		testChaos(t, bin, b, anyKeying...)
	})
}

// removeInstance stops in gracefully. An exactly-once session whose last
// transaction did not end in time (it can wait behind a rebalance) stops
// with ErrUnknownOutcome by design: nothing of it is committed and the
// next owner rebuilds from what Kafka committed; the rows decide.
func removeInstance(t *testing.T, in *instance) {
	t.Helper()
	in.halt(t, true)
}
