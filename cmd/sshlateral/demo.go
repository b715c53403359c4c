package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/cmd/internal/cli"
	"github.com/sshlateral/sshlateral/cmd/internal/kafkaclient"
	"github.com/sshlateral/sshlateral/consumer"
	"github.com/sshlateral/sshlateral/processor"
)

//go:embed sample/events.log
var sampleEvents []byte

func cmdDemo(ctx context.Context, e cli.Env, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	pf := addPipelineFlags(fs, processor.EmitEarly)
	partitions := fs.Int("partitions", 4, "partitions of the embedded input topic")
	input := fs.String("input", "", "events file to use instead of the bundled sample")
	timeout := fs.Duration("timeout", time.Minute, "give up waiting for the pipeline after this long")
	logLevel := fs.String("log-level", "warn", "log level of the pipeline (logs go to stderr)")
	// The sample is historical, so its windows close by idle close: keep it short.
	if err := fs.Set("idle-close", "2s"); err != nil {
		return err
	}
	if err := cli.ParseFlags(fs, e, args); err != nil {
		return err
	}
	logger, err := cli.NewLogger(e.Stderr, "text", *logLevel)
	if err != nil {
		return err
	}
	events, name := sampleEvents, "sample/events.log"
	if *input != "" {
		if events, err = os.ReadFile(*input); err != nil {
			return err
		}
		name = *input
	}

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return fmt.Errorf("start embedded kafka: %w", err)
	}
	defer cluster.Close()
	kc := kafkaclient.NewConfig(cluster.ListenAddrs())
	cfg, err := pf.config(kc.Brokers, kc.Opts())
	if err != nil {
		return err
	}
	cfg.Logger = logger
	cfg.TickInterval = 200 * time.Millisecond
	enc, err := pf.out.encoder(cfg.OutputTopic)
	if err != nil {
		return err
	}
	if err := ensurePipelineTopics(ctx, kc, cfg, int32(*partitions)); err != nil {
		return err
	}
	producerClient, err := kc.NewClient(ctx, kgo.DefaultProduceTopic(cfg.InputTopic))
	if err != nil {
		return err
	}
	lr := lineReader{stdin: bytes.NewReader(events), max: defaultMaxRecordBytes}
	produced, err := produceLines(ctx, producerClient, cfg.InputTopic, lr.each, []string{"-"}, replayOptions{}, io.Discard)
	producerClient.Close()
	if err != nil {
		return fmt.Errorf("produce %s: %w", name, err)
	}

	p, err := consumer.New(cfg, enc)
	if err != nil {
		return err
	}
	runCtx, stopPipeline := context.WithCancel(ctx)
	defer stopPipeline()
	var runErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); runErr = p.Run(runCtx) }()
	stop := func() error {
		stopPipeline()
		wg.Wait()
		if runErr != nil && !errors.Is(runErr, context.Canceled) {
			return runErr
		}
		return nil
	}

	reader, err := kc.NewClient(ctx, kgo.ConsumeTopics(cfg.OutputTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return errors.Join(err, stop())
	}
	defer reader.Close()
	pr, err := newRiskPrinter(reader, e.Stdout, e.Stderr)
	if err != nil {
		return errors.Join(err, stop())
	}
	deadline := time.Now().Add(*timeout)
	for ctx.Err() == nil && !demoSettled(p, produced, pr.printed) {
		if _, err := pr.poll(ctx, 300*time.Millisecond, 0); err != nil {
			return errors.Join(err, stop())
		}
		if time.Now().After(deadline) {
			return errors.Join(fmt.Errorf("pipeline did not settle within %s (consumed %d of %d, printed %d)", *timeout, p.Stats().Consumed, produced, pr.printed), stop())
		}
	}
	err = stop()
	st := p.Stats()
	fmt.Fprintf(e.Stderr, "summary: events read %d (process events %d, prefiltered %d, skipped %d), results %v, risk records written %d, dead-lettered %d %v\n",
		st.Consumed, st.Events+st.Prefiltered, st.Prefiltered, cli.Sum(st.Skipped), st.Results, st.RecordsWritten, cli.Sum(st.DeadLettered), st.DeadLettered)
	return err
}

// demoSettled: every input record consumed, every window closed, and every
// risk record written has been printed.
func demoSettled(p *consumer.Pipeline, produced, printed int64) bool {
	st := p.Stats()
	if st.Consumed < produced || printed < st.RecordsWritten {
		return false
	}
	for _, ps := range p.Partitions() {
		if ps.OpenGroups > 0 {
			return false
		}
	}
	return true
}
