package producer

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// SyncWriter writes records and waits for the broker's acknowledgement of
// each: the at-least-once path, where offsets are marked only after Write
// returns nil.
type SyncWriter struct {
	cl *kgo.Client
}

// NewSyncWriter returns a SyncWriter producing through cl.
func NewSyncWriter(cl *kgo.Client) *SyncWriter { return &SyncWriter{cl: cl} }

// Write produces recs and returns once every record is acknowledged, or the
// first failure, naming its topic and partition. Cancelling ctx fails the
// records not yet on the wire, so a Write during a broker outage returns
// when ctx ends instead of blocking shutdown.
func (w *SyncWriter) Write(ctx context.Context, recs []*kgo.Record) error {
	for _, r := range w.WriteAll(ctx, recs) {
		if r.Err != nil {
			return fmt.Errorf("produce to topic %s partition %d: %w", r.Record.Topic, r.Record.Partition, r.Err)
		}
	}
	return nil
}

// WriteAll is Write reporting each record's outcome, for callers that
// handle failures record by record.
func (w *SyncWriter) WriteAll(ctx context.Context, recs []*kgo.Record) kgo.ProduceResults {
	if len(recs) == 0 {
		return nil
	}
	return w.cl.ProduceSync(ctx, recs...)
}

// TxnWriter adds records to the open transaction of a transactional client.
// Write does not wait: Err, called before the transaction ends, waits for
// every record of the transaction and returns the first failure. The first
// failure aborts the records still buffered, so a doomed transaction ends
// quickly. Safe for concurrent use by partition workers.
type TxnWriter struct {
	cl *kgo.Client

	mu       sync.Mutex
	promise  *kgo.FirstErrPromise
	rejected []*kgo.Record // rejected for good since Reset (bounded)
}

// maxRejected bounds the records Rejected keeps per transaction.
const maxRejected = 64

// NewTxnWriter returns a TxnWriter producing through the transactional
// client cl; Reset must be called after each Begin.
func NewTxnWriter(cl *kgo.Client) *TxnWriter {
	return &TxnWriter{cl: cl, promise: kgo.AbortingFirstErrPromise(cl)}
}

// Reset starts collecting the results of a new transaction.
func (w *TxnWriter) Reset() {
	w.mu.Lock()
	w.promise = kgo.AbortingFirstErrPromise(w.cl)
	w.rejected = w.rejected[:0]
	w.mu.Unlock()
}

// Write adds recs to the open transaction. ctx bounds each record's wait for
// buffer space and delivery.
func (w *TxnWriter) Write(ctx context.Context, recs []*kgo.Record) error {
	w.mu.Lock()
	p := w.promise
	w.mu.Unlock()
	for _, r := range recs {
		promise := p.Promise() // one per record: Err waits for each
		w.cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			if err != nil && RecordRejected(err) {
				w.mu.Lock()
				if w.promise == p && len(w.rejected) < maxRejected {
					w.rejected = append(w.rejected, r)
				}
				w.mu.Unlock()
			}
			promise(r, err)
		})
	}
	return nil
}

// Rejected returns the records of the current transaction the broker
// rejected for what they are (RecordRejected), at most 64; call it after
// Err.
func (w *TxnWriter) Rejected() []*kgo.Record {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*kgo.Record(nil), w.rejected...)
}

// Err waits for every record written since Reset and returns the first
// failure, naming its topic and partition.
func (w *TxnWriter) Err() error {
	w.mu.Lock()
	p := w.promise
	w.mu.Unlock()
	return p.Err()
}

// RecordRejected reports whether err rejects the record itself (too large,
// invalid, not authorized for its topic): the same record fails again,
// while a smaller or other one may pass. Errors of the producer or the
// transaction (fenced, aborted) are not.
func RecordRejected(err error) bool {
	for _, e := range []*kerr.Error{kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidRecord,
		kerr.CorruptMessage, kerr.TopicAuthorizationFailed, kerr.PolicyViolation} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Permanent reports whether err is a broker rejection that will repeat for
// the same record (too large, invalid, not authorized): retrying cannot help,
// and the input that caused it must not be committed past.
func Permanent(err error) bool {
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		return false
	}
	return !ke.Retriable
}
