package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/consumer"
	"github.com/sshlateral/sshlateral/processor"
	"github.com/sshlateral/sshlateral/producer"
)

// addProcessorFlags registers the matcher and window flags shared by run,
// demo and scan, writing into the returned config.
func addProcessorFlags(fs *flag.FlagSet, defaultEmit processor.EmitMode) *processor.Config {
	c := processor.DefaultConfig()
	c.Emit = defaultEmit
	fs.Var(&c.Match, "match", "matcher `mode`: escu (default; exact ESCU parity) or robust (also catches -o Key=Value evasions)")
	fs.Var(&c.Emit, "emit", "emission `mode`: early (a group's first match at once, FINAL at window close if changed) or final (one record per group at window close)")
	fs.DurationVar(&c.Window, "window", c.Window, "event-time window size")
	fs.DurationVar(&c.Offset, "window-offset", c.Offset, "window boundary offset from the hour (50m: windows end at :50, as ESCU schedules)")
	fs.DurationVar(&c.Grace, "grace", c.Grace, "event-time grace before a window closes")
	fs.DurationVar(&c.IdleClose, "idle-close", c.IdleClose, "wall-clock idle time after which a quiet partition closes due windows (0 disables)")
	fs.IntVar(&c.MaxOpenGroups, "max-open-groups", c.MaxOpenGroups, "bound on open groups per partition; beyond it the oldest window closes early")
	fs.DurationVar(&c.MaxFuture, "max-future", c.MaxFuture, "an event time further ahead of the wall clock is dead-lettered (future_event_time) and moves no clock")
	fs.Int64Var(&c.MaxStateBytes, "max-state-bytes", c.MaxStateBytes, "bound on the estimated bytes of open window state per process (0: none); beyond it the oldest window closes early")
	return &c
}

// outputFlags registers the risk-record encoding flags.
type outputFlags struct {
	wire     producer.WireFormat
	schemaID int64
}

func addOutputFlags(fs *flag.FlagSet) *outputFlags {
	of := &outputFlags{wire: producer.WirePlain}
	fs.Var(&of.wire, "wire-format", "risk record `framing`: plain Avro binary (default) or confluent (magic byte + schema id)")
	fs.Int64Var(&of.schemaID, "schema-id", 1, "schema registry id written with --wire-format confluent (1 to 2147483647)")
	return of
}

func (of *outputFlags) encoder(topic string) (*producer.Encoder, error) {
	// The encoder rejects an id outside the frame's signed 32 bits.
	enc, err := producer.NewEncoder(producer.EncoderConfig{Topic: topic, Wire: of.wire, SchemaID: of.schemaID})
	return enc, flagErrors(err)
}

// pipelineFlags are the flags of a pipeline instance (run and demo), apart
// from the Kafka client flags.
type pipelineFlags struct {
	cfg         consumer.Config
	noPrefilter bool
	proc        *processor.Config
	out         *outputFlags
}

