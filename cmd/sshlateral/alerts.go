package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/consumer"
	"github.com/sshlateral/sshlateral/producer"
)

func cmdAlerts(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("alerts", flag.ContinueOnError)
	brokers := fs.String("brokers", "", "comma-separated seed brokers (required)")
	topic := fs.String("topic", consumer.DefaultConfig().OutputTopic, "output topic to read")
	fromEnd := fs.Bool("from-end", false, "start at the end of the topic instead of the beginning")
	maxRecords := fs.Int("max", 0, "stop after this many records (0: no limit)")
	idle := fs.Duration("idle-exit", 0, "stop after this long without a new record (0: follow forever)")
	committed := fs.Bool("read-committed", true, "read only committed records (exactly-once output)")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if *brokers == "" {
		return errors.New("--brokers: at least one seed broker is required")
	}
	start := kgo.NewOffset().AtStart()
	if *fromEnd {
		start = kgo.NewOffset().AtEnd()
	}
	isolation := kgo.ReadUncommitted()
	if *committed {
		isolation = kgo.ReadCommitted()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(splitList(*brokers)...), kgo.ConsumeTopics(*topic),
		kgo.ConsumeResetOffset(start), kgo.FetchIsolationLevel(isolation))
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	dec, err := producer.NewDecoder()
	if err != nil {
		return err
	}
	n := 0
	lastRecord := time.Now()
	for ctx.Err() == nil {
		pollCtx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := cl.PollFetches(pollCtx)
		cancel()
		var ferr error
		fetches.EachRecord(func(r *kgo.Record) {
			if ferr != nil || (*maxRecords > 0 && n >= *maxRecords) {
				return
			}
			native, err := dec.Decode(r.Value)
			if err != nil {
				fmt.Fprintf(e.stderr, "topic %s partition %d offset %d: %v\n", r.Topic, r.Partition, r.Offset, err)
				return
			}
			line, err := producer.JSON(native)
			if err != nil {
				ferr = err
				return
			}
			fmt.Fprintf(e.stdout, "%s\n", line)
			n++
			lastRecord = time.Now()
		})
		if ferr != nil {
			return ferr
		}
		if *maxRecords > 0 && n >= *maxRecords {
			return nil
		}
		if *idle > 0 && time.Since(lastRecord) > *idle {
			return nil
		}
	}
	return nil
}
