package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/sshlateral/sshlateral/integration/kafkaimage"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/wait"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// kafkaVersion is the Apache Kafka release the suite targets. It must equal
	// <kafka.version> in kafkaimage/pom.xml, so the image built there and the
	// official image behave the same.
	kafkaVersion = "4.3.1"

	// defaultKafkaImage is used when SSHLATERAL_KAFKA_IMAGE is unset.
	defaultKafkaImage = "apache/kafka:" + kafkaVersion

	envIntegration = "SSHLATERAL_INTEGRATION"
	envKafkaImage  = "SSHLATERAL_KAFKA_IMAGE"

	// containerLabel marks every container the suite starts, so .ci/run can
	// remove leftovers of an interrupted run.
	containerLabel = "org.sshlateral.test"

	brokerKfake = "kfake"
	brokerKafka = "kafka"

	// kafkaStartTimeout bounds image pull, container start and broker readiness.
	kafkaStartTimeout = 5 * time.Minute
	// kafkaReadyTimeout bounds the wait for a started (or restarted) container
	// to answer metadata requests.
	kafkaReadyTimeout = 3 * time.Minute
	// kafkaStopTimeout is the grace period for a controlled shutdown before the
	// engine kills the broker.
	kafkaStopTimeout = 30 * time.Second
)

// errUnsupported is returned by testBroker methods a broker cannot perform.
var errUnsupported = errors.New("operation not supported by this broker")

// testBroker is a Kafka-compatible broker a scenario runs against.
type testBroker interface {
	// Name is "kfake" or "kafka"; forEachBroker uses it as the subtest name.
	Name() string
	// Seeds are the bootstrap addresses, all on 127.0.0.1.
	Seeds() []string
	// Restart stops the broker and starts it again on the same ports with the
	// same data: topics, records, committed offsets and transaction state
	// survive. Existing clients reconnect by themselves. Both brokers here
	// support it; a broker that cannot returns errUnsupported.
	Restart(ctx context.Context) error
	// Outage makes the broker unreachable to clients (connections refused
	// or unanswered) until resume is called; resume is also safe to call
	// again or after the test's other cleanups.
	Outage(ctx context.Context) (resume func(), err error)
}

// scenarioCounts counts forEachBroker scenarios per broker name; TestMain
// reports them so a run that silently skipped real Kafka is visible.
var scenarioCounts = map[string]*atomic.Int64{
	brokerKfake: new(atomic.Int64),
	brokerKafka: new(atomic.Int64),
}

// integrationEnabled reports whether the real-Kafka runs are requested.
func integrationEnabled() bool {
	return os.Getenv(envIntegration) == "1"
}

// forEachBroker runs fn as a subtest on a fresh kfake cluster and, when
// SSHLATERAL_INTEGRATION=1, on a fresh real Kafka broker. Each run gets its own
// broker, so scenarios never share topics, groups or restarts.
func forEachBroker(t *testing.T, fn func(t *testing.T, b testBroker)) {
	t.Helper()
	t.Run(brokerKfake, func(t *testing.T) {
		b := startKfake(t, 1)
		scenarioCounts[brokerKfake].Add(1)
		fn(t, b)
	})
	t.Run(brokerKafka, func(t *testing.T) {
		b := startKafka(t)
		scenarioCounts[brokerKafka].Add(1)
		fn(t, b)
	})
}

// kfakeBroker is an in-process single-broker kfake cluster persisted to a test
// temp dir, which is what lets Restart keep data like a real broker does.
type kfakeBroker struct {
	mu      sync.Mutex
	cluster *kfake.Cluster
	opts    []kfake.Opt // reused by Restart, including the fixed port
	seeds   []string
}

