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
	cl      *kgo.Client
	dec     *producer.Decoder
	w       io.Writer
	warn    io.Writer // undecodable records are reported here and skipped
	printed int64
}

func newRiskPrinter(cl *kgo.Client, w, warn io.Writer) (*riskPrinter, error) {
	dec, err := producer.NewDecoder()
	if err != nil {
		return nil, err
	}
	return &riskPrinter{cl: cl, dec: dec, w: w, warn: warn}, nil
}

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
		native, err := p.dec.Decode(r.Value)
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
