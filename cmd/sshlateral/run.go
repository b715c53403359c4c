package main

import (
	"github.com/sshlateral/sshlateral/consumer/decode"

	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/consumer"
)

// pipelineFlags are the flags of a pipeline instance (run and demo).
type pipelineFlags struct {
	brokers, group, input, output, dlq, changelog string
	noChangelog, noPrefilter                      bool
	inputFormat, guarantee                        string
	commitInterval, sessionTimeout, txnTimeout    time.Duration
	shutdownTimeout                               time.Duration
	transactionalID                               string
	proc                                          *processorFlags
	out                                           *outputFlags
}

func addPipelineFlags(fs *flag.FlagSet, defaultEmit string) *pipelineFlags {
	d := consumer.DefaultConfig()
	pf := &pipelineFlags{}
	fs.StringVar(&pf.brokers, "brokers", "", "comma-separated seed brokers (required)")
	fs.StringVar(&pf.group, "group", d.Group, "consumer group")
	fs.StringVar(&pf.input, "input-topic", d.InputTopic, "topic of endpoint process events")
	fs.StringVar(&pf.output, "output-topic", d.OutputTopic, "topic for Avro risk records")
	fs.StringVar(&pf.dlq, "dlq-topic", d.DLQTopic, "dead-letter topic for records that cannot be decoded")
	fs.StringVar(&pf.changelog, "changelog-topic", "", "compacted topic of window state, as many partitions as the input (default <group>.state-changelog)")
	fs.BoolVar(&pf.noChangelog, "no-changelog", false, "keep window state in memory only (a moved partition loses its open windows)")
	fs.BoolVar(&pf.noPrefilter, "no-prefilter", false, "decode every record fully (slower; the prefilter never changes results)")
	fs.StringVar(&pf.inputFormat, "input-format", "auto", "input record format: auto, sysmon or cim")
	fs.StringVar(&pf.guarantee, "guarantee", "at-least-once", "at-least-once or exactly-once")
	fs.DurationVar(&pf.commitInterval, "commit-interval", d.CommitInterval, "exactly-once: how long one transaction collects work")
	fs.DurationVar(&pf.sessionTimeout, "session-timeout", d.SessionTimeout, "consumer group session timeout")
	fs.DurationVar(&pf.txnTimeout, "transaction-timeout", d.TransactionTimeout, "exactly-once: broker-side transaction timeout (below --session-timeout)")
	fs.DurationVar(&pf.shutdownTimeout, "shutdown-timeout", d.ShutdownTimeout, "deadline for the final flush and commit")
	fs.StringVar(&pf.transactionalID, "transactional-id", "", "exactly-once: stable transactional id, e.g. the pod name (default <group>-<random>)")
	pf.proc = addProcessorFlags(fs, "early")
	pf.out = addOutputFlags(fs)
	return pf
}

