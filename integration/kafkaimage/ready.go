package kafkaimage

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// WaitReady polls the broker at seed until its metadata lists a broker and
// a controller, or timeout passes. Before each attempt running reports
// whether the container still runs (nil) or why not, so that a broker that
// died is reported at once rather than at the timeout.
func WaitReady(ctx context.Context, seed string, timeout time.Duration, running func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.RequestRetries(0))
	if err != nil {
		return fmt.Errorf("readiness client for %s: %w", seed, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var lastErr error
	for {
		if err := running(ctx); err != nil {
			return fmt.Errorf("broker container before answering on %s: %w", seed, err)
		}
		attempt, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
		meta, err := adm.BrokerMetadata(attempt)
		cancelAttempt()
		switch {
		case err != nil:
			lastErr = err
		case len(meta.Brokers) == 0 || meta.Controller < 0:
			lastErr = fmt.Errorf("metadata lists %d brokers, controller %d", len(meta.Brokers), meta.Controller)
		default:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("broker on %s not ready after %s: %w", seed, timeout, lastErr)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
