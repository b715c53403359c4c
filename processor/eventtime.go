package processor

import (
	"errors"
	"fmt"
	"time"
)

// Supported event times run from the epoch to maxEventSec (2116-02-20), so
// that nanosecond window arithmetic stays far from int64 overflow. Earlier or
// later times are errors, not clamped: no real process start is dated there.
const maxEventSec = 4611686018 // floor(2^62 ns / 1e9)

var (
	minEventTime = time.Unix(0, 0).UTC()
	maxEventTime = time.Unix(maxEventSec, 0).UTC()
)

// ErrEventTimeRange marks an event time before 1970 or after early 2116: the
// record is undecodable as far as the detection is concerned.
var ErrEventTimeRange = errors.New("event time outside the supported range")

// ErrFutureEventTime marks an event time more than Config.MaxFuture ahead of
// the wall clock. Such an event must not move any clock; the consumer
// dead-letters it (reason future_event_time).
var ErrFutureEventTime = errors.New("event time too far ahead of the wall clock")

// CheckEventTime reports whether an event dated t, arriving when the wall
// clock reads now, may enter a Partition: nil, or an error wrapping
// ErrEventTimeRange or ErrFutureEventTime. An event exactly maxFuture ahead
// is accepted. Process and Advance apply the same test and ignore (count in
// PartitionStats.Ignored, change nothing) what fails it; callers check first
// so that such records are dead-lettered rather than dropped.
func CheckEventTime(t, now time.Time, maxFuture time.Duration) error {
	if s := t.Unix(); s < 0 || s >= maxEventSec {
		return fmt.Errorf("%w: %s is not in [%s, %s)", ErrEventTimeRange,
			t.UTC().Format(time.RFC3339Nano), minEventTime.Format(time.RFC3339), maxEventTime.Format(time.RFC3339))
	}
	if t.After(now.Add(maxFuture)) {
		return fmt.Errorf("%w: %s is %s ahead of the wall clock %s (at most %s)", ErrFutureEventTime,
			t.UTC().Format(time.RFC3339Nano), t.Sub(now).Round(time.Millisecond), now.UTC().Format(time.RFC3339Nano), maxFuture)
	}
	return nil
}

// eventNanos is CheckEventTime without the error values, on the event path:
// t in unix ns if it is in range, else false.
func eventNanos(t time.Time) (int64, bool) {
	if s := t.Unix(); s < 0 || s >= maxEventSec {
		return 0, false
	}
	return t.UnixNano(), true
}

// wallNanos returns the wall clock in unix ns, clamped into the supported
// range so that sums with durations cannot overflow.
func wallNanos(now time.Time) int64 {
	switch s := now.Unix(); {
	case s < 0:
		return 0
	case s >= maxEventSec:
		return maxEventSec * 1e9
	}
	return now.UnixNano()
}

func fromNanos(ns int64) time.Time { return time.Unix(0, ns).UTC() }
