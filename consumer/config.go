package consumer

import (
	"github.com/sshlateral/sshlateral/consumer/decode"

	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/processor"
)

// Guarantee is the delivery guarantee of the pipeline.
type Guarantee uint8

const (
	// AtLeastOnce produces records, waits for the broker's acknowledgement,
	// then marks the input offsets for commit. A crash can repeat records;
	// their deterministic alert ids make repeats harmless downstream.
	AtLeastOnce Guarantee = iota
	// ExactlyOnce consumes, produces and commits offsets in one Kafka
	// transaction (franz-go's GroupTransactSession).
	ExactlyOnce
)

// ParseGuarantee parses "at-least-once" (or "alo") and "exactly-once" (or
// "eos"), in any case.
func ParseGuarantee(s string) (Guarantee, error) {
	switch strings.ToLower(s) {
	case "at-least-once", "alo":
		return AtLeastOnce, nil
	case "exactly-once", "eos":
		return ExactlyOnce, nil
	}
	return 0, fmt.Errorf("unknown guarantee %q (want at-least-once or exactly-once)", s)
}

func (g Guarantee) String() string {
	if g == ExactlyOnce {
		return "exactly-once"
	}
	return "at-least-once"
}

// Set parses s into g, so that *Guarantee is a flag.Value.
func (g *Guarantee) Set(s string) error {
	v, err := ParseGuarantee(s)
	if err != nil {
		return err
	}
	*g = v
	return nil
}

// Suppressor decides whether a result is allowlisted. It must be safe for
// concurrent use; a reloadable filter swaps its rules atomically.
type Suppressor interface {
	Suppress(r *processor.Result) (rule string, suppressed bool)
}

// Config configures a Pipeline. DefaultConfig gives every default,
// WithDefaults fills the ones derived from other fields, and Validate checks
// a config once, at start.
type Config struct {
	// Brokers are the seed brokers. Required.
	Brokers []string
	// Group is the consumer group. Default "sshlateral".
	Group string
	// InputTopic carries endpoint process events. Default "endpoint.processes".
	InputTopic string
	// OutputTopic receives risk records. Default "sshlateral.risk".
	OutputTopic string
	// DLQTopic receives records that cannot be decoded, with the reason in
	// headers. Default "sshlateral.dlq".
	DLQTopic string
	// ChangelogTopic holds the durable window state, one partition per
	// input partition, compacted. Default (WithDefaults)
	// "<Group>.state-changelog"; set DisableChangelog to run without durable
	// state.
	ChangelogTopic string
	// DisableChangelog runs with in-memory state only: a partition that moves
	// loses its open windows. Default false.
	DisableChangelog bool
	// Format of input records. Default FormatAuto.
	Format decode.Format
	// Prefilter rejects records that cannot match before full decoding.
	// Default true.
	Prefilter bool
	// Processor configures matcher and windows. Default processor.DefaultConfig().
	Processor processor.Config
	// Guarantee is AtLeastOnce (default) or ExactlyOnce.
	Guarantee Guarantee
	// CommitInterval is how long an exactly-once transaction collects work
	// before it commits. Default 200ms.
	CommitInterval time.Duration
	// TransactionalID identifies this instance's transactional producer in
	// exactly-once mode. Default "<Group>-<random>": a crashed instance's
	// open transaction then times out on the broker (TransactionTimeout).
	TransactionalID string
	// TransactionTimeout is the broker-side timeout of an open transaction;
	// it must stay below SessionTimeout. Default 10s.
	TransactionTimeout time.Duration
	// SessionTimeout is the group session timeout. Default 45s.
	SessionTimeout time.Duration
	// HeartbeatInterval is how often a member heartbeats; a member learns
	// of a rebalance at its next heartbeat. It must stay below
	// SessionTimeout; Kafka advises at most a third of it. Default 3s
	// (franz-go's default).
	HeartbeatInterval time.Duration
	// RebalanceTimeout is how long the group waits for its members to
	// rejoin in a rebalance (each finishes its revoked partitions' batch in
	// hand first); a member slower than that is removed from the group.
	// Default 60s (franz-go's default).
	RebalanceTimeout time.Duration
	// MaxPollRecords bounds one poll. Default 10000.
	MaxPollRecords int
	// TickInterval is how often each partition checks for idle close.
	// Default 1s.
	TickInterval time.Duration
	// ShutdownTimeout bounds the final flush and commit. Default 20s.
	ShutdownTimeout time.Duration
	// Suppressor is the allowlist (ESCU's filter macro), applied to results
	// after aggregation. Default none: nothing is suppressed.
	Suppressor Suppressor
	// ObserveBatch, when set, is called by a partition worker after a batch
	// is fully handled (outputs acknowledged and offsets marked, or added to
	// the transaction) with the time since its processing began and its
	// size. It must be safe for concurrent use and fast. Default nil.
	ObserveBatch func(d time.Duration, records int)
	// ClientOpts are extra franz-go options (TLS, SASL, logging). Default none.
	ClientOpts []kgo.Opt
	// Logger receives structured logs. Default (WithDefaults) slog.Default().
	Logger *slog.Logger
	// MaxRecordBytes bounds an input record: a larger one is not decoded
	// but dead-lettered (reason record_too_large), truncated. Default 1 MiB.
	MaxRecordBytes int
	// DeadLetterMaxBytes bounds a dead letter's value: a longer record is
	// written truncated, with headers saying so. The DLQ topic's
	// max.message.bytes, less 16 KiB for headers, lowers it further.
	// Default 512 KiB.
	DeadLetterMaxBytes int
	// InputKeying says how the input topic is keyed: KeyingHost (default)
	// runs the windows on the input partitions; KeyingAny re-keys the
	// matching events by host through RepartitionTopic first
	// (docs/repartition.md).
	InputKeying InputKeying
	// RepartitionTopic carries stage 1's matches and progress markers to
	// the windows with KeyingAny; as many partitions as ChangelogTopic.
	// Default (WithDefaults) "<Group>.repartition".
	RepartitionTopic string
	// MaxSessionRestarts bounds how often in a row an exactly-once session
	// of unknown outcome is replaced in-process without committing anything
	// in between; beyond it Run returns the error (a process restart is
	// then the recovery). Default 5.
	MaxSessionRestarts int
	// EnvelopeField names the JSON field (dotted path) that holds the event
	// in an envelope, besides the ones auto recognises (message, log,
	// event, _raw, event.original). Default none.
	EnvelopeField string
}

