package consumer

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sshlateral/sshlateral/consumer/decode"
	"github.com/sshlateral/sshlateral/processor"
)

// Stats are the pipeline's running totals since start.
type Stats struct {
	Consumed       int64            // input records read
	Events         int64            // process events fully decoded and given to the matcher
	Prefiltered    int64            // process events rejected by the prefilter
	Skipped        map[string]int64 // non-process records, by reason
	DeadLettered   map[string]int64 // undecodable records sent to the DLQ, by reason
	Results        map[string]int64 // results by emission (EARLY, FINAL, LATE)
	Suppressed     map[string]int64 // results suppressed by the allowlist, by rule
	RecordsWritten int64            // risk records acknowledged by the broker
	Rebalances     int64            // assignment changes seen
	CommitFailures int64            // offset or transaction commits that failed
	Aborts         int64            // exactly-once transactions aborted
	KafkaErrors    map[string]int64 // Kafka client errors by kind: connection, topic, fetch
	// DeadLetterFailures counts records that could not be dead-lettered
	// even truncated; each is logged with its offset.
	DeadLetterFailures int64
	// SessionRestarts counts exactly-once sessions replaced in-process
	// after a transaction of unknown outcome.
	SessionRestarts int64
	// Repartitioned counts the records stage 1 wrote to the repartition
	// topic (matches and progress markers; InputKeying any).
	Repartitioned int64
	// RepartitionDuplicates counts repeated matches stage 2 dropped (stage
	// 1 re-read its input after a crash or rebalance).
	RepartitionDuplicates int64
	// AuditdEvents counts auditd events assembled from several records,
	// by how they completed: eoe (their EOE record), timeout (a newer
	// record of the node, or the wall clock) and evicted (too many open).
	AuditdEvents map[string]int64
}

// PartitionStat describes one assigned partition, for metrics and readiness.
type PartitionStat struct {
	Topic       string
	Partition   int32
	State       State // restoring, running or stopped
	Consumed    int64
	NextOffset  int64     // next offset to process
	HighWater   int64     // partition high watermark at the last fetch
	Watermark   time.Time // event-time watermark of the window state
	OpenGroups  int
	OpenWindows int
	Hosts       int       // hosts with open state
	StateBytes  int64     // estimated bytes of open window state
	Ignored     int64     // events the processor ignored (out-of-range or future times)
	LastEvent   time.Time // wall clock of the last record processed
}

// counters is updated by workers concurrently; maps are guarded by mu, the
// hot counters are atomics.
type counters struct {
	consumed, events, prefiltered, written, rebalances, commitFailures, aborts, dlqFailures, sessionRestarts atomic.Int64
	repartitionDuplicates                                                                                    atomic.Int64

	mu           sync.Mutex
	skipped      map[string]int64
	deadLettered map[string]int64
	results      map[string]int64
	suppressed   map[string]int64
	kafkaErrors  map[string]int64
	auditd       map[string]int64
	partitions   map[tp]PartitionStat
}

type tp struct {
	topic     string
	partition int32
}

func newCounters() *counters {
	return &counters{
		skipped:      map[string]int64{},
		deadLettered: map[string]int64{},
		results:      map[string]int64{},
		suppressed:   map[string]int64{},
		kafkaErrors:  map[string]int64{},
		auditd:       map[string]int64{},
		partitions:   map[tp]PartitionStat{},
	}
}

func (c *counters) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{
		Consumed:           c.consumed.Load(),
		Events:             c.events.Load(),
		Prefiltered:        c.prefiltered.Load(),
		Skipped:            cloneMap(c.skipped),
		DeadLettered:       cloneMap(c.deadLettered),
		Results:            cloneMap(c.results),
		Suppressed:         cloneMap(c.suppressed),
		RecordsWritten:     c.written.Load(),
		Rebalances:         c.rebalances.Load(),
		CommitFailures:     c.commitFailures.Load(),
		Aborts:             c.aborts.Load(),
		KafkaErrors:        cloneMap(c.kafkaErrors),
		DeadLetterFailures: c.dlqFailures.Load(),
		SessionRestarts:    c.sessionRestarts.Load(),

		RepartitionDuplicates: c.repartitionDuplicates.Load(),
		AuditdEvents:          cloneMap(c.auditd),
	}
}

func (c *counters) add(m map[string]int64, key string) {
	c.mu.Lock()
	m[key]++
	c.mu.Unlock()
}

func (c *counters) countSkip(reason string) { c.add(c.skipped, reason) }

// addAuditd adds the auditd completions since the last call.
func (c *counters) addAuditd(d decode.AuditStats) {
	if d == (decode.AuditStats{}) {
		return
	}
	c.mu.Lock()
	c.auditd["eoe"] += d.EOE
	c.auditd["timeout"] += d.TimedOut
	c.auditd["evicted"] += d.Evicted
	c.mu.Unlock()
}
func (c *counters) countDeadLetter(reason string) { c.add(c.deadLettered, reason) }
func (c *counters) countSuppressed(rule string)   { c.add(c.suppressed, rule) }
func (c *counters) countKafkaError(kind string)   { c.add(c.kafkaErrors, kind) }

func (c *counters) countResults(results []processor.Result) {
	c.mu.Lock()
	for i := range results {
		c.results[results[i].Emission.String()]++
	}
	c.mu.Unlock()
}

func (c *counters) setPartition(key tp, ps PartitionStat) {
	c.mu.Lock()
	c.partitions[key] = ps
	c.mu.Unlock()
}

func (c *counters) dropPartition(key tp) {
	c.mu.Lock()
	delete(c.partitions, key)
	c.mu.Unlock()
}

func (c *counters) partitionStats() []PartitionStat {
	c.mu.Lock()
	out := make([]PartitionStat, 0, len(c.partitions))
	for _, s := range c.partitions {
		out = append(out, s)
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

func cloneMap(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
