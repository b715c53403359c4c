package consumer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sshlateral/sshlateral/producer"
)

// delivery makes a worker's batch durable: the two guarantees implement it.
// deliver is called by the partition's worker, one batch at a time.
type delivery interface {
	deliver(ctx context.Context, w *worker, b *batch) error
}

// atLeastOnce writes a batch's outputs and dead letters, then its changelog,
// waits for the broker's acknowledgement of each, and only then marks the
// batch's last offset for commit. Outputs go first: a crash in between
// repeats outputs (harmless, same alert ids) rather than losing them.
//
// It writes and marks through the client of the worker's assignment: the
// group may assign partitions (and workers may tick) before NewClient has
// returned.
type atLeastOnce struct {
	p *Pipeline
}

func (d *atLeastOnce) deliver(ctx context.Context, w *worker, b *batch) error {
	wr := producer.NewSyncWriter(w.cl)
	if err := wr.Write(ctx, b.risk); err != nil {
		return err
	}
	if err := d.writeDeadLetters(ctx, wr, w, b); err != nil {
		return err
	}
	if err := wr.Write(ctx, b.changelog); err != nil {
		return err
	}
	w.acknowledged(b)
	if b.last == nil {
		return nil
	}
	if d.p.fatalErr() != nil {
		// Another partition failed: the pipeline commits nothing more.
		return errStopped
	}
	w.cl.MarkCommitRecords(b.last)
	return nil
}

// writeDeadLetters writes b's dead letters. One the broker rejects for good
// (too large for a topic limit lower than the start check saw, say) is
// written again with headers only; if even that fails it is counted and
// logged with its source offset, and the pipeline goes on: a record that
// cannot be dead-lettered must not stop the partition forever.
func (d *atLeastOnce) writeDeadLetters(ctx context.Context, wr *producer.SyncWriter, w *worker, b *batch) error {
	if len(b.deadLetters) == 0 {
		return nil
	}
	kept := b.deadLetters[:0]
	keptReasons := b.reasons[:0:0]
	for i, res := range wr.WriteAll(ctx, b.deadLetters) {
		if res.Err == nil {
			kept = append(kept, res.Record)
			keptReasons = append(keptReasons, b.reasons[i])
			continue
		}
		if !producer.Permanent(res.Err) {
			return fmt.Errorf("dead letter for offset %s: %w", headerValue(res.Record, HeaderSourceOffset), res.Err)
		}
		bare := stripValue(res.Record)
		if err := wr.Write(ctx, []*kgo.Record{bare}); err == nil {
			kept = append(kept, bare)
			keptReasons = append(keptReasons, b.reasons[i])
			continue
		} else if !producer.Permanent(err) {
			return fmt.Errorf("dead letter for offset %s: %w", headerValue(res.Record, HeaderSourceOffset), err)
		}
		d.p.stats.dlqFailures.Add(1)
		d.p.cfg.Logger.Error("record could not be dead-lettered, even without its value",
			"topic", w.tp.topic, "partition", w.tp.partition, "offset", headerValue(res.Record, HeaderSourceOffset),
			"reason", b.reasons[i], "dlq_topic", res.Record.Topic, "err", res.Err)
	}
	b.deadLetters, b.reasons = kept, keptReasons
	return nil
}

// stripValue returns a copy of dead letter r without its value, marked
// truncated.
func stripValue(r *kgo.Record) *kgo.Record {
	c := &kgo.Record{Topic: r.Topic, Key: r.Key}
	c.Headers = append(c.Headers, r.Headers...)
	if headerValue(r, HeaderDLQTruncated) == "" {
		c.Headers = append(c.Headers,
			kgo.RecordHeader{Key: HeaderDLQTruncated, Value: []byte("true")},
			kgo.RecordHeader{Key: HeaderDLQOriginalSize, Value: []byte(strconv.Itoa(len(r.Value)))})
	}
	return c
}

