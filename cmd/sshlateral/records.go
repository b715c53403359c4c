package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/cmd/internal/kafkaclient"
	"github.com/sshlateral/sshlateral/producer"
)

// riskPrinter prints the risk records a client consumes as JSON lines; alerts
// and demo share it.
type riskPrinter struct {
	cl *kgo.Client
	// decode reads one record value: the embedded schema, or the
	// registry's schema of the id in the record (useRegistry).
	decode  func(ctx context.Context, value []byte) (map[string]any, error)
	w       io.Writer
	warn    io.Writer // undecodable records are reported here and skipped
	printed int64
}

func newRiskPrinter(cl *kgo.Client, w, warn io.Writer) (*riskPrinter, error) {
	dec, err := producer.NewDecoder()
	if err != nil {
		return nil, err
	}
	decode := func(_ context.Context, value []byte) (map[string]any, error) { return dec.Decode(value) }
	return &riskPrinter{cl: cl, decode: decode, w: w, warn: warn}, nil
}

// useRegistry decodes records by the schema id in their Confluent header,
// through the registry, resolving older writer schemas to ours.
func (p *riskPrinter) useRegistry(dec *producer.RegistryDecoder) { p.decode = dec.Decode }

// poll waits up to wait for records and prints at most limit of them (0: no
// limit). A fetch error (authorization, missing topic, lost data) ends the
// run: it would not heal by polling again.
func (p *riskPrinter) poll(ctx context.Context, wait time.Duration, limit int64) (int, error) {
	pollCtx, cancel := context.WithTimeout(ctx, wait)
	fetches := p.cl.PollFetches(pollCtx)
	cancel()
	if err := kafkaclient.FetchError(fetches); err != nil {
		return 0, err
	}
	n := 0
	var werr error
	fetches.EachRecord(func(r *kgo.Record) {
		if werr != nil || (limit > 0 && p.printed >= limit) {
			return
		}
		native, err := p.decode(ctx, r.Value)
		if err != nil {
			fmt.Fprintf(p.warn, "topic %s partition %d offset %d: %v\n", r.Topic, r.Partition, r.Offset, err)
			return
		}
		line, err := producer.JSON(native)
		if err != nil {
			werr = fmt.Errorf("topic %s partition %d offset %d: %w", r.Topic, r.Partition, r.Offset, err)
			return
		}
		if _, werr = fmt.Fprintf(p.w, "%s\n", line); werr == nil {
			p.printed++
			n++
		}
	})
	return n, werr
}