// config turns the flags into a consumer config, collecting every error.
func (pf *pipelineFlags) config() (consumer.Config, error) {
	c := consumer.DefaultConfig()
	var errs []error
	var err error
	c.Brokers = splitList(pf.brokers)
	c.Group, c.InputTopic, c.OutputTopic, c.DLQTopic = pf.group, pf.input, pf.output, pf.dlq
	c.ChangelogTopic, c.DisableChangelog = pf.changelog, pf.noChangelog
	c.Prefilter = !pf.noPrefilter
	if c.Format, err = decode.ParseFormat(pf.inputFormat); err != nil {
		errs = append(errs, err)
	}
	if c.Guarantee, err = consumer.ParseGuarantee(pf.guarantee); err != nil {
		errs = append(errs, err)
	}
	c.CommitInterval, c.SessionTimeout, c.TransactionTimeout = pf.commitInterval, pf.sessionTimeout, pf.txnTimeout
	c.ShutdownTimeout, c.TransactionalID = pf.shutdownTimeout, pf.transactionalID
	if c.Processor, err = pf.proc.config(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		if err := c.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return c, errors.Join(errs...)
}

func cmdRun(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	pf := addPipelineFlags(fs, "early")
	sf := addSecurityFlags(fs)
	of := addOpsFlags(fs)
	createTopics := fs.Bool("create-topics", false, "create missing topics (input, output, DLQ, changelog) before starting")
	partitions := fs.Int("partitions", 12, "partitions of topics created by --create-topics")
	logFormat := fs.String("log-format", "json", "log format: json or text")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	configPath := fs.String(configFlagName, "", "YAML file of flag values, keys are flag names (command-line flags and SSHLATERAL_* win over it)")
	if err := parseFlagsWithConfig(fs, e, args, configPath); err != nil {
		return err
	}
	logger, err := newLogger(e.stderr, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	// Report every invalid flag at once.
	cfg, cfgErr := pf.config()
	sec, secErr := sf.build()
	if err := errors.Join(cfgErr, secErr, of.validate()); err != nil {
		return err
	}
	cfg.Logger = logger
	cfg.ClientOpts = append(cfg.ClientOpts, sec.opts()...)
	var latency *kafkaLatency
	if of.httpAddr != "" {
		latency = newKafkaLatency(cfg.InputTopic)
		cfg.ClientOpts = append(cfg.ClientOpts, kgo.WithHooks(latency))
		cfg.ObserveBatch = latency.observeBatch
	}
	var allowlist *filterHolder
	if of.filter != "" {
		if allowlist, err = loadFilterFile(of.filter, logger); err != nil {
			return err
		}
		cfg.Suppressor = allowlist
	}
	enc, err := pf.out.encoder(cfg.OutputTopic)
	if err != nil {
		return err
	}
	if *createTopics {
		if err := ensureTopics(ctx, cfg, int32(*partitions)); err != nil {
			return err
		}
	}
	p, err := consumer.New(cfg, enc)
	if err != nil {
		return err
	}

	opsCtx, stopOps := context.WithCancel(context.Background())
	defer stopOps()
	var ops *opsServer
	if of.httpAddr != "" {
		var allowStats allowlistStats
		if allowlist != nil {
			allowStats = allowlist
		}
		reg, err := newMetricsRegistry(p, metricsOptions{allowlist: allowStats, latency: latency})
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		ready := &readiness{src: p, maxLag: of.readyMaxLag}
		if ops, err = startOpsServer(of.httpAddr, newOpsHandler(reg, ready, httpOptions{pprof: of.pprof}), logger); err != nil {
			return err
		}
		// Leave the load balancer before draining.
		go func() {
			select {
			case <-ctx.Done():
				ready.draining.Store(true)
			case <-opsCtx.Done():
			}
		}()
	}
	watchReloadSignal(opsCtx, allowlist, logger)
	if allowlist != nil && of.filterPoll > 0 {
		go allowlist.watch(opsCtx, of.filterPoll)
	}

	logger.Info("starting", "brokers", cfg.Brokers, "group", cfg.Group, "input_topic", cfg.InputTopic,
		"output_topic", cfg.OutputTopic, "guarantee", cfg.Guarantee.String(), "tls", sec.tls != nil,
		"sasl", sf.saslMechanism, "allowlist_rules", allowlist.ruleCount(), "http_addr", of.httpAddr)
	err = p.Run(ctx)
	st := p.Stats()
	logger.Info("stopped", "consumed", st.Consumed, "events", st.Events, "records_written", st.RecordsWritten,
		"dead_lettered", sum(st.DeadLettered), "suppressed", sum(st.Suppressed))
	stopOps()
	if ops != nil {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if serr := ops.shutdown(shutdownCtx); serr != nil {
			logger.Warn("operations endpoint shutdown", "err", serr)
		}
	}
	return err
}

// ensureTopics creates the pipeline's topics when missing: the changelog is
// compacted and has the input's partition count, as state is co-partitioned.
func ensureTopics(ctx context.Context, cfg consumer.Config, partitions int32) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, cfg.ClientOpts...)...)
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	inputPartitions := partitions
	if details, err := adm.ListTopics(ctx, cfg.InputTopic); err == nil {
		if d, ok := details[cfg.InputTopic]; ok && d.Err == nil {
			inputPartitions = int32(len(d.Partitions))
		}
	}
	compact := "compact"
	specs := []struct {
		topic      string
		partitions int32
		configs    map[string]*string
	}{
		{cfg.InputTopic, inputPartitions, nil},
		{cfg.OutputTopic, partitions, nil},
		{cfg.DLQTopic, 1, nil},
	}
	if !cfg.DisableChangelog {
		specs = append(specs, struct {
			topic      string
			partitions int32
			configs    map[string]*string
		}{cfg.ChangelogTopic, inputPartitions, map[string]*string{"cleanup.policy": &compact}})
	}
	for _, s := range specs {
		resp, err := adm.CreateTopic(ctx, s.partitions, -1, s.configs, s.topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !isTopicExists(err) {
			return fmt.Errorf("create topic %s: %w", s.topic, err)
		}
	}
	return nil
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