// runAtLeastOnce is the poll loop of the default mode: it hands each
// partition's records to its worker; workers write, wait for acks and mark.
func (p *Pipeline) runAtLeastOnce(ctx context.Context) error {
	hard, hardCancel := context.WithCancel(context.Background())
	defer hardCancel()
	defer p.shutdownDeadline(ctx, hardCancel)()
	d := &atLeastOnce{p: p}
	// BlockRebalanceOnPoll keeps a rebalance out of the dispatch of a
	// poll; the revoke callback then waits for the worker's in-flight batch
	// to be acknowledged and marked, so the commit on revoke covers it.
	cl, err := kgo.NewClient(append(p.baseOpts(hard, d), kgo.AutoCommitMarks(), kgo.BlockRebalanceOnPoll())...)
	if err != nil {
		return fmt.Errorf("create kafka client: %w", err)
	}

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
		p.reportFetchErrors(fetches)
		fetches.EachPartition(func(ftp kgo.FetchTopicPartition) {
			if len(ftp.Records) == 0 {
				return
			}
			w, ok := p.worker(ftp.Topic, ftp.Partition)
			if !ok {
				return // revoked between fetch and dispatch; the records are not marked
			}
			select {
			case w.jobs <- job{recs: ftp.Records, highWater: ftp.HighWatermark}:
			case <-w.done:
			case <-pollCtx.Done():
			}
		})
		cl.AllowRebalance()
	}
	cancelPoll()

	// Workers finish the batch in hand; hard bounds the wait.
	p.stopAllWorkers()
	if p.fatalErr() == nil {
		if err := cl.CommitMarkedOffsets(hard); err != nil {
			p.stats.commitFailures.Add(1)
			p.cfg.Logger.Error("final commit failed", "topic", p.cfg.InputTopic, "err", err)
		}
	}
	cl.AllowRebalance()
	closeErr := closeClient(hard, cl.CloseAllowingRebalance)
	return errors.Join(p.fatalErr(), closeErr)
}

// exactlyOnce adds a batch's records to the open transaction; they become
// visible, with the input offsets, when the transaction commits. Counts
// and logs wait for the commit.
type exactlyOnce struct {
	w *producer.TxnWriter

	mu      sync.Mutex
	pending []ackedBatch
}

type ackedBatch struct {
	w *worker
	b *batch
}

func (d *exactlyOnce) deliver(ctx context.Context, w *worker, b *batch) error {
	w.p.degradeDeadLetters(w, b)
	d.w.Write(ctx, b.risk)
	d.w.Write(ctx, b.deadLetters)
	d.w.Write(ctx, b.changelog)
	if len(b.risk) > 0 || len(b.deadLetters) > 0 {
		d.mu.Lock()
		d.pending = append(d.pending, ackedBatch{w, b})
		d.mu.Unlock()
	}
	return nil
}

// ended settles the transaction's batches: counted if it committed,
// forgotten if it aborted.
func (d *exactlyOnce) ended(committed bool) {
	d.mu.Lock()
	pending := d.pending
	d.pending = nil
	d.mu.Unlock()
	if !committed {
		return
	}
	for _, a := range pending {
		a.w.acknowledged(a.b)
	}
}

// ErrUnknownOutcome marks an exactly-once transaction that ended with an
// error (franz-go: the outcome is unknown and the client is not to be used
// again). The pipeline replaces the session in-process: a new client with
// the same transactional id fences the old one, and every partition's state
// is rebuilt from what Kafka committed. Run returns it only after
// MaxSessionRestarts replacements in a row failed to commit anything.
var ErrUnknownOutcome = errors.New("transaction outcome unknown")

// sessionCloseTimeout bounds the clean leave of a replaced session: its
// client may hang, and the group waits for its member until it leaves.
const sessionCloseTimeout = 10 * time.Second

// runExactlyOnce is the poll loop of exactly-once mode: one transaction per
// CommitInterval holds the risk records, dead letters, changelog writes and
// the input offsets, so all become visible together or not at all. Each
// poll's partitions are worked concurrently, one worker each.
func (p *Pipeline) runExactlyOnce(ctx context.Context) error {
	txnID := p.cfg.TransactionalID
	if txnID == "" {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("transactional id: %w", err)
		}
		txnID = p.cfg.Group + "-" + hex.EncodeToString(b[:])
	}
	hard, hardCancel := context.WithCancel(context.Background())
	defer hardCancel()
	defer p.shutdownDeadline(ctx, hardCancel)()
	failures := 0 // replacements in a row without a committed transaction
	for {
		committed, err := p.transactSession(ctx, hard, txnID)
		if !errors.Is(err, ErrUnknownOutcome) || ctx.Err() != nil {
			return err
		}
		if committed > 0 {
			failures = 0
		}
		failures++
		if failures > p.cfg.MaxSessionRestarts {
			p.fail(err)
			return fmt.Errorf("%d session replacements in a row committed nothing: %w", failures-1, err)
		}
		p.stats.sessionRestarts.Add(1)
		p.cfg.Logger.Warn("transaction outcome unknown; replacing the session and rebuilding state from the changelog",
			"topic", p.cfg.InputTopic, "transactional_id", txnID, "attempt", failures, "err", err)
	}
}

