// Package consumer runs sshlateral's detection over a Kafka consumer group:
// one goroutine per assigned partition owns that partition's decoder and
// window state, results leave through an Encoder, and input offsets are
// committed only once everything they caused is acknowledged.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"

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

	// wmu guards workers: group callbacks may run between empty polls,
	// while the poll loop dispatches or ticks.
	wmu     sync.Mutex
	workers map[tp]*worker

	failOnce sync.Once
	failErr  error
	failed   chan struct{}
}

// New fills cfg's derived defaults, validates it and returns a pipeline; it
// does not connect yet.
func New(cfg Config, enc Encoder) (*Pipeline, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	if enc == nil {
		return nil, errors.New("encoder is required")
	}
	return &Pipeline{
		cfg:     cfg,
		enc:     enc,
		stats:   newCounters(),
		workers: map[tp]*worker{},
		failed:  make(chan struct{}),
	}, nil
}

// Stats returns running totals.
func (p *Pipeline) Stats() Stats { return p.stats.snapshot() }

// Partitions returns the state of each partition this instance owns.
func (p *Pipeline) Partitions() []PartitionStat { return p.stats.partitionStats() }

// Run consumes until ctx is cancelled, then finishes in-flight work, commits
// and leaves the group within ShutdownTimeout. It returns a non-nil error only
// for failures that would otherwise lose data (a produce the broker rejected
// for good, an exactly-once commit of unknown outcome); restarting the
// process is then the safe recovery, since uncommitted input is re-read.
func (p *Pipeline) Run(ctx context.Context) error {
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

// fail records the first fatal error and stops Run.
func (p *Pipeline) fail(err error) {
	p.failOnce.Do(func() {
		p.failErr = err
		close(p.failed)
	})
}

func (p *Pipeline) baseOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(p.cfg.Brokers...),
		kgo.ConsumerGroup(p.cfg.Group),
		kgo.ConsumeTopics(p.cfg.InputTopic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(p.cfg.SessionTimeout),
		kgo.RecordPartitioner(changelogAwarePartitioner{changelog: p.cfg.ChangelogTopic}),
		kgo.ProducerBatchCompression(kgo.ZstdCompression(), kgo.Lz4Compression(), kgo.NoCompression()),
		kgo.ProducerLinger(0),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(p.assigned),
		kgo.OnPartitionsRevoked(p.revoked),
		kgo.OnPartitionsLost(p.lost),
	}
	return append(opts, p.cfg.ClientOpts...)
}

// changelogAwarePartitioner sends changelog records to the partition they
// name (co-partitioned with the input, as state must be) and hashes every
// other record's key the way Kafka does.
type changelogAwarePartitioner struct{ changelog string }

func (c changelogAwarePartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if topic == c.changelog {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return kgo.StickyKeyPartitioner(nil).ForTopic(topic)
}

// assigned builds each new partition's state, restored from the changelog,
// before any of its records are processed.
func (p *Pipeline) assigned(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	p.stats.rebalances.Add(1)
	p.wmu.Lock()
	defer p.wmu.Unlock()
	parts := assigned[p.cfg.InputTopic]
	if len(parts) == 0 {
		return
	}
	restored, err := p.restore(ctx, parts)
	if err != nil {
		p.fail(err)
		return
	}
	for _, partition := range parts {
		w, err := p.newWorker(cl, partition, restored[partition])
		if err != nil {
			p.fail(err)
			return
		}
		p.workers[w.tp] = w
		if p.cfg.Guarantee == AtLeastOnce {
			go w.runAtLeastOnce()
		} else {
			go w.runExactlyOnce()
		}
		p.cfg.Logger.Info("partition assigned", "topic", p.cfg.InputTopic, "partition", partition,
			"restored_entries", len(restored[partition].changes), "resume_offset", restored[partition].nextOffset)
	}
}

// revoked stops the revoked partitions' workers, waits for their in-flight
// work to be acknowledged, then commits: the next owner starts exactly where
// this one stopped.
func (p *Pipeline) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	p.stats.rebalances.Add(1)
	p.wmu.Lock()
	p.stopWorkers(revoked)
	p.wmu.Unlock()
	if p.cfg.Guarantee == ExactlyOnce {
		return // the transact session aborts; offsets move only with a committed transaction
	}
	if err := cl.CommitMarkedOffsets(ctx); err != nil {
		p.stats.commitFailures.Add(1)
		p.cfg.Logger.Error("commit on revoke failed", "topic", p.cfg.InputTopic, "err", err)
	}
}

