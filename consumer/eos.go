package consumer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// eosJob asks a partition worker to process records (nil: a tick) and hand
// back what to produce inside the current transaction.
type eosJob struct {
	recs      []*kgo.Record
	highWater int64 // -1 on a tick
	now       time.Time
	reply     chan eosReply
}

type eosReply struct {
	out       []*kgo.Record
	changelog []*kgo.Record
	err       error
}

func (w *worker) runExactlyOnce() {
	defer close(w.done)
	for {
		select {
		case <-w.quit:
			return
		case job := <-w.jobs:
			if job.highWater >= 0 {
				w.highWater = job.highWater
			}
			start := time.Now()
			out, changelog, err := w.step(job.recs, job.now)
			job.reply <- eosReply{out: out, changelog: changelog, err: err}
			w.publishStats()
			w.observe(start, len(job.recs))
		}
	}
}

// ask sends a job to the worker and waits for its reply.
func (w *worker) ask(recs []*kgo.Record, highWater int64, now time.Time) eosReply {
	reply := make(chan eosReply, 1)
	select {
	case w.jobs <- eosJob{recs: recs, highWater: highWater, now: now, reply: reply}:
		return <-reply
	case <-w.done:
		return eosReply{err: errStopped}
	}
}

// runExactlyOnce is the poll loop of exactly-once mode: one transaction per
// CommitInterval holds the risk records, dead letters, changelog writes and
// the input offsets, so all become visible together or not at all.
func (p *Pipeline) runExactlyOnce(ctx context.Context) error {
	txnID := p.cfg.TransactionalID
	if txnID == "" {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("transactional id: %w", err)
		}
		txnID = p.cfg.Group + "-" + hex.EncodeToString(b[:])
	}
	return p.transactSession(ctx, txnID)
}

// ErrUnknownOutcome is wrapped by Run's error when an exactly-once
// transaction ended with an error (franz-go: the outcome is unknown). The
// client cannot be trusted to leave the group cleanly, so the safe recovery
// is a new process: it rebuilds state from what Kafka committed.
var ErrUnknownOutcome = errors.New("transaction outcome unknown")