// transactSession runs one GroupTransactSession until ctx ends (nil), a
// fatal error, or a transaction of unknown outcome (an error wrapping
// ErrUnknownOutcome, after the session's workers are stopped and its client
// closed). It returns how many transactions it committed.
func (p *Pipeline) transactSession(ctx, hard context.Context, txnID string) (commits int, _ error) {
	// The session's own hard context: a replaced session's client is cut
	// off without waiting for the shutdown deadline.
	sessHard, sessCancel := context.WithCancel(hard)
	defer sessCancel()
	d := &exactlyOnce{}
	// No BlockRebalanceOnPoll: as franz-go advises for transact sessions, a
	// rebalance may happen at any time and aborts the open transaction;
	// blocking it would stall End behind the rebalance.
	opts := append(p.baseOpts(sessHard, d),
		kgo.TransactionalID(txnID),
		kgo.TransactionTimeout(p.cfg.TransactionTimeout),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
	)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return 0, fmt.Errorf("create transactional kafka client: %w", err)
	}
	cl := sess.Client()
	d.w = producer.NewTxnWriter(cl)
	p.cfg.Logger.Info("exactly-once session started", "transactional_id", txnID)

	var runErr error
	for ctx.Err() == nil && runErr == nil {
		if runErr = p.fatalErr(); runErr != nil {
			break
		}
		if err := sess.Begin(); err != nil {
			runErr = fmt.Errorf("begin transaction: %w: %w", ErrUnknownOutcome, err)
			break
		}
		d.w.Reset()
		// moved: a partition left this member while the transaction held
		// its records; the transaction must not commit.
		moved := false
		deadline := time.Now().Add(p.cfg.CommitInterval)
		for time.Now().Before(deadline) && runErr == nil && ctx.Err() == nil {
			pollCtx, cancel := context.WithDeadline(ctx, deadline)
			fetches := sess.PollRecords(pollCtx, p.cfg.MaxPollRecords)
			cancel()
			if fetches.IsClientClosed() {
				runErr = errors.New("kafka client closed")
				break
			}
			p.reportFetchErrors(fetches)
			var jobs []dispatched
			now := time.Now()
			fetches.EachPartition(func(ftp kgo.FetchTopicPartition) {
				if len(ftp.Records) == 0 {
					return
				}
				w, ok := p.worker(ftp.Topic, ftp.Partition)
				if !ok {
					moved = true
					return
				}
				jobs = append(jobs, dispatch(w, job{recs: ftp.Records, highWater: ftp.HighWatermark, now: now}))
			})
			m, err := awaitAll(jobs)
			moved = moved || m
			if err != nil {
				runErr = err
			}
		}
		if runErr == nil {
			// Every partition's coalesced changelog joins the
			// transaction that commits its input offsets; the flush job
			// is also the partition's tick (idle close).
			var jobs []dispatched
			now := time.Now()
			for _, w := range p.runningWorkers() {
				jobs = append(jobs, dispatch(w, job{highWater: -1, now: now, flush: true}))
			}
			m, err := awaitAll(jobs)
			moved = moved || m
			if err != nil {
				runErr = err
			}
		}
		produceErr := d.w.Err()
		// End may wait behind a rebalance; beyond the transaction timeout
		// the broker has aborted the transaction anyway.
		endCtx, cancel := context.WithTimeout(sessHard, p.cfg.TransactionTimeout)
		endCtx = kgo.PreTxnCommitFnContext(endCtx, p.holdBackOffsets)
		committed, err := sess.End(endCtx, kgo.TransactionEndTry(runErr == nil && !moved && produceErr == nil))
		cancel()
		d.ended(committed && err == nil)
		switch {
		case err != nil:
			// An End error leaves the outcome unknown (franz-go's advice):
			// this session is done; the next one rebuilds state from what
			// was committed.
			p.stats.commitFailures.Add(1)
			if runErr == nil {
				runErr = fmt.Errorf("end transaction on input topic %s: %w: %w", p.cfg.InputTopic, ErrUnknownOutcome, err)
			}
		case committed:
			commits++
		case producer.Permanent(produceErr) && runErr == nil && p.learnRejectedDeadLetters(d.w.Rejected()):
			// Only dead letters were rejected: the transaction is
			// redone with them written without their value, or, if that
			// failed too, left out, as at-least-once does.
			p.stats.aborts.Add(1)
			p.cfg.Logger.Warn("transaction aborted: the DLQ topic rejected a dead letter; redoing it with the dead letter reduced",
				"topic", p.cfg.InputTopic, "dlq_topic", p.cfg.DLQTopic, "err", produceErr)
			p.rebuildWorkers(sessHard, cl, d)
		case producer.Permanent(produceErr):
			// The broker will reject the same record again: retrying
			// would loop forever. Nothing of it was committed.
			p.stats.aborts.Add(1)
			runErr = fmt.Errorf("transaction on input topic %s aborted: %w", p.cfg.InputTopic, produceErr)
		default:
			p.stats.aborts.Add(1)
			p.cfg.Logger.Warn("transaction aborted; rebuilding partition state from the changelog",
				"topic", p.cfg.InputTopic, "partition_moved", moved, "produce_err", produceErr, "err", runErr)
			if runErr == nil {
				p.rebuildWorkers(sessHard, cl, d)
			}
		}
	}
	if errors.Is(runErr, ErrUnknownOutcome) {
		// The client must not be used again. Its workers stop without
		// committing; a clean leave lets the group rebalance at once, and
		// if the client hangs it is cut off (the broker then expires the
		// member after the session timeout). Nothing more is written
		// through it.
		p.stopWorkers(p.ownedPartitions(), true)
		leave, cancel := context.WithTimeout(context.Background(), sessionCloseTimeout)
		defer cancel()
		stop := context.AfterFunc(leave, sessCancel)
		defer stop()
		_ = closeClient(sessHard, sess.Close)
		return commits, runErr
	}
	if runErr != nil {
		p.fail(runErr)
	}
	p.stopAllWorkers()
	return commits, errors.Join(runErr, closeClient(sessHard, sess.Close))
}