// startKfake starts a one-broker kfake cluster on 127.0.0.1 that is closed when
// the test ends. partitionsHint is the partition count of topics created with
// -1 partitions or auto-created (real Kafka here uses num.partitions=1); values
// below 1 mean 1. Auto topic creation stays off: tests create topics explicitly
// with createTopic.
func startKfake(t *testing.T, partitionsHint int) testBroker {
	t.Helper()
	if partitionsHint < 1 {
		partitionsHint = 1
	}
	opts := []kfake.Opt{
		kfake.ClusterID("sshlateral-kfake"),
		kfake.DefaultNumPartitions(partitionsHint),
		kfake.DataDir(t.TempDir()),
	}
	cluster, err := kfake.NewCluster(append(opts, kfake.Ports(0))...)
	if err != nil {
		t.Fatalf("start kfake cluster: %v", err)
	}
	b := &kfakeBroker{cluster: cluster, seeds: cluster.ListenAddrs()}
	t.Cleanup(b.close)

	_, portText, err := net.SplitHostPort(b.seeds[0])
	if err != nil {
		t.Fatalf("parse kfake listen address %q: %v", b.seeds[0], err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		t.Fatalf("parse kfake port %q: %v", portText, err)
	}
	b.opts = append(opts, kfake.Ports(port))
	return b
}

func (b *kfakeBroker) Name() string { return brokerKfake }

func (b *kfakeBroker) Seeds() []string { return append([]string(nil), b.seeds...) }

// Restart closes the cluster, which flushes its state to the data dir, and
// starts a new one from that dir on the same port.
func (b *kfakeBroker) Restart(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cluster != nil {
		b.cluster.Close()
		b.cluster = nil
	}
	// The port was just released; retry briefly in case the kernel is slow to
	// hand it back.
	for {
		cluster, err := kfake.NewCluster(b.opts...)
		if err == nil {
			b.cluster = cluster
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("restart kfake on %s: %w", b.seeds[0], errors.Join(err, ctx.Err()))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Outage leaves every request unanswered (connections stay open), as a
// frozen broker does; resume answers again. Requests already waiting are
// never answered: their clients time out and retry.
func (b *kfakeBroker) Outage(context.Context) (func(), error) {
	b.mu.Lock()
	cluster := b.cluster
	b.mu.Unlock()
	var down atomic.Bool
	down.Store(true)
	cluster.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
		if !down.Load() {
			return nil, nil, false
		}
		cluster.KeepControl()
		return nil, nil, true
	})
	return func() { down.Store(false) }, nil
}

func (b *kfakeBroker) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cluster != nil {
		b.cluster.Close()
		b.cluster = nil
	}
}

// kafkaBroker is a real Kafka broker in a container on the host network.
type kafkaBroker struct {
	ctr   *testcontainers.DockerContainer
	seeds []string
}

// startKafka starts a single-node KRaft broker (broker and controller in one
// process) from SSHLATERAL_KAFKA_IMAGE, or the official image, and terminates
// it when the test ends. It skips the test unless SSHLATERAL_INTEGRATION=1; when
// that is set, any failure to start is fatal.
func startKafka(t *testing.T) testBroker {
	t.Helper()
	if !integrationEnabled() {
		t.Skipf("real Kafka disabled: set %s=1 (and %s, see integration/kafkaimage/build.sh) to run it", envIntegration, envKafkaImage)
	}
	image := os.Getenv(envKafkaImage)
	if image == "" {
		image = defaultKafkaImage
	}
	ports := freeLoopbackPorts(t, 2)
	port, controllerPort := ports[0], ports[1]
	seed := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	controller := net.JoinHostPort("127.0.0.1", strconv.Itoa(controllerPort))

	// The names are the official image's (KIP-975); kafkaimage/entrypoint.sh
	// reads the same ones. Log dirs stay at each image's default inside the
	// container filesystem, which survives a stop and start.
	env := kafkaimage.Env(seed, controller)

	start := time.Now()
	ctr, err := runHostContainer(t, image, env, kafkaStartTimeout, kafkaReady{seed: seed, timeout: kafkaReadyTimeout})
	if err != nil {
		t.Fatalf("start Kafka container from image %q on %s: %v\n"+
			"(no registry here? build the image with integration/kafkaimage/build.sh and set %s to the tag it prints)\n%s",
			image, seed, err, envKafkaImage, containerLogTail(ctr, 40))
	}
	t.Logf("kafka %s from %s ready on %s in %s", kafkaVersion, image, seed, time.Since(start).Round(time.Millisecond))
	return &kafkaBroker{ctr: ctr, seeds: []string{seed}}
}

func (b *kafkaBroker) Name() string { return brokerKafka }

func (b *kafkaBroker) Seeds() []string { return append([]string(nil), b.seeds...) }

// Restart stops the container (controlled shutdown, SIGKILL after
// kafkaStopTimeout) and starts the same container again; Start returns once
// the broker answers metadata requests.
func (b *kafkaBroker) Restart(ctx context.Context) error {
	stopTimeout := kafkaStopTimeout
	if err := b.ctr.Stop(ctx, &stopTimeout); err != nil {
		return fmt.Errorf("stop kafka broker %s: %w", b.seeds[0], err)
	}
	if err := b.ctr.Start(ctx); err != nil {
		return fmt.Errorf("start kafka broker %s again: %w\n%s", b.seeds[0], err, containerLogTail(b.ctr, 40))
	}
	return nil
}

// Outage freezes the broker's process (docker pause): connections stay open
// and nothing answers, the harder kind of outage for a client.
func (b *kafkaBroker) Outage(ctx context.Context) (func(), error) {
	id := b.ctr.GetContainerID()
	if out, err := exec.CommandContext(ctx, "docker", "pause", id).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("docker pause %s: %v: %s", id, err, out)
	}
	var once sync.Once
	return func() {
		once.Do(func() { _ = exec.Command("docker", "unpause", id).Run() })
	}, nil
}