// transactSession runs the GroupTransactSession until ctx ends (nil) or a
// fatal error.
func (p *Pipeline) transactSession(ctx context.Context, txnID string) error {
	// No BlockRebalanceOnPoll here: as franz-go advises for transact
	// sessions, a rebalance may happen at any time and aborts the open
	// transaction; blocking it would stall End behind the rebalance.
	opts := append(p.baseOpts(),
		kgo.TransactionalID(txnID),
		kgo.TransactionTimeout(p.cfg.TransactionTimeout),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
	)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return fmt.Errorf("create transactional kafka client: %w", err)
	}
	cl := sess.Client()
	p.cfg.Logger.Info("exactly-once session started", "transactional_id", txnID)

	lastTick := time.Now()
	var runErr error
	for ctx.Err() == nil && runErr == nil {
		if runErr = p.fatalErr(); runErr != nil {
			continue
		}
		if err := sess.Begin(); err != nil {
			runErr = fmt.Errorf("begin transaction: %w: %w", ErrUnknownOutcome, err)
			break
		}
		promise := kgo.AbortingFirstErrPromise(cl)
		var outputs int64
		// moved: a partition was revoked while this transaction held its
		// records; the transaction must not commit.
		moved := false
		produce := func(recs []*kgo.Record) {
			for _, r := range recs {
				if r.Topic == p.cfg.OutputTopic {
					outputs++
				}
				// Not ctx: on shutdown the last transaction still commits
				// what it processed (End bounds the wait).
				sess.Produce(context.Background(), r, promise.Promise())
			}
		}
		deadline := time.Now().Add(p.cfg.CommitInterval)
		for time.Now().Before(deadline) && runErr == nil {
			pollCtx, cancel := context.WithDeadline(ctx, deadline)
			fetches := sess.PollRecords(pollCtx, p.cfg.MaxPollRecords)
			cancel()
			if fetches.IsClientClosed() {
				runErr = errors.New("kafka client closed")
				break
			}
			fetches.EachError(func(topic string, partition int32, err error) {
				if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
					p.cfg.Logger.Warn("fetch error", "topic", topic, "partition", partition, "err", err)
				}
			})
			now := time.Now()
			fetches.EachPartition(func(ftp kgo.FetchTopicPartition) {
				if len(ftp.Records) == 0 || runErr != nil {
					return
				}
				p.wmu.Lock()
				w, ok := p.workers[tp{ftp.Topic, ftp.Partition}]
				p.wmu.Unlock()
				if !ok {
					moved = true
					return
				}
				rep := w.ask(ftp.Records, ftp.HighWatermark, now)
				if errors.Is(rep.err, errStopped) {
					moved = true
					return
				}
				if rep.err != nil {
					runErr = rep.err
					return
				}
				produce(rep.out)
				produce(rep.changelog)
			})
			if ctx.Err() != nil {
				break
			}
		}
		if runErr == nil && time.Since(lastTick) >= p.cfg.TickInterval {
			lastTick = time.Now()
			p.wmu.Lock()
			workers := make([]*worker, 0, len(p.workers))
			for _, w := range p.workers {
				workers = append(workers, w)
			}
			p.wmu.Unlock()
			for _, w := range workers {
				rep := w.ask(nil, -1, lastTick)
				if errors.Is(rep.err, errStopped) {
					moved = true
					continue
				}
				if rep.err != nil {
					runErr = rep.err
					break
				}
				produce(rep.out)
				produce(rep.changelog)
			}
		}
		// End may wait behind a rebalance; beyond the transaction timeout
		// the broker has aborted the transaction anyway.
		endCtx, cancel := context.WithTimeout(context.Background(), p.cfg.TransactionTimeout)
		committed, err := sess.End(endCtx, kgo.TransactionEndTry(runErr == nil && !moved && promise.Err() == nil))
		cancel()
		switch {
		case err != nil:
			// An End error leaves the outcome unknown (franz-go's advice):
			// stop; a new process rebuilds state from what was committed.
			p.stats.commitFailures.Add(1)
			if runErr == nil {
				runErr = fmt.Errorf("end transaction on input topic %s: %w: %w", p.cfg.InputTopic, ErrUnknownOutcome, err)
			}
		case committed:
			p.stats.written.Add(outputs)
		default:
			p.stats.aborts.Add(1)
			p.cfg.Logger.Warn("transaction aborted; rebuilding partition state from the changelog",
				"topic", p.cfg.InputTopic, "partition_moved", moved, "produce_err", promise.Err())
			if err := p.rebuildWorkers(ctx, cl); err != nil && runErr == nil {
				runErr = err
			}
		}
	}
	p.stopAllWorkers()
	if errors.Is(runErr, ErrUnknownOutcome) {
		// A client left in an invalid state may hang while leaving, and
		// keep the group waiting for it: exit, and let the broker expire
		// the member.
		go sess.Close()
		return runErr
	}
	closeDone := make(chan struct{})
	go func() { sess.Close(); close(closeDone) }()
	select {
	case <-closeDone:
	case <-time.After(p.cfg.ShutdownTimeout):
		return errors.Join(runErr, errors.New("shutdown: leaving the group timed out"))
	}
	return runErr
}

// rebuildWorkers replaces every worker's state with the committed changelog
// after an abort: the aborted transaction's effects are gone from Kafka, so
// they must be gone from memory too, and the session rewinds the input.
func (p *Pipeline) rebuildWorkers(ctx context.Context, cl *kgo.Client) error {
	p.wmu.Lock()
	owned := p.ownedPartitions()
	p.stopWorkers(owned)
	p.wmu.Unlock()
	parts := owned[p.cfg.InputTopic]
	if len(parts) == 0 {
		return nil
	}
	p.assigned(ctx, cl, map[string][]int32{p.cfg.InputTopic: parts})
	p.stats.rebalances.Add(-1) // a rebuild is not a rebalance
	return p.fatalErr()
}
