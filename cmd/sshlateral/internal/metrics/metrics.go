// Package metrics exports the pipeline's counters, the allowlist state,
// Kafka client latencies and the build as Prometheus metrics, read from
// snapshots at scrape time.
package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/consumer"
)

// PipelineStats is what metrics and readiness read from a running pipeline
// (*consumer.Pipeline) at scrape time.
type PipelineStats interface {
	Stats() consumer.Stats
	Partitions() []consumer.PartitionStat
	// NotReady says why the pipeline cannot work yet, or "".
	NotReady() string
}

// AllowlistStats is what metrics read from the allowlist in force.
type AllowlistStats interface {
	RuleCount() int
	ReloadCounts() (succeeded, failed int64)
	LastSuccess() time.Time
}

const metricsNamespace = "sshlateral"

// emissions are always exported, zero until seen, so that rate() over
// LATE works before the first late result.
var emissions = []string{"EARLY", "FINAL", "LATE"}

// pipelineCollector turns one Stats and one Partitions snapshot per scrape
// into metrics: nothing is counted twice and the pipeline's hot path stays
// free of metric updates.
type pipelineCollector struct {
	src PipelineStats
	now func() time.Time

	consumed, events, prefiltered, skipped, deadLettered, results, suppressed *prometheus.Desc
	written, rebalances, commitFailures, aborts, assigned                     *prometheus.Desc
	partConsumed, openWindows, openGroups, lag, eventTimeLag, watermark       *prometheus.Desc
	lastRecord                                                                *prometheus.Desc
	kafkaErrors, dlqFailures, sessionRestarts, stateBytes, ignored, restoring *prometheus.Desc
	repartitioned, repartitionDuplicates, auditd                              *prometheus.Desc
}

func newPipelineCollector(src PipelineStats, now func() time.Time) *pipelineCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(metricsNamespace, "", name), help, labels, nil)
	}
	tp := []string{"topic", "partition"}
	return &pipelineCollector{
		src:                   src,
		now:                   now,
		consumed:              d("consumed_records_total", "Input records read."),
		events:                d("events_total", "Process events fully decoded and given to the matcher."),
		prefiltered:           d("prefiltered_events_total", "Process events rejected by the prefilter (cannot match)."),
		skipped:               d("skipped_records_total", "Input records that are not process events, by reason.", "reason"),
		deadLettered:          d("dead_lettered_records_total", "Undecodable input records sent to the DLQ topic, by reason.", "reason"),
		results:               d("results_total", "Detection results (matches) before the allowlist, by emission: EARLY, FINAL, LATE.", "emission"),
		suppressed:            d("suppressed_results_total", "Results suppressed by the allowlist, by rule.", "rule"),
		written:               d("risk_records_written_total", "Risk records acknowledged by the broker (two per unsuppressed result)."),
		rebalances:            d("rebalances_total", "Consumer group assignment changes seen."),
		commitFailures:        d("commit_failures_total", "Offset or transaction commits that failed."),
		aborts:                d("transaction_aborts_total", "Exactly-once transactions aborted."),
		assigned:              d("assigned_partitions", "Input partitions this instance owns."),
		partConsumed:          d("partition_consumed_records_total", "Input records read from the partition since this instance was assigned it.", tp...),
		openWindows:           d("partition_open_windows", "Open event-time windows of the partition.", tp...),
		openGroups:            d("partition_open_groups", "Open result groups of the partition.", tp...),
		lag:                   d("partition_lag_records", "Consumer lag: partition high watermark at the last fetch minus the next offset to process.", tp...),
		eventTimeLag:          d("partition_event_time_lag_seconds", "Wall clock minus the partition's event-time watermark (absent until the first event).", tp...),
		watermark:             d("partition_watermark_timestamp_seconds", "Event-time watermark of the partition, unix seconds (absent until the first event).", tp...),
		lastRecord:            d("partition_last_record_timestamp_seconds", "Wall clock of the last record processed, unix seconds (absent until the first record).", tp...),
		kafkaErrors:           d("kafka_errors_total", "Kafka client errors, by kind: connection (brokers unreachable at start, authentication), topic (missing or misconfigured at start), connect (a failed broker connection while running), fetch.", "kind"),
		dlqFailures:           d("dead_letter_failures_total", "Records that could not be dead-lettered even without their value; each is logged with its offset."),
		sessionRestarts:       d("session_restarts_total", "Exactly-once sessions replaced in-process after a transaction of unknown outcome."),
		stateBytes:            d("partition_state_bytes", "Estimated bytes of the partition's open window state (counted against --max-state-bytes).", tp...),
		ignored:               d("partition_ignored_events_total", "Events the partition's processor left out for an out-of-range or future time.", tp...),
		restoring:             d("partition_restoring", "1 while the partition restores its state from the changelog.", tp...),
		repartitioned:         d("repartitioned_matches_total", "With --input-keying any: records stage 1 wrote to the repartition topic (matches and progress markers)."),
		repartitionDuplicates: d("repartition_duplicates_total", "With --input-keying any: repartitioned matches stage 2 read again and skipped (already applied)."),
		auditd:                d("auditd_events_total", "auditd events assembled from several records, by completion: eoe (their EOE record), timeout (a newer record of the node, or 2 s of wall clock), evicted (over 64 open).", "completion"),
	}
}

