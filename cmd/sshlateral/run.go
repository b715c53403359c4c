package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/cmd/internal/cli"
	"github.com/sshlateral/sshlateral/cmd/internal/kafkaclient"
	"github.com/sshlateral/sshlateral/cmd/sshlateral/internal/allowlist"
	"github.com/sshlateral/sshlateral/cmd/sshlateral/internal/httpserver"
	"github.com/sshlateral/sshlateral/cmd/sshlateral/internal/metrics"
	"github.com/sshlateral/sshlateral/consumer"
	"github.com/sshlateral/sshlateral/processor"
	"github.com/sshlateral/sshlateral/producer"
)

func cmdRun(ctx context.Context, e cli.Env, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	kf := kafkaclient.AddFlags(fs)
	pf := addPipelineFlags(fs, processor.EmitEarly)
	of := addOpsFlags(fs)
	rf := addRegistryFlags(fs)
	createTopics := fs.Bool("create-topics", false, "create missing topics (input, output, DLQ, changelog, repartition) before starting")
	partitions := fs.Int("partitions", 12, "partitions of topics created by --create-topics")
	logFormat := fs.String("log-format", "json", "log format: json or text")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	configPath := fs.String(cli.ConfigFlagName, "", "YAML file of flag values, keys are flag names (command-line flags and SSHLATERAL_* win over it)")
	if err := cli.ParseFlagsWithConfig(fs, e, args, configPath); err != nil {
		return err
	}
	logger, err := cli.NewLogger(e.Stderr, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	// Report every invalid flag at once.
	kc, kcErr := kf.Build()
	cfg, cfgErr := pf.config(kc.Brokers, kc.Opts())
	if kcErr != nil {
		cfgErr = withoutField(cfgErr, "--brokers")
	}
	regCfg, useRegistry, regErr := rf.config(logger)
	if useRegistry && flagSet(fs, "schema-id") {
		regErr = errors.Join(regErr, errors.New("--schema-id: not with --schema-registry, which assigns the id"))
	}
	if err := errors.Join(kcErr, cfgErr, regErr, of.validate()); err != nil {
		return err
	}
	cfg.Logger = logger
	var latency *metrics.KafkaLatency
	if of.httpAddr != "" {
		latency = metrics.NewKafkaLatency(cfg.InputTopic, nil)
		cfg.ClientOpts = append(cfg.ClientOpts, kgo.WithHooks(latency))
		cfg.ObserveBatch = latency.ObserveBatch
	}
	var allow *allowlist.Holder
	if of.filter != "" {
		if allow, err = allowlist.Load(of.filter, logger); err != nil {
			return err
		}
		cfg.Suppressor = allow
	}
	// Metrics and /readyz come up first: while the schema is registered
	// (or the registry is unreachable) the instance says why it is not ready.
	src := &pendingPipeline{}
	opsCtx, stopOps := context.WithCancel(context.Background())
	defer stopOps()
	var ops *httpserver.Server
	if of.httpAddr != "" {
		opts := metrics.Options{Latency: latency, Build: buildInfo()}
		if allow != nil {
			opts.Allowlist = allow
		}
		reg, err := metrics.NewRegistry(src, opts)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		ready := &httpserver.Readiness{Src: src, MaxLag: of.readyMaxLag}
		if ops, err = httpserver.Start(of.httpAddr, httpserver.NewHandler(reg, ready, httpserver.Options{Pprof: of.pprof}), logger); err != nil {
			return err
		}
		// Leave the load balancer before draining.
		go func() {
			select {
			case <-ctx.Done():
				ready.Draining.Store(true)
			case <-opsCtx.Done():
			}
		}()
	}
	allowlist.WatchReloadSignal(opsCtx, allow, logger)
	if allow != nil && of.filterPoll > 0 {
		go allow.Watch(opsCtx, of.filterPoll)
	}
	shutdownOps := func() {
		stopOps()
		if ops != nil {
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if serr := ops.Shutdown(shutdownCtx); serr != nil {
				logger.Warn("operations endpoint shutdown", "err", serr)
			}
		}
	}

	if useRegistry {
		id, err := registerSchema(ctx, regCfg, cfg.OutputTopic, src, logger)
		if err != nil {
			shutdownOps()
			if ctx.Err() != nil {
				return nil // stopped while waiting for the registry
			}
			return err
		}
		pf.out.wire, pf.out.schemaID = producer.WireConfluent, int64(id)
	}
	enc, err := pf.out.encoder(cfg.OutputTopic)
	if err != nil {
		shutdownOps()
		return err
	}
	if *createTopics {
		if err := ensurePipelineTopics(ctx, kc, cfg, int32(*partitions)); err != nil {
			shutdownOps()
			return err
		}
	}
	p, err := consumer.New(cfg, enc)
	if err != nil {
		shutdownOps()
		return err
	}
	src.set(p)

	b := buildInfo()
	logger.Info("starting", "version", b.Version, "commit", b.Commit, "brokers", cfg.Brokers, "group", cfg.Group,
		"input_topic", cfg.InputTopic, "output_topic", cfg.OutputTopic, "guarantee", cfg.Guarantee.String(),
		"prefilter", cfg.Prefilter, "tls", kc.TLS, "sasl", kc.SASL, "allowlist_rules", allow.RuleCount(), "http_addr", of.httpAddr)
	err = p.Run(ctx)
	st := p.Stats()
	logger.Info("stopped", "consumed", st.Consumed, "events", st.Events, "records_written", st.RecordsWritten,
		"dead_lettered", cli.Sum(st.DeadLettered), "suppressed", cli.Sum(st.Suppressed))
	shutdownOps()
	return err
}

// flagSet reports whether the flag was given (command line, environment or
// config file).
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// ensurePipelineTopics creates the pipeline's missing topics.
func ensurePipelineTopics(ctx context.Context, kc kafkaclient.Config, cfg consumer.Config, partitions int32) error {
	cl, err := kc.NewClient(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	topics := kafkaclient.PipelineTopics{Input: cfg.InputTopic, Output: cfg.OutputTopic, DLQ: cfg.DLQTopic}
	if !cfg.DisableChangelog {
		topics.Changelog = cfg.ChangelogTopic
	}
	if err := kafkaclient.EnsurePipelineTopics(ctx, cl, topics, partitions); err != nil {
		return err
	}
	if cfg.InputKeying != consumer.KeyingAny {
		return nil
	}
	// Stage 2's state is co-partitioned with the repartition topic.
	n, err := kafkaclient.Partitions(ctx, cl, cfg.ChangelogTopic)
	if err != nil || n == 0 {
		n = partitions
	}
	return kafkaclient.EnsureTopics(ctx, cl, []kafkaclient.Topic{{Name: cfg.RepartitionTopic, Partitions: n}})
}

// withoutField drops the errors about one flag from err, when another check
// reported that flag already.
func withoutField(err error, flagName string) error {
	var kept []error
	for _, e := range unjoin(err) {
		if e != nil && !strings.HasPrefix(e.Error(), flagName+":") {
			kept = append(kept, e)
		}
	}
	return errors.Join(kept...)
}
