package consumer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// topicLimits are what the startup check learned about the topics the
// pipeline writes.
type topicLimits struct {
	// dlqMaxBytes is the DLQ topic's max.message.bytes (0: unknown).
	dlqMaxBytes int
	// Partition counts of the input and output topics.
	inputPartitions, outputPartitions int32
}

// readiness is why the pipeline is not ready yet ("" once it is checked).
type readiness struct {
	mu     sync.Mutex
	reason string
}

func (r *readiness) set(reason string) {
	r.mu.Lock()
	r.reason = reason
	r.mu.Unlock()
}

func (r *readiness) get() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reason
}

// NotReady says why the pipeline cannot work yet (brokers unreachable, a
// topic missing), or "" once its startup check has passed. Partitions tells
// the rest (restoring or running).
func (p *Pipeline) NotReady() string {
	if r := p.ready.get(); r != "" || p.split == nil {
		return r
	}
	return p.split.ready.get()
}

// topicCheckInterval is how often the startup check is retried.
const topicCheckInterval = 5 * time.Second

// awaitTopics checks, before joining the group, that every topic the
// pipeline reads or writes exists and that the changelog has at least the
// input's partitions, retrying until it passes or ctx ends. Each failure
// is logged (rate-limited), counted by kind and reported by NotReady, so a
// wrong address, a bad password or a missing topic is visible at once
// instead of at the first result.
func (p *Pipeline) awaitTopics(ctx context.Context) (topicLimits, error) {
	opts := append([]kgo.Opt{kgo.SeedBrokers(p.cfg.Brokers...)}, p.cfg.ClientOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return topicLimits{}, fmt.Errorf("create kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	p.ready.set("checking topics")
	for {
		reqCtx, cancel := context.WithTimeout(ctx, topicCheckInterval)
		limits, kind, err := p.checkTopics(reqCtx, adm)
		cancel()
		if err == nil {
			p.ready.set("")
			return limits, nil
		}
		if ctx.Err() != nil {
			return topicLimits{}, ctx.Err()
		}
		p.stats.countKafkaError(kind)
		p.ready.set(err.Error())
		p.logs.warn("startup-"+kind, "not ready", "reason", err)
		select {
		case <-ctx.Done():
			return topicLimits{}, ctx.Err()
		case <-time.After(topicCheckInterval):
		}
	}
}

// checkTopics returns the limits, or an error and its kind ("connection" or
// "topic").
func (p *Pipeline) checkTopics(ctx context.Context, adm *kadm.Client) (topicLimits, string, error) {
	names := []string{p.cfg.InputTopic, p.cfg.OutputTopic, p.cfg.DLQTopic}
	if !p.cfg.DisableChangelog {
		names = append(names, p.cfg.ChangelogTopic)
	}
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return topicLimits{}, "connection", fmt.Errorf("cannot reach brokers %s: %w", strings.Join(p.cfg.Brokers, ","), err)
	}
	var missing, failed []string
	for _, name := range names {
		d, ok := details[name]
		switch {
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			missing = append(missing, name)
		case d.Err != nil:
			// Not authorized, say: creating it would not help.
			failed = append(failed, fmt.Sprintf("%s: %v", name, d.Err))
		}
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		return topicLimits{}, "topic", fmt.Errorf("topics not usable: %s", strings.Join(failed, "; "))
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return topicLimits{}, "topic", fmt.Errorf("missing topics: %s (create them, or set CreateTopics: sshlateral run --create-topics)", strings.Join(missing, ", "))
	}
	if !p.cfg.DisableChangelog {
		in, cl := len(details[p.cfg.InputTopic].Partitions), len(details[p.cfg.ChangelogTopic].Partitions)
		if cl < in {
			return topicLimits{}, "topic", fmt.Errorf("changelog topic %s has %d partitions, fewer than input topic %s (%d)",
				p.cfg.ChangelogTopic, cl, p.cfg.InputTopic, in)
		}
	}
	limits := topicLimits{
		inputPartitions:  int32(len(details[p.cfg.InputTopic].Partitions)),
		outputPartitions: int32(len(details[p.cfg.OutputTopic].Partitions)),
	}
	configs, err := adm.DescribeTopicConfigs(ctx, p.cfg.DLQTopic)
	if err != nil {
		// Not every broker lets every user describe configs: the
		// configured bound alone then applies.
		p.logs.warn("describe-configs", "cannot read the DLQ topic's max.message.bytes", "topic", p.cfg.DLQTopic, "err", err)
		return limits, "", nil
	}
	if rc, err := configs.On(p.cfg.DLQTopic, nil); err == nil {
		for _, c := range rc.Configs {
			if c.Key == "max.message.bytes" && c.Value != nil {
				if n, err := strconv.Atoi(*c.Value); err == nil {
					limits.dlqMaxBytes = n
				}
			}
		}
	}
	return limits, "", nil
}