// kafkaReady is a wait strategy that succeeds once the broker answers a
// metadata request listing itself and a controller. It runs on first start and
// on every Start after a Stop, and fails fast when the container exits. A log
// line check would not do for restarts: the old "Kafka Server started" line is
// still in the container log.
type kafkaReady struct {
	seed    string
	timeout time.Duration
}

func (k kafkaReady) String() string { return "kafka metadata on " + k.seed }

func (k kafkaReady) WaitUntilReady(ctx context.Context, target wait.StrategyTarget) error {
	return kafkaimage.WaitReady(ctx, k.seed, k.timeout, func(ctx context.Context) error {
		state, err := target.State(ctx)
		if err != nil {
			return fmt.Errorf("container state: %w", err)
		}
		if !state.Running {
			return fmt.Errorf("broker container is %s (exit code %d)", state.Status, state.ExitCode)
		}
		return nil
	})
}

// runHostContainer starts image on the host network (the test's servers
// listen on loopback ports they are told in env), labelled for .ci/run's
// clean-up, and removes it when the test ends; it returns once ready holds
// or startTimeout passes.
func runHostContainer(t *testing.T, image string, env map[string]string, startTimeout time.Duration, ready wait.Strategy) (*testcontainers.DockerContainer, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()
	ctr, err := testcontainers.Run(ctx, image,
		testcontainers.WithLogger(tclog.TestLogger(t)),
		testcontainers.WithEnv(env),
		testcontainers.WithLabels(map[string]string{containerLabel: "1"}),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.NetworkMode = "host"
		}),
		testcontainers.WithWaitStrategy(ready),
	)
	// Registered before the error check so a half-started container is removed.
	testcontainers.CleanupContainer(t, ctr)
	return ctr, err
}