// holdBackOffsets lowers the offsets a transaction commits to the first
// record of each partition's oldest open auditd assembly (published at the
// flush job of the transaction): a restart reads those records again to
// rebuild it. It runs under the client's transaction lock: no blocking.
func (p *Pipeline) holdBackOffsets(req *kmsg.TxnOffsetCommitRequest) error {
	for i := range req.Topics {
		t := &req.Topics[i]
		if t.Topic != p.cfg.InputTopic {
			continue
		}
		for j := range t.Partitions {
			part := &t.Partitions[j]
			if v, ok := p.held.Load(part.Partition); ok {
				if held := v.(int64); held >= 0 && held < part.Offset {
					part.Offset = held
				}
			}
		}
	}
	return nil
}

// dispatched is a job handed to a worker, awaiting its reply.
type dispatched struct {
	w     *worker
	reply chan error
	taken bool
}

// dispatch hands j to w without waiting for the outcome.
func dispatch(w *worker, j job) dispatched {
	reply := make(chan error, 1)
	j.reply = reply
	select {
	case w.jobs <- j:
		return dispatched{w: w, reply: reply, taken: true}
	case <-w.done:
		return dispatched{w: w}
	}
}

// awaitAll waits for every dispatched job. moved reports a worker that ended
// without doing its job (its partition left this member).
func awaitAll(jobs []dispatched) (moved bool, err error) {
	for _, j := range jobs {
		if !j.taken {
			moved = true
			continue
		}
		select {
		case e := <-j.reply:
			if e != nil && err == nil {
				err = e
			}
		case <-j.w.done:
			select {
			case e := <-j.reply:
				if e != nil && err == nil {
					err = e
				}
			default:
				moved = true
			}
		}
	}
	return moved, err
}

