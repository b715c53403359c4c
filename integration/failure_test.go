package integration

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/consumer"
	"github.com/sshlateral/sshlateral/processor"
)

// TestRejectedProduce: the broker rejects a risk record for good (the output
// topic's max.message.bytes is below one record). The instance must stop
// with an error and must not commit any input offset past the record that
// caused the rejected write, however many later batches it had in hand; once
// the topic is fixed, a new instance re-reads the match and reports it.
func TestRejectedProduce(t *testing.T) {
	for _, guarantee := range []consumer.Guarantee{consumer.AtLeastOnce, consumer.ExactlyOnce} {
		t.Run(guarantee.String(), func(t *testing.T) {
			forEachBroker(t, func(t *testing.T, b testBroker) { testRejectedProduce(t, b, guarantee) })
		})
	}
}

func testRejectedProduce(t *testing.T, b testBroker, guarantee consumer.Guarantee) {
	tp := topics{input: "endpoint.processes", output: "sshlateral.risk", dlq: "sshlateral.dlq",
		changelog: "sshlateral.state-changelog", partitions: 1}
	tiny, compact := "128", "compact"
	createTopic(t, b, tp.input, 1, nil)
	createTopic(t, b, tp.output, 1, map[string]*string{"max.message.bytes": &tiny})
	createTopic(t, b, tp.dlq, 1, nil)
	createTopic(t, b, tp.changelog, 1, map[string]*string{"cleanup.policy": &compact})

	// The match is the first record (offset 0); hundreds of non-matching
	// records from other hosts follow, so the worker has later batches in
	// hand when its write is rejected.
	match := genEvent{host: "victim.corp.example", user: "root", parentImage: "/usr/bin/bash", image: "/usr/bin/ssh",
		cmd: fmt.Sprintf(positiveCommands[0], 1, 2), pid: 4242, ppid: 4000, at: streamStart, positive: true}
	lines := [][]byte{sysmonLine(match)}
	for i := 1; i <= 600; i++ {
		lines = append(lines, sysmonLine(genEvent{host: fmt.Sprintf("other-%d.corp.example", i%7), user: "svc",
			parentImage: "/usr/bin/bash", image: "/usr/bin/ls", cmd: "/usr/bin/ls -la", pid: 5000 + i, ppid: 1,
			at: streamStart.Add(time.Duration(i) * time.Second)}))
	}
	produceLines(t, b, tp.input, lines)

	cfg := pipelineConfig(b, tp, processor.EmitEarly)
	cfg.Guarantee = guarantee
	cfg.MaxPollRecords = 20 // many small batches
	first := startInstance(t, cfg)
	var runErr error
	select {
	case runErr = <-first.done:
	case <-time.After(90 * time.Second):
		t.Fatalf("the instance kept running for 90s after its risk record was rejected for good")
	}
	first.once.Do(func() {}) // already stopped; its error is the point of the test
	if runErr == nil || errors.Is(runErr, context.Canceled) {
		t.Fatalf("Run returned %v, want the rejected produce's error", runErr)
	}
	t.Logf("%s/%s: first instance stopped with: %v", b.Name(), guarantee, runErr)
	if got := committedTotal(t, b, cfg.Group, tp.input); got > 0 {
		t.Fatalf("committed input offset %d after a rejected write at offset 0: later records were committed past it", got)
	}

	// Fix the topic; a new instance must find the match.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	normal := strconv.Itoa(1 << 20)
	resp, err := kadm.NewClient(newClient(t, b)).AlterTopicConfigs(ctx,
		[]kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.message.bytes", Value: &normal}}, tp.output)
	if err == nil {
		_, err = resp.On(tp.output, nil)
	}
	if err != nil {
		t.Fatalf("raise max.message.bytes of %s: %v", tp.output, err)
	}
	startInstance(t, cfg)
	recs := readRiskRecords(t, b, tp.output, 2, time.Second, 60*time.Second)
	found := 0
	for _, r := range recs {
		if r.Dest == match.host && r.ProcessID == "4242" {
			found++
		}
	}
	if found < 2 {
		t.Fatalf("after the restart: %d risk records for the match, want its dest and user records (%d records read)", found, len(recs))
	}
}

// clientCounter is a franz-go hook counting clients created and closed.
type clientCounter struct{ created, closed atomic.Int64 }

func (c *clientCounter) OnNewClient(*kgo.Client)    { c.created.Add(1) }
func (c *clientCounter) OnClientClosed(*kgo.Client) { c.closed.Add(1) }

// TestBrokerOutageShutdown: the broker becomes unreachable while the
// pipeline runs; a shutdown then ends within ShutdownTimeout (plus a little)
// and every Kafka client the pipeline created is closed, instead of a
// commit, write or group leave blocking forever.
func TestBrokerOutageShutdown(t *testing.T) {
	for _, guarantee := range []consumer.Guarantee{consumer.AtLeastOnce, consumer.ExactlyOnce} {
		t.Run(guarantee.String(), func(t *testing.T) {
			forEachBroker(t, func(t *testing.T, b testBroker) {
				tp := setupTopics(t, b, 2)
				g := generateStream(11, 400, 8, 10, streamStart, time.Second)
				cfg := pipelineConfig(b, tp, processor.EmitEarly)
				cfg.Guarantee = guarantee
				cfg.ShutdownTimeout = 3 * time.Second
				hooks := &clientCounter{}
				cfg.ClientOpts = append(cfg.ClientOpts, kgo.WithHooks(hooks))
				in := startInstance(t, cfg)
				produceLines(t, b, tp.input, g.lines())
				waitFor(t, 60*time.Second, "some input consumed", func() bool { return in.p.Stats().Consumed > 0 })

				resume, err := b.Outage(t.Context())
				if err != nil {
					t.Fatalf("start an outage: %v", err)
				}
				defer resume()
				time.Sleep(500 * time.Millisecond) // let requests start failing
				began := time.Now()
				in.cancel()
				select {
				case err := <-in.done:
					in.once.Do(func() {})
					t.Logf("%s/%s: shutdown during the outage took %s: %v", b.Name(), guarantee, time.Since(began).Round(time.Millisecond), err)
				case <-time.After(cfg.ShutdownTimeout + 10*time.Second):
					t.Fatalf("Run still running %s after shutdown began during an outage (ShutdownTimeout %s)", time.Since(began), cfg.ShutdownTimeout)
				}
				if took := time.Since(began); took > cfg.ShutdownTimeout+5*time.Second {
					t.Errorf("shutdown took %s, want at most ShutdownTimeout %s and a little", took, cfg.ShutdownTimeout)
				}
				waitFor(t, 5*time.Second, "every pipeline client closed", func() bool {
					return hooks.closed.Load() == hooks.created.Load()
				})
			})
		})
	}
}
