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
)

func cmdRun(ctx context.Context, e cli.Env, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	kf := kafkaclient.AddFlags(fs)
	pf := addPipelineFlags(fs, processor.EmitEarly)
	of := addOpsFlags(fs)
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
	if err := errors.Join(kcErr, cfgErr, of.validate()); err != nil {
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
	enc, err := pf.out.encoder(cfg.OutputTopic)
	if err != nil {
		return err
	}
	if *createTopics {
		if err := ensurePipelineTopics(ctx, kc, cfg, int32(*partitions)); err != nil {
			return err
		}
	}
	p, err := consumer.New(cfg, enc)
	if err != nil {
		return err
	}

	opsCtx, stopOps := context.WithCancel(context.Background())
	defer stopOps()
	var ops *httpserver.Server
	if of.httpAddr != "" {
		opts := metrics.Options{Latency: latency, Build: buildInfo()}
		if allow != nil {
			opts.Allowlist = allow
		}
		reg, err := metrics.NewRegistry(p, opts)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		ready := &httpserver.Readiness{Src: p, MaxLag: of.readyMaxLag}
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

	b := buildInfo()
	logger.Info("starting", "version", b.Version, "commit", b.Commit, "brokers", cfg.Brokers, "group", cfg.Group,
		"input_topic", cfg.InputTopic, "output_topic", cfg.OutputTopic, "guarantee", cfg.Guarantee.String(),
		"prefilter", cfg.Prefilter, "tls", kc.TLS, "sasl", kc.SASL, "allowlist_rules", allow.RuleCount(), "http_addr", of.httpAddr)
	err = p.Run(ctx)
	st := p.Stats()
	logger.Info("stopped", "consumed", st.Consumed, "events", st.Events, "records_written", st.RecordsWritten,
		"dead_lettered", cli.Sum(st.DeadLettered), "suppressed", cli.Sum(st.Suppressed))
	stopOps()
	if ops != nil {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if serr := ops.Shutdown(shutdownCtx); serr != nil {
			logger.Warn("operations endpoint shutdown", "err", serr)
		}
	}
	return err
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