// runningWorkers lists the workers past their restore.
func (p *Pipeline) runningWorkers() []*worker {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	out := make([]*worker, 0, len(p.workers))
	for _, w := range p.workers {
		if w.State() == StateRunning {
			out = append(out, w)
		}
	}
	return out
}

// rebuildWorkers replaces every worker's state with the committed changelog
// after an abort: the aborted transaction's effects are gone from Kafka, so
// they must be gone from memory too, and the session rewinds the input.
//
// The old workers stay in the map while they stop, so that a revoke
// meanwhile finds and removes them; only a partition still held by its old
// worker afterwards gets a new one.
func (p *Pipeline) rebuildWorkers(hard context.Context, cl *kgo.Client, d delivery) {
	p.wmu.Lock()
	old := make([]*worker, 0, len(p.workers))
	for _, w := range p.workers {
		w.discard.Store(true) // its transaction aborted: nothing of it is kept
		w.stop()
		old = append(old, w)
	}
	p.wmu.Unlock()
	for _, w := range old {
		<-w.done
	}
	var parts []int32
	p.wmu.Lock()
	for _, w := range old {
		if cur, ok := p.workers[w.tp]; ok && cur == w {
			delete(p.workers, w.tp)
			parts = append(parts, w.tp.partition)
		}
	}
	p.wmu.Unlock()
	if len(parts) > 0 {
		p.startWorkers(hard, cl, d, parts)
	}
}

// deadLetterStep is how far a dead letter the DLQ topic rejected in an
// aborted exactly-once transaction is reduced when written again.
type deadLetterStep int

const (
	dlqBare    deadLetterStep = iota + 1 // without its value
	dlqLeftOut                           // not written: counted and logged
)

// maxDLQRejected bounds the rejected dead letters remembered; beyond it a
// rejection fails the pipeline as before.
const maxDLQRejected = 10000

type dlqSource struct{ topic, partition, offset string }

func dlqSourceOf(r *kgo.Record) dlqSource {
	return dlqSource{headerValue(r, HeaderSourceTopic), headerValue(r, HeaderSourcePart), headerValue(r, HeaderSourceOffset)}
}

// learnRejectedDeadLetters records the next step for each rejected record
// and reports whether they were all dead letters that can still be reduced.
func (p *Pipeline) learnRejectedDeadLetters(rejected []*kgo.Record) bool {
	if len(rejected) == 0 {
		return false
	}
	for _, r := range rejected {
		if r.Topic != p.cfg.DLQTopic || p.dlqRejectedCount.Load() >= maxDLQRejected {
			return false
		}
	}
	seen := map[dlqSource]bool{} // one step per source per transaction
	for _, r := range rejected {
		src := dlqSourceOf(r)
		if seen[src] {
			continue
		}
		seen[src] = true
		step := dlqBare
		if v, ok := p.dlqRejected.Load(src); ok {
			if v.(deadLetterStep) >= dlqLeftOut {
				return false
			}
			step = dlqLeftOut
		} else {
			p.dlqRejectedCount.Add(1)
		}
		p.dlqRejected.Store(src, step)
		if step == dlqLeftOut {
			p.stats.dlqFailures.Add(1)
			p.cfg.Logger.Error("record could not be dead-lettered, even without its value",
				"topic", src.topic, "partition", src.partition, "offset", src.offset,
				"reason", headerValue(r, HeaderDLQReason), "dlq_topic", r.Topic)
		}
	}
	return true
}

// degradeDeadLetters applies the steps learnt from aborted transactions to
// b's dead letters before they join a transaction.
func (p *Pipeline) degradeDeadLetters(w *worker, b *batch) {
	if len(b.deadLetters) == 0 || p.dlqRejectedCount.Load() == 0 {
		return
	}
	kept := b.deadLetters[:0]
	keptReasons := b.reasons[:0:0]
	for i, r := range b.deadLetters {
		v, ok := p.dlqRejected.Load(dlqSourceOf(r))
		switch {
		case !ok:
			kept = append(kept, r)
		case v.(deadLetterStep) == dlqBare:
			kept = append(kept, stripValue(r))
		default:
			continue // left out: counted and logged when learnt
		}
		keptReasons = append(keptReasons, b.reasons[i])
	}
	b.deadLetters, b.reasons = kept, keptReasons
}
