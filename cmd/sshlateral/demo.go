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
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/consumer"
	"github.com/sshlateral/sshlateral/producer"
)

//go:embed sample/events.log
var sampleEvents []byte

func cmdDemo(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	pf := addPipelineFlags(fs, "early")
	partitions := fs.Int("partitions", 4, "partitions of the embedded input topic")
	input := fs.String("input", "", "events file to use instead of the bundled sample")
	timeout := fs.Duration("timeout", time.Minute, "give up waiting for the pipeline after this long")
	logLevel := fs.String("log-level", "warn", "log level of the pipeline (logs go to stderr)")
	// The sample is historical, so its windows close by idle close: keep it short.
	if err := fs.Set("idle-close", "2s"); err != nil {
		return err
	}
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	events := sampleEvents
	if *input != "" {
		b, err := os.ReadFile(*input)
		if err != nil {
			return err
		}
		events = b
	}
	logger, err := newLogger(e.stderr, "text", *logLevel)
	if err != nil {
		return err
	}

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return fmt.Errorf("start embedded kafka: %w", err)
	}
	defer cluster.Close()
	if err := fs.Set("brokers", strings.Join(cluster.ListenAddrs(), ",")); err != nil {
		return err
	}
	cfg, err := pf.config()
	if err != nil {
		return err
	}
	cfg.Logger = logger
	cfg.TickInterval = 200 * time.Millisecond
	enc, err := pf.out.encoder(cfg.OutputTopic)
	if err != nil {
		return err
	}
	if err := ensureTopics(ctx, cfg, int32(*partitions)); err != nil {
		return err
	}
	produced, err := produceFile(ctx, cfg.Brokers, cfg.InputTopic, bytes.NewReader(events), replayOptions{}, io.Discard)
	if err != nil {
		return err
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

	dec, err := producer.NewDecoder()
	if err != nil {
		return err
	}
	reader, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.ConsumeTopics(cfg.OutputTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return err
	}
	defer reader.Close()

	deadline := time.Now().Add(*timeout)
	printed := int64(0)
	for {
		pollCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		fetches := reader.PollFetches(pollCtx)
		cancel()
		var perr error
		fetches.EachRecord(func(r *kgo.Record) {
			native, err := dec.Decode(r.Value)
			if err != nil {
				perr = fmt.Errorf("decode risk record at topic %s partition %d offset %d: %w", r.Topic, r.Partition, r.Offset, err)
				return
			}
			line, err := producer.JSON(native)
			if err != nil {
				perr = err
				return
			}
			fmt.Fprintf(e.stdout, "%s\n", line)
			printed++
		})
		if perr != nil {
			return perr
		}
		if ctx.Err() != nil {
			break
		}
		if demoSettled(p, produced, printed) {
			break
		}
		if time.Now().After(deadline) {
			stopPipeline()
			wg.Wait()
			return fmt.Errorf("pipeline did not settle within %s (consumed %d of %d, printed %d)", *timeout, p.Stats().Consumed, produced, printed)
		}
	}
	stopPipeline()
	wg.Wait()
	st := p.Stats()
	fmt.Fprintf(e.stderr, "summary: events read %d (process events %d, prefiltered %d, skipped %d), results %v, risk records written %d, dead-lettered %d %v\n",
		st.Consumed, st.Events+st.Prefiltered, st.Prefiltered, sum(st.Skipped), st.Results, st.RecordsWritten, sum(st.DeadLettered), st.DeadLettered)
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	return nil
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