func (c *pipelineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.consumed, c.events, c.prefiltered, c.skipped, c.deadLettered, c.results,
		c.suppressed, c.written, c.rebalances, c.commitFailures, c.aborts, c.assigned, c.partConsumed,
		c.openWindows, c.openGroups, c.lag, c.eventTimeLag, c.watermark, c.lastRecord,
		c.kafkaErrors, c.dlqFailures, c.sessionRestarts, c.stateBytes, c.ignored, c.restoring,
		c.repartitioned, c.repartitionDuplicates, c.auditd} {
		ch <- d
	}
}

func (c *pipelineCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(c.consumed, st.Consumed)
	counter(c.events, st.Events)
	counter(c.prefiltered, st.Prefiltered)
	counter(c.written, st.RecordsWritten)
	counter(c.rebalances, st.Rebalances)
	counter(c.commitFailures, st.CommitFailures)
	counter(c.aborts, st.Aborts)
	counter(c.dlqFailures, st.DeadLetterFailures)
	counter(c.sessionRestarts, st.SessionRestarts)
	counter(c.repartitioned, st.Repartitioned)
	counter(c.repartitionDuplicates, st.RepartitionDuplicates)
	for kind, n := range st.KafkaErrors {
		counter(c.kafkaErrors, n, kind)
	}
	for reason, n := range st.Skipped {
		counter(c.skipped, n, reason)
	}
	for completion, n := range st.AuditdEvents {
		counter(c.auditd, n, completion)
	}
	for reason, n := range st.DeadLettered {
		counter(c.deadLettered, n, reason)
	}
	for _, e := range emissions {
		counter(c.results, st.Results[e], e)
	}
	for e, n := range st.Results {
		if e != "EARLY" && e != "FINAL" && e != "LATE" {
			counter(c.results, n, e)
		}
	}
	for rule, n := range st.Suppressed {
		counter(c.suppressed, n, rule)
	}

	now := c.now()
	parts := c.src.Partitions()
	gauge(c.assigned, float64(len(parts)))
	for _, ps := range parts {
		labels := []string{ps.Topic, strconv.FormatInt(int64(ps.Partition), 10)}
		counter(c.partConsumed, ps.Consumed, labels...)
		gauge(c.openWindows, float64(ps.OpenWindows), labels...)
		gauge(c.openGroups, float64(ps.OpenGroups), labels...)
		gauge(c.lag, float64(PartitionLag(ps)), labels...)
		gauge(c.stateBytes, float64(ps.StateBytes), labels...)
		counter(c.ignored, ps.Ignored, labels...)
		restoring := 0.0
		if ps.State == consumer.StateRestoring {
			restoring = 1
		}
		gauge(c.restoring, restoring, labels...)
		if !ps.Watermark.IsZero() {
			gauge(c.eventTimeLag, now.Sub(ps.Watermark).Seconds(), labels...)
			gauge(c.watermark, unixSeconds(ps.Watermark), labels...)
		}
		if !ps.LastEvent.IsZero() {
			gauge(c.lastRecord, unixSeconds(ps.LastEvent), labels...)
		}
	}
}

// PartitionLag is the records between the next offset to process and the
// high watermark of the last fetch; never negative.
func PartitionLag(ps consumer.PartitionStat) int64 {
	if lag := ps.HighWater - ps.NextOffset; lag > 0 {
		return lag
	}
	return 0
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// allowlistCollector exports the state of the --filter file.
type allowlistCollector struct {
	src                  AllowlistStats
	rules, loads, lastOK *prometheus.Desc
}

func newAllowlistCollector(src AllowlistStats) *allowlistCollector {
	return &allowlistCollector{
		src:    src,
		rules:  prometheus.NewDesc("sshlateral_allowlist_rules", "Rules of the allowlist in force.", nil, nil),
		loads:  prometheus.NewDesc("sshlateral_allowlist_loads_total", "Allowlist file loads, by result: success or failure (the previous rules stay in force).", []string{"result"}, nil),
		lastOK: prometheus.NewDesc("sshlateral_allowlist_last_success_timestamp_seconds", "When the allowlist in force was loaded, unix seconds.", nil, nil),
	}
}

func (c *allowlistCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.rules
	ch <- c.loads
	ch <- c.lastOK
}

func (c *allowlistCollector) Collect(ch chan<- prometheus.Metric) {
	ok, failed := c.src.ReloadCounts()
	ch <- prometheus.MustNewConstMetric(c.rules, prometheus.GaugeValue, float64(c.src.RuleCount()))
	ch <- prometheus.MustNewConstMetric(c.loads, prometheus.CounterValue, float64(ok), "success")
	ch <- prometheus.MustNewConstMetric(c.loads, prometheus.CounterValue, float64(failed), "failure")
	if t := c.src.LastSuccess(); !t.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.lastOK, prometheus.GaugeValue, unixSeconds(t))
	}
}