// freeLoopbackPorts asks the kernel for n distinct unused 127.0.0.1 ports.
// All listeners stay open until every port is chosen, so the ports differ; they
// are released before the broker binds them, a window in which another process
// could take one (the broker would then fail to start, loudly).
func freeLoopbackPorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("pick a free loopback port: %v", err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// containerLogTail returns the last n lines of the container's log, for
// failure messages.
func containerLogTail(ctr *testcontainers.DockerContainer, n int) string {
	if ctr == nil {
		return "(no container)"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := ctr.Logs(ctx)
	if err != nil {
		return fmt.Sprintf("(container log unavailable: %v)", err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Sprintf("(container log unreadable: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "container log (last lines):\n" + strings.Join(lines, "\n")
}

// newClient returns a franz-go client for b that is closed when the test ends.
func newClient(t *testing.T, b testBroker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Seeds()...)}, opts...)...)
	if err != nil {
		t.Fatalf("new kafka client for %s %v: %v", b.Name(), b.Seeds(), err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// createTopic creates topic with replication factor 1 and waits until every
// partition has a leader, so producing right after it does not race topic
// propagation on a real broker.
func createTopic(t *testing.T, b testBroker, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	adm := kadm.NewClient(newClient(t, b))
	if _, err := adm.CreateTopic(ctx, partitions, 1, configs, topic); err != nil {
		t.Fatalf("create topic %q with %d partitions on %s: %v", topic, partitions, b.Name(), err)
	}
	for {
		details, err := adm.ListTopics(ctx, topic)
		if err == nil {
			if ready, why := topicReady(details, topic, partitions); ready {
				return
			} else {
				err = errors.New(why)
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("topic %q on %s not ready: %v", topic, b.Name(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// topicReady reports whether topic has the expected partitions, all led.
func topicReady(details kadm.TopicDetails, topic string, partitions int32) (bool, string) {
	d, ok := details[topic]
	switch {
	case !ok:
		return false, "topic missing from metadata"
	case d.Err != nil:
		return false, d.Err.Error()
	case int32(len(d.Partitions)) != partitions:
		return false, fmt.Sprintf("%d of %d partitions in metadata", len(d.Partitions), partitions)
	}
	for _, p := range d.Partitions {
		if p.Err != nil || p.Leader < 0 {
			return false, fmt.Sprintf("partition %d has no leader (%v)", p.Partition, p.Err)
		}
	}
	return true, ""
}

// TestBrokerSmoke proves both brokers carry what the acceptance suite relies
// on: idempotent produce, group consumption with commits, transactions with
// read_committed isolation, and a restart that keeps records and offsets.
func TestBrokerSmoke(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b testBroker) {
		t.Run("transactions are isolated", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			const topic = "smoke-txn"
			createTopic(t, b, topic, 1, nil)
			producer := newClient(t, b,
				kgo.TransactionalID("sshlateral-smoke-txn"),
				kgo.DefaultProduceTopic(topic),
				kgo.RequiredAcks(kgo.AllISRAcks()),
			)
			committedA := produceTransaction(ctx, t, producer, "committed-a", 10, kgo.TryCommit)
			aborted := produceTransaction(ctx, t, producer, "aborted", 10, kgo.TryAbort)
			committedB := produceTransaction(ctx, t, producer, "committed-b", 10, kgo.TryCommit)

			// The aborted batch sits between the committed ones, so a leak would
			// show up before the read stops.
			committed := append(append([]string(nil), committedA...), committedB...)
			got := consumeFromStart(ctx, t, b, topic, len(committed), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
			assertSameValues(t, "read_committed", committed, got)

			// read_uncommitted sees the aborted records: they were written and
			// hidden by isolation, not lost.
			all := append(append(append([]string(nil), committedA...), aborted...), committedB...)
			got = consumeFromStart(ctx, t, b, topic, len(all), kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
			assertSameValues(t, "read_uncommitted", all, got)
		})

		t.Run("group offsets and records survive a restart", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			const (
				topic = "smoke"
				group = "sshlateral-smoke"
			)
			createTopic(t, b, topic, 3, nil)

			before := produceBatch(ctx, t, b, topic, "before-restart", 100)
			assertSameValues(t, "group read before restart", before, consumeGroup(ctx, t, b, topic, group, len(before)))

			start := time.Now()
			if err := b.Restart(ctx); err != nil {
				t.Fatalf("restart %s: %v", b.Name(), err)
			}
			t.Logf("%s restarted in %s", b.Name(), time.Since(start).Round(time.Millisecond))

			after := produceBatch(ctx, t, b, topic, "after-restart", 100)
			// The group resumes from the offsets it committed before the restart.
			assertSameValues(t, "group read after restart", after, consumeGroup(ctx, t, b, topic, group, len(after)))
			// A new group reads both batches: the records survived the restart.
			both := append(append([]string(nil), before...), after...)
			assertSameValues(t, "new group read after restart", both, consumeGroup(ctx, t, b, topic, group+"-fresh", len(both)))
		})
	})
}

// produceBatch produces n keyed records with acks=all and idempotence and
// returns their values.
func produceBatch(ctx context.Context, t *testing.T, b testBroker, topic, prefix string, n int) []string {
	t.Helper()
	cl := newClient(t, b, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	records, values := makeRecords(prefix, n)
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatalf("produce %d records to %s on %s: %v", n, topic, b.Name(), err)
	}
	return values
}

// produceTransaction produces n records in one transaction and ends it with
// commit (kgo.TryCommit or kgo.TryAbort).
func produceTransaction(ctx context.Context, t *testing.T, cl *kgo.Client, prefix string, n int, commit kgo.TransactionEndTry) []string {
	t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatalf("begin transaction %s: %v", prefix, err)
	}
	records, values := makeRecords(prefix, n)
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatalf("produce transaction %s: %v", prefix, err)
	}
	if err := cl.EndTransaction(ctx, commit); err != nil {
		t.Fatalf("end transaction %s (commit=%v): %v", prefix, bool(commit), err)
	}
	return values
}

func makeRecords(prefix string, n int) ([]*kgo.Record, []string) {
	records := make([]*kgo.Record, n)
	values := make([]string, n)
	for i := range n {
		values[i] = fmt.Sprintf("%s-%03d", prefix, i)
		records[i] = &kgo.Record{Key: []byte(fmt.Sprintf("host-%02d", i%17)), Value: []byte(values[i])}
	}
	return records, values
}

// consumeGroup reads n records as member of group, commits them and leaves the
// group.
func consumeGroup(ctx context.Context, t *testing.T, b testBroker, topic, group string, n int) []string {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(b.Seeds()...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
	)
	if err != nil {
		t.Fatalf("new group consumer %s for %s: %v", group, topic, err)
	}
	defer cl.Close()
	values := pollValues(ctx, t, cl, topic, n)
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit offsets of group %s on %s: %v", group, topic, err)
	}
	return values
}

// consumeFromStart reads n records of topic without a group.
func consumeFromStart(ctx context.Context, t *testing.T, b testBroker, topic string, n int, opts ...kgo.Opt) []string {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(b.Seeds()...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, opts...)...)
	if err != nil {
		t.Fatalf("new consumer for %s: %v", topic, err)
	}
	defer cl.Close()
	return pollValues(ctx, t, cl, topic, n)
}

func pollValues(ctx context.Context, t *testing.T, cl *kgo.Client, topic string, n int) []string {
	t.Helper()
	var values []string
	for len(values) < n {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records from %s: %v", len(values), n, topic, ctx.Err())
		}
		for _, fe := range fetches.Errors() {
			t.Fatalf("fetch %s partition %d: %v", fe.Topic, fe.Partition, fe.Err)
		}
		fetches.EachRecord(func(r *kgo.Record) { values = append(values, string(r.Value)) })
	}
	return values
}

// assertSameValues compares record values ignoring order (partitions interleave)
// but not multiplicity, so duplicates and losses both fail.
func assertSameValues(t *testing.T, what string, want, got []string) {
	t.Helper()
	wantSorted := slices.Sorted(slices.Values(want))
	gotSorted := slices.Sorted(slices.Values(got))
	if !slices.Equal(wantSorted, gotSorted) {
		t.Fatalf("%s: got %d values, want %d\n got: %v\nwant: %v", what, len(got), len(want), gotSorted, wantSorted)
	}
}