func addPipelineFlags(fs *flag.FlagSet, defaultEmit processor.EmitMode) *pipelineFlags {
	pf := &pipelineFlags{cfg: consumer.DefaultConfig()}
	c := &pf.cfg
	fs.StringVar(&c.Group, "group", c.Group, "consumer group")
	fs.StringVar(&c.InputTopic, "input-topic", c.InputTopic, "topic of endpoint process events")
	fs.StringVar(&c.OutputTopic, "output-topic", c.OutputTopic, "topic for Avro risk records")
	fs.StringVar(&c.DLQTopic, "dlq-topic", c.DLQTopic, "dead-letter topic for records that cannot be decoded")
	fs.StringVar(&c.ChangelogTopic, "changelog-topic", "", "compacted topic of window state, as many partitions as the input, or with --input-keying any as the repartition topic (default <group>.state-changelog; any: <group>.repartition-changelog)")
	fs.Var(&c.InputKeying, "input-keying", "input `keying`: host (default; all of a host's events in one partition) or any (no key or round-robin: matches are re-keyed by host through the repartition topic)")
	fs.StringVar(&c.RepartitionTopic, "repartition-topic", "", "with --input-keying any: internal topic of matches keyed by host, as many partitions as the changelog (default <group>.repartition)")
	fs.BoolVar(&c.DisableChangelog, "no-changelog", false, "keep window state in memory only (a moved partition loses its open windows)")
	fs.BoolVar(&pf.noPrefilter, "no-prefilter", false, "decode every record fully (slower; the prefilter never changes results)")
	fs.Var(&c.Format, "input-format", "input record `format`: auto (default; decided per record), sysmon, cim, envelope, hec, ecs, ocsf or auditd")
	fs.StringVar(&c.EnvelopeField, "envelope-field", "", "JSON field (dotted path) holding the event in an envelope, besides message, log, event, _raw and event.original")
	fs.Var(&c.Guarantee, "guarantee", "delivery `guarantee`: at-least-once (default) or exactly-once")
	fs.DurationVar(&c.CommitInterval, "commit-interval", c.CommitInterval, "exactly-once: how long one transaction collects work")
	fs.DurationVar(&c.SessionTimeout, "session-timeout", c.SessionTimeout, "consumer group session timeout")
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat-interval", c.HeartbeatInterval, "consumer group heartbeat interval (below --session-timeout; at most a third of it is advised)")
	fs.DurationVar(&c.RebalanceTimeout, "rebalance-timeout", c.RebalanceTimeout, "how long the group waits for members to rejoin in a rebalance; a slower member is removed")
	fs.DurationVar(&c.TransactionTimeout, "transaction-timeout", c.TransactionTimeout, "exactly-once: broker-side transaction timeout (below --session-timeout)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "deadline for the final flush and commit")
	fs.StringVar(&c.TransactionalID, "transactional-id", "", "exactly-once: stable transactional id, e.g. the pod name (default <group>-<random>)")
	fs.IntVar(&c.MaxRecordBytes, "max-record-bytes", c.MaxRecordBytes, "input records larger than this are dead-lettered (record_too_large), not decoded")
	fs.IntVar(&c.DeadLetterMaxBytes, "dlq-max-bytes", c.DeadLetterMaxBytes, "bound on a dead letter's value; longer ones are truncated, with headers saying so")
	fs.IntVar(&c.MaxSessionRestarts, "max-session-restarts", c.MaxSessionRestarts, "exactly-once: in-process session replacements in a row without a commit before the process exits")
	pf.proc = addProcessorFlags(fs, defaultEmit)
	pf.out = addOutputFlags(fs)
	return pf
}

// config is the consumer config of the flags, for the given brokers and
// client options, validated.
func (pf *pipelineFlags) config(brokers []string, clientOpts []kgo.Opt) (consumer.Config, error) {
	c := pf.cfg
	c.Brokers = brokers
	c.ClientOpts = append(c.ClientOpts, clientOpts...)
	c.Prefilter = !pf.noPrefilter
	c.Processor = *pf.proc
	c = c.WithDefaults()
	return c, flagErrors(c.Validate())
}

// opsFlags are the operations flags of run: allowlist, metrics, health.
type opsFlags struct {
	filter      string
	filterPoll  time.Duration
	httpAddr    string
	readyMaxLag int64
	pprof       bool
}

// defaultHTTPAddr is the operations endpoint's default listen address.
const defaultHTTPAddr = ":9090"

func addOpsFlags(fs *flag.FlagSet) *opsFlags {
	of := &opsFlags{}
	fs.StringVar(&of.filter, "filter", "", "allowlist file (.yaml, .yml or .json): ESCU's filter macro, applied after aggregation; reloaded on change and on SIGHUP")
	fs.DurationVar(&of.filterPoll, "filter-poll-interval", 5*time.Second, "how often --filter is checked for changes (0: only on SIGHUP)")
	fs.StringVar(&of.httpAddr, "http-addr", defaultHTTPAddr, "listen address of /metrics, /healthz and /readyz (empty disables)")
	fs.Int64Var(&of.readyMaxLag, "ready-max-lag", 10000, "/readyz fails while any owned partition lags more than this many records")
	fs.BoolVar(&of.pprof, "pprof", false, "serve /debug/pprof/ on --http-addr")
	return of
}

func (of *opsFlags) validate() error {
	var errs []error
	if of.filterPoll < 0 {
		errs = append(errs, fmt.Errorf("--filter-poll-interval: must not be negative (0 disables polling), got %s", of.filterPoll))
	}
	if of.readyMaxLag < 0 {
		errs = append(errs, fmt.Errorf("--ready-max-lag: must not be negative, got %d", of.readyMaxLag))
	}
	if of.pprof && of.httpAddr == "" {
		errs = append(errs, errors.New("--pprof: needs --http-addr"))
	}
	if of.httpAddr != "" {
		if _, _, err := net.SplitHostPort(of.httpAddr); err != nil {
			errs = append(errs, fmt.Errorf("--http-addr: want host:port or :port, got %q: %w", of.httpAddr, err))
		}
	}
	return errors.Join(errs...)
}

// flagNames maps the Go field names of the library configs' FieldErrors to
// the flags that set them.
var flagNames = map[string]string{
	"Brokers": "brokers", "Group": "group", "InputTopic": "input-topic", "OutputTopic": "output-topic",
	"DLQTopic": "dlq-topic", "ChangelogTopic": "changelog-topic", "DisableChangelog": "no-changelog",
	"Format": "input-format", "Guarantee": "guarantee", "CommitInterval": "commit-interval",
	"TransactionalID": "transactional-id", "TransactionTimeout": "transaction-timeout",
	"SessionTimeout": "session-timeout", "HeartbeatInterval": "heartbeat-interval", "EnvelopeField": "envelope-field", "RebalanceTimeout": "rebalance-timeout", "ShutdownTimeout": "shutdown-timeout",
	"Processor.Window": "window", "Processor.Offset": "window-offset", "Processor.Grace": "grace",
	"Processor.IdleClose": "idle-close", "Processor.Emit": "emit", "Processor.Match": "match",
	"Processor.MaxOpenGroups": "max-open-groups", "Processor.MaxFuture": "max-future",
	"Processor.MaxStateBytes": "max-state-bytes", "MaxRecordBytes": "max-record-bytes",
	"DeadLetterMaxBytes": "dlq-max-bytes", "MaxSessionRestarts": "max-session-restarts",
	"SchemaID": "schema-id", "Wire": "wire-format",
	"InputKeying": "input-keying", "RepartitionTopic": "repartition-topic",
}

// flagErrors rewrites the field errors in err as "--flag: problem", so that
// the user reads the name they typed; fields without a flag keep their Go
// name.
func flagErrors(err error) error {
	if err == nil {
		return nil
	}
	var out []error
	for _, e := range unjoin(err) {
		field, inner := "", error(nil)
		var ce *consumer.FieldError
		var pe *processor.FieldError
		var oe *producer.FieldError
		switch {
		case errors.As(e, &ce):
			field, inner = ce.Field, ce.Err
		case errors.As(e, &pe):
			field, inner = "Processor."+pe.Field, pe.Err
		case errors.As(e, &oe):
			field, inner = oe.Field, oe.Err
		}
		if name, ok := flagNames[field]; ok {
			out = append(out, fmt.Errorf("--%s: %w", name, inner))
			continue
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// unjoin lists the errors of an errors.Join, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