// KafkaLatency measures latency at the Kafka client, through franz-go hooks
// given to the pipeline's clients with kgo.WithHooks:
//   - input record age: poll time minus the record's timestamp, for records
//     of the input topic (the changelog read at restore is not counted);
//   - produce latency: acknowledgement time minus produce time, by topic.
type KafkaLatency struct {
	inputTopic string
	recordAge  prometheus.Histogram
	produce    *prometheus.HistogramVec
	batch      prometheus.Histogram // consumer.Config.ObserveBatch
	now        func() time.Time
}

var (
	_ kgo.HookFetchRecordUnbuffered   = (*KafkaLatency)(nil)
	_ kgo.HookProduceRecordUnbuffered = (*KafkaLatency)(nil)
)

// NewKafkaLatency measures the latencies of inputTopic; now is the clock
// (nil: time.Now).
func NewKafkaLatency(inputTopic string, now func() time.Time) *KafkaLatency {
	if now == nil {
		now = time.Now
	}
	return &KafkaLatency{
		inputTopic: inputTopic,
		recordAge: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace,
			Name:      "input_record_age_seconds",
			Help:      "Age of input records when polled: poll time minus record timestamp (producer or broker clock).",
			Buckets:   []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600},
		}),
		produce: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace,
			Name:      "produce_latency_seconds",
			Help:      "Time from producing a record to the broker's acknowledgement, by topic (output, DLQ, changelog).",
			Buckets:   []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"topic"}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace,
			Name:      "batch_duration_seconds",
			Help:      "Processing time of one fetched batch of a partition, until its outputs are acknowledged (or in the transaction) and its offsets marked.",
			Buckets:   prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		now: now,
	}
}

func (k *KafkaLatency) OnFetchRecordUnbuffered(r *kgo.Record, polled bool) {
	if !polled || r.Topic != k.inputTopic || r.Timestamp.IsZero() {
		return
	}
	age := k.now().Sub(r.Timestamp).Seconds()
	if age < 0 {
		age = 0 // producer clock ahead of ours
	}
	k.recordAge.Observe(age)
}

// ObserveBatch is the pipeline's batch hook.
func (k *KafkaLatency) ObserveBatch(d time.Duration, _ int) { k.batch.Observe(d.Seconds()) }

func (k *KafkaLatency) OnProduceRecordUnbuffered(r *kgo.Record, err error) {
	if err != nil || r.Timestamp.IsZero() {
		return
	}
	k.produce.WithLabelValues(r.Topic).Observe(k.now().Sub(r.Timestamp).Seconds())
}

// Options selects the optional collectors of NewRegistry.
type Options struct {
	Allowlist AllowlistStats // nil without --filter
	Latency   *KafkaLatency  // nil when no Kafka client is instrumented
	Build     BuildInfo      // sshlateral_build_info labels
	Now       func() time.Time
}

// BuildInfo identifies the running binary; main sets it at build time.
type BuildInfo struct {
	Version, Commit, GoVersion string
}

// buildInfoGauge is sshlateral_build_info: always 1, the build in labels.
func buildInfoGauge(b BuildInfo) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace:   metricsNamespace,
		Name:        "build_info",
		Help:        "Build of the running binary: version, commit and Go version in labels; always 1.",
		ConstLabels: prometheus.Labels{"version": b.Version, "commit": b.Commit, "goversion": b.GoVersion},
	})
	g.Set(1)
	return g
}

// NewRegistry registers the pipeline, allowlist, latency, Go runtime
// and process collectors on a registry of their own.
func NewRegistry(src PipelineStats, opts Options) (*prometheus.Registry, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	reg := prometheus.NewRegistry()
	cs := []prometheus.Collector{
		newPipelineCollector(src, opts.Now),
		buildInfoGauge(opts.Build),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}
	if opts.Allowlist != nil {
		cs = append(cs, newAllowlistCollector(opts.Allowlist))
	}
	if opts.Latency != nil {
		cs = append(cs, opts.Latency.recordAge, opts.Latency.produce, opts.Latency.batch)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return reg, nil
}
