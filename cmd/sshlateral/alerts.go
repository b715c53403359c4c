package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/cmd/internal/cli"
	"github.com/sshlateral/sshlateral/cmd/internal/kafkaclient"
	"github.com/sshlateral/sshlateral/consumer"
	"github.com/sshlateral/sshlateral/producer"
)

func cmdAlerts(ctx context.Context, e cli.Env, args []string) error {
	fs := flag.NewFlagSet("alerts", flag.ContinueOnError)
	kf := kafkaclient.AddFlags(fs)
	topic := fs.String("topic", consumer.DefaultConfig().OutputTopic, "output topic to read")
	fromEnd := fs.Bool("from-end", false, "start at the end of the topic instead of the beginning")
	maxRecords := fs.Int64("max", 0, "stop after this many records (0: no limit)")
	idle := fs.Duration("idle-exit", 0, "stop after this long without a new record (0: follow forever)")
	committed := fs.Bool("read-committed", true, "read only committed records (exactly-once output)")
	rf := addRegistryFlags(fs)
	if err := cli.ParseFlags(fs, e, args); err != nil {
		return err
	}
	kc, kcErr := kf.Build()
	regCfg, useRegistry, regErr := rf.config(nil)
	if err := errors.Join(kcErr, regErr); err != nil {
		return err
	}
	start := kgo.NewOffset().AtStart()
	if *fromEnd {
		start = kgo.NewOffset().AtEnd()
	}
	isolation := kgo.ReadUncommitted()
	if *committed {
		isolation = kgo.ReadCommitted()
	}
	cl, err := kc.NewClient(ctx, kgo.ConsumeTopics(*topic), kgo.ConsumeResetOffset(start), kgo.FetchIsolationLevel(isolation))
	if err != nil {
		return err
	}
	defer cl.Close()
	// A missing topic is no fetch error (the client waits for it): say so,
	// as the pipeline may simply not have created it yet.
	if n, err := kafkaclient.Partitions(ctx, cl, *topic); err != nil {
		return err
	} else if n == 0 {
		fmt.Fprintf(e.Stderr, "topic %s does not exist (yet); waiting for it\n", *topic)
	}
	pr, err := newRiskPrinter(cl, e.Stdout, e.Stderr)
	if err != nil {
		return err
	}
	if useRegistry {
		reg, err := producer.NewRegistry(regCfg)
		if err != nil {
			return err
		}
		dec, err := reg.NewDecoder("")
		if err != nil {
			return err
		}
		pr.useRegistry(dec)
	}
	lastRecord := time.Now()
	for ctx.Err() == nil {
		n, err := pr.poll(ctx, time.Second, *maxRecords)
		if err != nil {
			return err
		}
		if n > 0 {
			lastRecord = time.Now()
		}
		if *maxRecords > 0 && pr.printed >= *maxRecords {
			return nil
		}
		if *idle > 0 && time.Since(lastRecord) > *idle {
			return nil
		}
	}
	return nil
}