// DefaultConfig returns the defaults documented on Config, without brokers.
func DefaultConfig() Config {
	return Config{
		Group:              "sshlateral",
		InputTopic:         "endpoint.processes",
		OutputTopic:        "sshlateral.risk",
		DLQTopic:           "sshlateral.dlq",
		Format:             decode.FormatAuto,
		Prefilter:          true,
		Processor:          processor.DefaultConfig(),
		Guarantee:          AtLeastOnce,
		CommitInterval:     200 * time.Millisecond,
		TransactionTimeout: 10 * time.Second,
		SessionTimeout:     45 * time.Second,
		HeartbeatInterval:  3 * time.Second,
		RebalanceTimeout:   time.Minute,
		MaxPollRecords:     10000,
		TickInterval:       time.Second,
		ShutdownTimeout:    20 * time.Second,
		MaxRecordBytes:     1 << 20,
		DeadLetterMaxBytes: 512 << 10,
		MaxSessionRestarts: 5,
	}
}

// FieldError is a problem with one Config field; Field is its Go name,
// dotted for nested fields (Processor.Window).
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// WithDefaults returns c with the defaults that derive from other fields
// filled in: ChangelogTopic from Group, and Logger.
func (c Config) WithDefaults() Config {
	if c.ChangelogTopic == "" && !c.DisableChangelog {
		c.ChangelogTopic = c.Group + ".state-changelog"
		if c.InputKeying == KeyingAny {
			// Not the host-keyed changelog: its state and resume offsets
			// belong to input partitions, not repartition partitions.
			c.ChangelogTopic = c.Group + ".repartition-changelog"
		}
	}
	if c.RepartitionTopic == "" && c.InputKeying == KeyingAny {
		c.RepartitionTopic = c.Group + ".repartition"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate returns every problem as a *FieldError, joined. It changes
// nothing: call it on c.WithDefaults().
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Err: fmt.Errorf(format, args...)})
	}
	if len(c.Brokers) == 0 {
		bad("Brokers", "at least one seed broker is required")
	}
	for _, b := range c.Brokers {
		if strings.TrimSpace(b) == "" {
			bad("Brokers", "empty broker address in %q", strings.Join(c.Brokers, ","))
		}
	}
	if c.Group == "" {
		bad("Group", "required")
	}
	topics := []struct{ field, topic string }{
		{"InputTopic", c.InputTopic}, {"OutputTopic", c.OutputTopic}, {"DLQTopic", c.DLQTopic},
	}
	if !c.DisableChangelog {
		topics = append(topics, struct{ field, topic string }{"ChangelogTopic", c.ChangelogTopic})
	}
	if c.InputKeying == KeyingAny {
		topics = append(topics, struct{ field, topic string }{"RepartitionTopic", c.RepartitionTopic})
	}
	if c.InputKeying > KeyingAny {
		bad("InputKeying", "unknown input keying %d", uint8(c.InputKeying))
	}
	if c.EnvelopeField != "" {
		if err := decode.CheckEnvelopeField(c.EnvelopeField); err != nil {
			bad("EnvelopeField", "%v", err)
		}
	}
	if c.InputKeying == KeyingAny && c.Format == decode.FormatAuditd {
		// Stage 1 assembles per input partition: an event's records
		// spread over partitions would never meet.
		bad("InputKeying", "raw auditd input must be keyed by node (keying host): the records of one event must share a partition")
	}
	seen := map[string]string{}
	for _, t := range topics {
		if t.topic == "" {
			bad(t.field, "required")
			continue
		}
		if other, dup := seen[t.topic]; dup {
			bad(t.field, "topic %q is also %s", t.topic, other)
		}
		seen[t.topic] = t.field
	}
	if c.CommitInterval <= 0 {
		bad("CommitInterval", "must be positive, got %s", c.CommitInterval)
	}
	if c.SessionTimeout < 6*time.Second {
		bad("SessionTimeout", "must be at least 6s (broker minimum), got %s", c.SessionTimeout)
	}
	if c.HeartbeatInterval <= 0 || c.HeartbeatInterval >= c.SessionTimeout {
		bad("HeartbeatInterval", "must be positive and below SessionTimeout (%s), got %s", c.SessionTimeout, c.HeartbeatInterval)
	}
	if c.RebalanceTimeout <= 0 {
		bad("RebalanceTimeout", "must be positive, got %s", c.RebalanceTimeout)
	}
	if c.Guarantee == ExactlyOnce {
		if c.TransactionTimeout <= 0 || c.TransactionTimeout >= c.SessionTimeout {
			bad("TransactionTimeout", "must be positive and below SessionTimeout (%s), got %s", c.SessionTimeout, c.TransactionTimeout)
		}
		if c.DisableChangelog {
			bad("DisableChangelog", "exactly-once needs the changelog for window state")
		}
	}
	if c.Guarantee > ExactlyOnce {
		bad("Guarantee", "unknown guarantee %d", uint8(c.Guarantee))
	}
	if c.MaxPollRecords <= 0 {
		bad("MaxPollRecords", "must be positive, got %d", c.MaxPollRecords)
	}
	if c.TickInterval <= 0 {
		bad("TickInterval", "must be positive, got %s", c.TickInterval)
	}
	if c.ShutdownTimeout <= 0 {
		bad("ShutdownTimeout", "must be positive, got %s", c.ShutdownTimeout)
	}
	if c.MaxRecordBytes <= 0 {
		bad("MaxRecordBytes", "must be positive, got %d", c.MaxRecordBytes)
	}
	if c.DeadLetterMaxBytes < 0 {
		bad("DeadLetterMaxBytes", "must not be negative, got %d", c.DeadLetterMaxBytes)
	}
	if c.MaxSessionRestarts < 0 {
		bad("MaxSessionRestarts", "must not be negative, got %d", c.MaxSessionRestarts)
	}
	// The processor's field errors keep their field, under Processor.
	if err := c.Processor.Validate(); err != nil {
		for _, e := range unjoin(err) {
			var fe *processor.FieldError
			if errors.As(e, &fe) {
				errs = append(errs, &FieldError{Field: "Processor." + fe.Field, Err: fe.Err})
			} else {
				errs = append(errs, &FieldError{Field: "Processor", Err: e})
			}
		}
	}
	return errors.Join(errs...)
}

// unjoin lists the errors of an errors.Join, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