// lost drops the partitions without committing: another member may own them.
func (p *Pipeline) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	p.stats.rebalances.Add(1)
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.stopWorkers(lost)
}

// stopWorkers stops and waits for the given partitions' workers; p.wmu is held.
func (p *Pipeline) stopWorkers(parts map[string][]int32) {
	var stopping []*worker
	for topic, partitions := range parts {
		for _, partition := range partitions {
			key := tp{topic, partition}
			w, ok := p.workers[key]
			if !ok {
				continue
			}
			delete(p.workers, key)
			close(w.quit)
			stopping = append(stopping, w)
		}
	}
	for _, w := range stopping {
		<-w.done
		p.stats.mu.Lock()
		delete(p.stats.partitions, w.tp)
		p.stats.mu.Unlock()
	}
}

func (p *Pipeline) stopAllWorkers() {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.stopWorkers(p.ownedPartitions())
}

// ownedPartitions lists the partitions with a worker; p.wmu is held.
func (p *Pipeline) ownedPartitions() map[string][]int32 {
	all := map[string][]int32{}
	for key := range p.workers {
		all[key.topic] = append(all[key.topic], key.partition)
	}
	return all
}

// runAtLeastOnce is the poll loop of the default mode: it hands each
// partition's records to its worker; workers produce, wait for acks and mark.
func (p *Pipeline) runAtLeastOnce(ctx context.Context) error {
	// BlockRebalanceOnPoll keeps a rebalance out of the dispatch of a
	// poll; the revoke callback then waits for the worker's in-flight batch
	// to be acknowledged and marked, so the commit on revoke covers it.
	cl, err := kgo.NewClient(append(p.baseOpts(), kgo.AutoCommitMarks(), kgo.BlockRebalanceOnPoll())...)
	if err != nil {
		return fmt.Errorf("create kafka client: %w", err)
	}
	// Polling stops on shutdown or on the first fatal error.
	pollCtx, cancelPoll := context.WithCancel(ctx)
	defer cancelPoll()
	go func() {
		select {
		case <-p.failed:
			cancelPoll()
		case <-pollCtx.Done():
		}
	}()

	for {
		fetches := cl.PollRecords(pollCtx, p.cfg.MaxPollRecords)
		if fetches.IsClientClosed() || pollCtx.Err() != nil {
			break
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			p.cfg.Logger.Warn("fetch error", "topic", topic, "partition", partition, "err", err)
		})
		fetches.EachPartition(func(ftp kgo.FetchTopicPartition) {
			if len(ftp.Records) == 0 {
				return
			}
			p.wmu.Lock()
			w, ok := p.workers[tp{ftp.Topic, ftp.Partition}]
			p.wmu.Unlock()
			if !ok {
				return // revoked between fetch and dispatch; the records are not marked
			}
			select {
			case w.batches <- ftp:
			case <-w.done:
			}
		})
		cl.AllowRebalance()
	}
	cancelPoll()
	return p.shutdown(cl)
}

// shutdown stops every worker (each finishes its batch and waits for acks),
// commits what they marked and leaves the group, all within ShutdownTimeout.
func (p *Pipeline) shutdown(cl *kgo.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.ShutdownTimeout)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.stopAllWorkers()
		if p.fatalErr() == nil {
			if err := cl.CommitMarkedOffsets(ctx); err != nil {
				p.stats.commitFailures.Add(1)
				p.cfg.Logger.Error("final commit failed", "topic", p.cfg.InputTopic, "err", err)
			}
		}
		cl.AllowRebalance()
		// Leaving the group revokes nothing left to us: workers are stopped.
		cl.CloseAllowingRebalance()
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("shutdown: %w", ctx.Err())
	}
	return p.fatalErr()
}
