// Package kafkaclient is the one way the sshlateral commands reach Kafka:
// the client flags (brokers, client id, TLS, SASL, connect timeout), the
// franz-go options they make, a connection check with a deadline, fetch
// error reporting and topic creation.
package kafkaclient

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultConnectTimeout bounds how long a command waits for the first broker
// answer before it gives up with an error.
const DefaultConnectTimeout = 15 * time.Second

// Flags are the client flags every Kafka-facing subcommand registers.
type Flags struct {
	brokers        string
	clientID       string
	connectTimeout time.Duration
	sec            *securityFlags
}

// AddFlags registers --brokers, --client-id, --connect-timeout and the TLS
// and SASL flags on fs.
func AddFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{}
	fs.StringVar(&f.brokers, "brokers", "", "comma-separated seed brokers (required)")
	fs.StringVar(&f.clientID, "client-id", "sshlateral", "Kafka client id (broker logs and quotas)")
	fs.DurationVar(&f.connectTimeout, "connect-timeout", DefaultConnectTimeout, "give up when no broker answers within this long (unreachable address, TLS or SASL failure)")
	f.sec = addSecurityFlags(fs)
	return f
}

// Config is the validated client configuration.
type Config struct {
	Brokers        []string
	ClientID       string
	ConnectTimeout time.Duration
	TLS            bool
	SASL           string // mechanism, "" without SASL
	opts           []kgo.Opt
}

// Build validates the flags, each error naming its flag, and loads the files
// they name.
func (f *Flags) Build() (Config, error) {
	var errs []error
	c := Config{ClientID: f.clientID, ConnectTimeout: f.connectTimeout}
	for _, b := range strings.Split(f.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			c.Brokers = append(c.Brokers, b)
		}
	}
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("--brokers: at least one seed broker is required"))
	}
	if c.ConnectTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--connect-timeout: must be positive, got %s", c.ConnectTimeout))
	}
	sec, err := f.sec.build()
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	c.TLS, c.SASL = sec.tls != nil, strings.ToLower(strings.TrimSpace(f.sec.saslMechanism))
	if c.ClientID != "" {
		c.opts = append(c.opts, kgo.ClientID(c.ClientID))
	}
	c.opts = append(c.opts, sec.opts()...)
	return c, nil
}

// Opts are the franz-go options of the configuration (not the seed brokers),
// for clients built elsewhere, such as the pipeline's.
func (c Config) Opts() []kgo.Opt { return append([]kgo.Opt(nil), c.opts...) }

// NewClient builds a client with the configuration and extra options, and
// checks within ConnectTimeout that a broker answers, so that a wrong
// address or credentials end in an error instead of a silent wait.
func (c Config) NewClient(ctx context.Context, extra ...kgo.Opt) (*kgo.Client, error) {
	opts := append([]kgo.Opt{kgo.SeedBrokers(c.Brokers...)}, c.opts...)
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, c.ConnectTimeout)
	defer cancel()
	if err := cl.Ping(pingCtx); err != nil {
		cl.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within --connect-timeout %s", c.ConnectTimeout)
		}
		return nil, fmt.Errorf("connect to brokers %s: %w", strings.Join(c.Brokers, ","), err)
	}
	return cl, nil
}

// FetchError returns the first error of a poll, naming topic and partition,
// or nil. Errors of the poll's own context are not errors of the fetch: the
// caller polls again or stops on its context.
func FetchError(fetches kgo.Fetches) error {
	var errs []error
	fetches.EachError(func(topic string, partition int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		if topic == "" {
			errs = append(errs, fmt.Errorf("fetch: %w", err))
			return
		}
		errs = append(errs, fmt.Errorf("fetch topic %s partition %d: %w", topic, partition, err))
	})
	return errors.Join(errs...)
}

// Topic is one topic EnsureTopics creates when missing.
type Topic struct {
	Name       string
	Partitions int32 // -1: the broker's default
	Configs    map[string]*string
}

// EnsureTopics creates every topic of topics that does not exist yet.
func EnsureTopics(ctx context.Context, cl *kgo.Client, topics []Topic) error {
	adm := kadm.NewClient(cl)
	for _, t := range topics {
		resp, err := adm.CreateTopic(ctx, t.Partitions, -1, t.Configs, t.Name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", t.Name, err)
		}
	}
	return nil
}

// Partitions is the partition count of topic, or 0 and no error when the
// topic does not exist.
func Partitions(ctx context.Context, cl *kgo.Client, topic string) (int32, error) {
	details, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("list topic %s: %w", topic, err)
	}
	d, ok := details[topic]
	if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
		return 0, nil
	}
	if d.Err != nil {
		return 0, fmt.Errorf("list topic %s: %w", topic, d.Err)
	}
	return int32(len(d.Partitions)), nil
}

// PipelineTopics names the topics of one pipeline; Changelog is empty
// without a changelog.
type PipelineTopics struct {
	Input, Output, DLQ, Changelog string
}

// EnsurePipelineTopics creates a pipeline's missing topics: input and output
// with partitions partitions, the DLQ with one, and the changelog compacted
// with the input's partition count, as state is co-partitioned with it.
func EnsurePipelineTopics(ctx context.Context, cl *kgo.Client, t PipelineTopics, partitions int32) error {
	inputPartitions, err := Partitions(ctx, cl, t.Input)
	if err != nil {
		return err
	}
	if inputPartitions == 0 {
		inputPartitions = partitions
	}
	topics := []Topic{{t.Input, inputPartitions, nil}, {t.Output, partitions, nil}, {t.DLQ, 1, nil}}
	if t.Changelog != "" {
		compact := "compact"
		topics = append(topics, Topic{t.Changelog, inputPartitions, map[string]*string{"cleanup.policy": &compact}})
	}
	return EnsureTopics(ctx, cl, topics)
}

// NewConfig is the configuration of a plain connection to brokers, with
// no TLS or SASL: the embedded cluster of demo.
func NewConfig(brokers []string) Config {
	return Config{Brokers: brokers, ConnectTimeout: DefaultConnectTimeout, ClientID: "sshlateral", opts: []kgo.Opt{kgo.ClientID("sshlateral")}}
}
