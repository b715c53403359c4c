// Package consumer runs sshlateral's detection over a Kafka consumer group:
// one goroutine per assigned partition owns that partition's decoder and
// window state, results leave through an Encoder and a delivery (one per
// guarantee), and input offsets are committed only once everything they
// caused is acknowledged.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/processor"
)

// Encoder turns results into output records. The producer package's Encoder
// satisfies it; it must be safe for concurrent use.
type Encoder interface {
	Records(results []processor.Result, dst []*kgo.Record) ([]*kgo.Record, error)
}

// Pipeline is one sshlateral instance in a consumer group.
type Pipeline struct {
	cfg   Config
	enc   Encoder
	stats *counters
	logs  *logLimiter
	ready readiness
	// held maps an input partition to the first offset an open auditd
	// assembly holds (published at flushes; read, without locks, by the
	// exactly-once commit).
	held sync.Map
	// dlqMax bounds dead-letter values: DeadLetterMaxBytes, lowered to fit
	// the DLQ topic's limit at start.
	dlqMax int
	// dlqRejected (exactly-once) holds the dead letters an aborted
	// transaction had rejected for good, by source: written again without
	// their value, then left out (deadLetterStep).
	dlqRejected      sync.Map // dlqSource → deadLetterStep
	dlqRejectedCount atomic.Int64

	// wmu guards workers: group callbacks run between polls, while the
	// poll loop dispatches or ticks.
	wmu     sync.Mutex
	workers map[tp]*worker

	failOnce sync.Once
	failErr  error
	failed   chan struct{}

	// With InputKeying any (repartition.go): stage says which stage this
	// pipeline is, split is the stage-1 pipeline a stage-2 pipeline runs
	// beside it, and a stage-1 pipeline learns the partition counts of
	// its input (sources) and of the repartition topic at start.
	stage                 stage
	split                 *Pipeline
	sources, repartitions int32
}

// New fills cfg's derived defaults, validates it and returns a pipeline; it
// does not connect yet.
func New(cfg Config, enc Encoder) (*Pipeline, error) {
	cfg = cfg.WithDefaults()
	if cfg.Processor.Budget == nil && cfg.Processor.MaxStateBytes > 0 {
		// One byte budget for every partition of this process.
		cfg.Processor.Budget = processor.NewBudget(cfg.Processor.MaxStateBytes)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	if enc == nil {
		return nil, errors.New("encoder is required")
	}
	p := pipelineOf(cfg, enc)
	if cfg.InputKeying == KeyingAny {
		p.splitStages()
	}
	return p, nil
}

// pipelineOf is the pipeline of a checked config, not connected.
func pipelineOf(cfg Config, enc Encoder) *Pipeline {
	return &Pipeline{
		cfg:     cfg,
		enc:     enc,
		stats:   newCounters(),
		logs:    newLogLimiter(cfg.Logger),
		workers: map[tp]*worker{},
		failed:  make(chan struct{}),
		ready:   readiness{reason: "starting"},
		dlqMax:  cfg.DeadLetterMaxBytes,
	}
}

// Stats returns running totals.
func (p *Pipeline) Stats() Stats {
	if p.split != nil {
		return mergeStageStats(p.split.stats.snapshot(), p.stats.snapshot())
	}
	return p.stats.snapshot()
}

// Partitions returns the state of each partition this instance owns.
func (p *Pipeline) Partitions() []PartitionStat {
	if p.split != nil {
		return append(p.split.stats.partitionStats(), p.stats.partitionStats()...)
	}
	return p.stats.partitionStats()
}

// Run consumes until ctx is cancelled, then finishes in-flight work, commits
// and leaves the group within ShutdownTimeout. It returns a non-nil error for
// failures that would otherwise lose data (a write the broker rejected for
// good, an exactly-once commit of unknown outcome): nothing after the failed
// input is committed, so a restarted process re-reads it.
func (p *Pipeline) Run(ctx context.Context) error {
	if p.split != nil {
		return p.runStages(ctx)
	}
	return p.run(ctx)
}

func (p *Pipeline) run(ctx context.Context) error {
	limits, err := p.awaitTopics(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started
		}
		return err
	}
	if limits.dlqMaxBytes > 0 {
		p.dlqMax = min(p.dlqMax, max(limits.dlqMaxBytes-dlqHeadroom, 0))
	}
	p.sources, p.repartitions = limits.inputPartitions, limits.outputPartitions
	if p.cfg.Guarantee == ExactlyOnce {
		return p.runExactlyOnce(ctx)
	}
	return p.runAtLeastOnce(ctx)
}

