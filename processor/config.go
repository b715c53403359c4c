package processor

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// EmitMode selects when a group's result is emitted.
type EmitMode uint8

const (
	// EmitEarly emits a group's first match at once (EARLY, revision 0) and,
	// at window close, a FINAL revision 1 only if the group changed since.
	EmitEarly EmitMode = iota
	// EmitFinal emits one FINAL (revision 0) per group at window close, as the
	// scheduled ESCU search would.
	EmitFinal
)

// ParseEmitMode parses "early" or "final" (any case).
func ParseEmitMode(s string) (EmitMode, error) {
	switch {
	case strings.EqualFold(s, "early"):
		return EmitEarly, nil
	case strings.EqualFold(s, "final"):
		return EmitFinal, nil
	}
	return 0, fmt.Errorf("unknown emit mode %q (want early or final)", s)
}

// String returns the --emit spelling of m.
func (m EmitMode) String() string {
	switch m {
	case EmitEarly:
		return "early"
	case EmitFinal:
		return "final"
	}
	return fmt.Sprintf("EmitMode(%d)", uint8(m))
}

// Set parses s into m, so that *EmitMode is a flag.Value.
func (m *EmitMode) Set(s string) error {
	v, err := ParseEmitMode(s)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// UnmarshalText parses text like Set, for configuration files.
func (m *EmitMode) UnmarshalText(text []byte) error { return m.Set(string(text)) }

// MarshalText returns the --emit spelling of m.
func (m EmitMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// Limits that keep nanosecond window arithmetic far from int64 overflow.
const (
	maxWindow = 366 * 24 * time.Hour
	maxGrace  = 366 * 24 * time.Hour
)

// Config configures a Partition: matcher and windows.
type Config struct {
	// Window is the tumbling event-time window size (--window). Default 60m.
	// At most 8784h (366 days) and a whole number of milliseconds, because
	// alert ids hash the window bounds in unix milliseconds.
	Window time.Duration
	// Offset shifts window boundaries from the epoch-aligned multiples of
	// Window (--window-offset): a window starts at floor((t-Offset)/Window)*Window+Offset.
	// Default 50m, giving [hh:50, hh+1:50) like ESCU's hourly -70m@m..-10m@m
	// schedule. Must be in [0, Window) and a whole number of milliseconds.
	Offset time.Duration
	// Grace is how far a close line trails its clock, a host's own or the
	// partition's (--grace; docs/windows.md). Default 10m. At most 8784h.
	Grace time.Duration
	// IdleClose is the wall-clock time without events after which Tick moves
	// the partition clock's line to now-Grace, so that quiet partitions still
	// close their windows (--idle-close). Default 1m; 0 disables.
	IdleClose time.Duration
	// Emit selects early or final emission (--emit). Default EmitEarly.
	Emit EmitMode
	// Match selects the matcher (--match). Default MatchESCU.
	Match MatchMode
	// MaxOpenGroups bounds the open groups of one partition
	// (--max-open-groups). When exceeded, the open host window with the
	// oldest end is closed early: its groups are emitted as FINAL and it is
	// counted in PartitionStats.Forced; later matches in it are LATE.
	// Default 100000.
	MaxOpenGroups int
	// MaxFuture is how far an event time may run ahead of the wall clock
	// (--max-future). A later event moves no clock: CheckEventTime reports
	// ErrFutureEventTime and Process and Advance ignore it. Default 15m;
	// positive, at most 8784h.
	MaxFuture time.Duration
	// MaxStateBytes bounds the estimated bytes of open window state
	// (--max-state-bytes), used when Budget is nil to give the partition a
	// budget of its own. Beyond it the open host window with the oldest end
	// is closed early, as for MaxOpenGroups. Default 128 MiB; 0 disables
	// the bound (bytes are still counted).
	MaxStateBytes int64
	// Budget, when set, is shared by every partition created with it, so
	// that MaxStateBytes-like bounds hold per process (NewBudget); it then
	// replaces MaxStateBytes. Default nil.
	Budget *Budget
	// DiscardChanges keeps no state changes, for callers without a
	// changelog (scan): DrainChanges then returns only the meta entry, and
	// memory stays bounded by the open state instead of growing with every
	// group until the next drain. Default false.
	DiscardChanges bool
}

// DefaultConfig returns the ESCU schedule: 60-minute windows ending at :50,
// ten minutes of grace, early emission and the literal ESCU matcher.
func DefaultConfig() Config {
	return Config{
		Window:        60 * time.Minute,
		Offset:        50 * time.Minute,
		Grace:         10 * time.Minute,
		IdleClose:     time.Minute,
		Emit:          EmitEarly,
		Match:         MatchESCU,
		MaxOpenGroups: 100000,
		MaxFuture:     15 * time.Minute,
		MaxStateBytes: 128 << 20,
	}
}

// FieldError is a problem with one Config field; Field is its Go name.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Validate reports every invalid field as a *FieldError, joined. It changes
// nothing.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Err: fmt.Errorf(format, args...)})
	}
	windowOK := false
	switch {
	case c.Window <= 0:
		bad("Window", "must be positive, got %s", c.Window)
	case c.Window > maxWindow:
		bad("Window", "must be at most %s, got %s", maxWindow, c.Window)
	case c.Window%time.Millisecond != 0:
		bad("Window", "must be a whole number of milliseconds, got %s", c.Window)
	default:
		windowOK = true
	}
	switch {
	case c.Offset < 0:
		bad("Offset", "must not be negative, got %s", c.Offset)
	case windowOK && c.Offset >= c.Window:
		bad("Offset", "must be less than Window (%s), got %s", c.Window, c.Offset)
	case c.Offset%time.Millisecond != 0:
		bad("Offset", "must be a whole number of milliseconds, got %s", c.Offset)
	}
	switch {
	case c.Grace < 0:
		bad("Grace", "must not be negative, got %s", c.Grace)
	case c.Grace > maxGrace:
		bad("Grace", "must be at most %s, got %s", maxGrace, c.Grace)
	}
	if c.IdleClose < 0 {
		bad("IdleClose", "must not be negative (0 disables), got %s", c.IdleClose)
	}
	if c.Emit > EmitFinal {
		bad("Emit", "must be early or final, got %s", c.Emit)
	}
	if c.Match > MatchRobust {
		bad("Match", "must be escu or robust, got %s", c.Match)
	}
	if c.MaxOpenGroups < 1 {
		bad("MaxOpenGroups", "must be positive, got %d", c.MaxOpenGroups)
	}
	if c.MaxFuture <= 0 || c.MaxFuture > maxGrace {
		bad("MaxFuture", "must be positive and at most %s, got %s", maxGrace, c.MaxFuture)
	}
	if c.MaxStateBytes < 0 {
		bad("MaxStateBytes", "must not be negative (0 disables), got %d", c.MaxStateBytes)
	}
	return errors.Join(errs...)
}
