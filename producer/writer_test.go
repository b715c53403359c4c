package producer

import (
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestRecordRejected: only errors about the record itself make a dead
// letter worth writing again reduced; errors of the producer or the
// transaction do not.
func TestRecordRejected(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"too large", kerr.MessageTooLarge, true},
		{"too large, wrapped", fmt.Errorf("partition 0: %w", kerr.MessageTooLarge), true},
		{"invalid record", kerr.InvalidRecord, true},
		{"not authorized for the topic", kerr.TopicAuthorizationFailed, true},
		{"fenced producer", kerr.InvalidProducerEpoch, false},
		{"transaction abortable", kerr.TransactionAbortable, false},
		{"not leader (retriable)", kerr.NotLeaderForPartition, false},
		{"client error", errors.New("context canceled"), false},
		{"nil", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := RecordRejected(tc.err); got != tc.want {
				t.Fatalf("RecordRejected(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