// fatalErr returns the error fail recorded, or nil. Reading it through the
// closed channel orders the read after the write.
func (p *Pipeline) fatalErr() error {
	select {
	case <-p.failed:
		return p.failErr
	default:
		return nil
	}
}

// fail records the first fatal error: from then on no worker marks an
// offset, no callback commits, and Run stops.
func (p *Pipeline) fail(err error) {
	p.failOnce.Do(func() {
		p.failErr = err
		close(p.failed)
		p.cfg.Logger.Error("pipeline failed; nothing after the failed input will be committed", "err", err)
	})
}

// baseOpts are the group client's options common to both guarantees. hard
// is cancelled when the shutdown deadline passes: it interrupts every
// blocking client call.
func (p *Pipeline) baseOpts(hard context.Context, d delivery) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.WithContext(hard),
		kgo.SeedBrokers(p.cfg.Brokers...),
		kgo.ConsumerGroup(p.cfg.Group),
		kgo.ConsumeTopics(p.cfg.InputTopic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(p.cfg.SessionTimeout),
		kgo.HeartbeatInterval(p.cfg.HeartbeatInterval),
		kgo.RebalanceTimeout(p.cfg.RebalanceTimeout),
		kgo.RecordPartitioner(changelogAwarePartitioner{changelog: p.cfg.ChangelogTopic, repartition: p.repartitionOutput()}),
		kgo.ProducerBatchCompression(kgo.ZstdCompression(), kgo.Lz4Compression(), kgo.NoCompression()),
		kgo.ProducerLinger(0),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(func(ctx context.Context, cl *kgo.Client, a map[string][]int32) {
			p.assigned(hard, cl, d, a)
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, r map[string][]int32) {
			p.revoked(ctx, cl, d, r)
		}),
		kgo.OnPartitionsLost(p.lost),
		kgo.WithLogger(clientLog{p}),
		kgo.WithHooks(clientLog{p}),
	}
	return append(opts, p.cfg.ClientOpts...)
}

// changelogAwarePartitioner sends changelog records to the partition they
// name (co-partitioned with the input, as state must be), as it does stage
// 1's repartition records (partitioned by host, markers to every
// partition), and hashes every other record's key the way Kafka does.
type changelogAwarePartitioner struct{ changelog, repartition string }

func (c changelogAwarePartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if topic == c.changelog || (c.repartition != "" && topic == c.repartition) {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return kgo.StickyKeyPartitioner(nil).ForTopic(topic)
}

// assigned starts a worker for each new partition. Fetching stays paused
// until the worker has restored its state from the changelog, which it does
// on its own goroutine: the callback (and the group) never waits for a
// restore.
func (p *Pipeline) assigned(hard context.Context, cl *kgo.Client, d delivery, assigned map[string][]int32) {
	p.stats.rebalances.Add(1)
	parts := assigned[p.cfg.InputTopic]
	if len(parts) == 0 {
		return
	}
	p.startWorkers(hard, cl, d, parts)
}

func (p *Pipeline) startWorkers(hard context.Context, cl *kgo.Client, d delivery, parts []int32) {
	cl.PauseFetchPartitions(map[string][]int32{p.cfg.InputTopic: parts})
	p.wmu.Lock()
	defer p.wmu.Unlock()
	for _, partition := range parts {
		w := p.newWorker(cl, d, partition)
		p.workers[w.tp] = w
		go w.run(hard)
	}
}

// revoked stops the revoked partitions' workers, waits for their in-flight
// work to be acknowledged, then commits: the next owner starts exactly where
// this one stopped. After a failure nothing is committed.
func (p *Pipeline) revoked(ctx context.Context, cl *kgo.Client, d delivery, revoked map[string][]int32) {
	p.stats.rebalances.Add(1)
	p.stopWorkers(revoked, false)
	if p.cfg.Guarantee == ExactlyOnce || p.fatalErr() != nil {
		// Exactly-once: the session aborts; offsets move only with a
		// committed transaction.
		return
	}
	if err := cl.CommitMarkedOffsets(ctx); err != nil {
		p.stats.commitFailures.Add(1)
		p.cfg.Logger.Error("commit on revoke failed", "topic", p.cfg.InputTopic, "err", err)
	}
}

// lost drops the partitions without committing: another member may own them.
func (p *Pipeline) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	p.stats.rebalances.Add(1)
	p.stopWorkers(lost, true)
}

// stopWorkers stops the given partitions' workers and waits for them: each
// finishes the batch in hand (acknowledged and marked, or failed). With
// discard (the partitions are lost: another member may own them already)
// a worker writes nothing more, not even its pending changelog.
func (p *Pipeline) stopWorkers(parts map[string][]int32, discard bool) {
	var stopping []*worker
	p.wmu.Lock()
	for topic, partitions := range parts {
		for _, partition := range partitions {
			key := tp{topic, partition}
			if w, ok := p.workers[key]; ok {
				delete(p.workers, key)
				if discard {
					w.discard.Store(true)
				}
				w.stop()
				stopping = append(stopping, w)
			}
		}
	}
	p.wmu.Unlock()
	for _, w := range stopping {
		<-w.done
		p.stats.dropPartition(w.tp)
	}
}

func (p *Pipeline) stopAllWorkers() { p.stopWorkers(p.ownedPartitions(), false) }

// ownedPartitions lists the partitions with a worker.
func (p *Pipeline) ownedPartitions() map[string][]int32 {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	all := map[string][]int32{}
	for key := range p.workers {
		all[key.topic] = append(all[key.topic], key.partition)
	}
	return all
}

func (p *Pipeline) worker(topic string, partition int32) (*worker, bool) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	w, ok := p.workers[tp{topic, partition}]
	return w, ok
}

// reportFetchErrors logs (rate-limited) and counts every fetch error but the
// cancellation of the poll itself.
func (p *Pipeline) reportFetchErrors(fetches kgo.Fetches) {
	fetches.EachError(func(topic string, partition int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		p.stats.countKafkaError("fetch")
		p.logs.warn("fetch", "fetch error", "topic", topic, "partition", partition, "err", err)
	})
}

// shutdownDeadline cancels hard ShutdownTimeout after ctx ends or the
// pipeline fails: from then on every blocking call (a write to a broker
// that does not answer, a commit, the group leave) is interrupted. The
// returned function disarms it.
func (p *Pipeline) shutdownDeadline(ctx context.Context, hardCancel context.CancelFunc) (stop func()) {
	disarm := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-p.failed:
		case <-disarm:
			return
		}
		t := time.NewTimer(p.cfg.ShutdownTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			hardCancel()
		case <-disarm:
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(disarm) }) }
}

// closeClient runs closeFn (leave the group, close the client) and reports
// whether it had to be cut short by the shutdown deadline (hard).
func closeClient(hard context.Context, closeFn func()) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		closeFn()
	}()
	select {
	case <-done:
		return nil
	case <-hard.Done():
	}
	// The client's context is hard: Close now returns promptly.
	<-done
	return errors.New("shutdown: deadline exceeded; the client was closed without a clean leave")
}
