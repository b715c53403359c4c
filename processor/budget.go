package processor

import (
	"sync/atomic"
	"unsafe"
)

// Budget bounds the window state of several partitions of one process in
// bytes. It is safe for concurrent use: each Partition adds and removes its
// own bytes atomically. When the total exceeds the limit, a partition holding
// more than its share (limit divided by the partitions using the budget)
// closes its host windows with the oldest end early, on its next Process,
// Advance or Tick, until it is back under its share or the total under the
// limit. The total may therefore exceed the limit by what other partitions
// add before an over-share partition's next call.
type Budget struct {
	limit int64
	used  atomic.Int64
	parts atomic.Int64
}

// NewBudget returns a budget of limit bytes; 0 or less means unbounded (the
// bytes are still counted).
func NewBudget(limit int64) *Budget { return &Budget{limit: limit} }

// Limit returns the configured limit in bytes (0 or less: unbounded).
func (b *Budget) Limit() int64 { return b.limit }

// Used returns the bytes held by all partitions using the budget.
func (b *Budget) Used() int64 { return b.used.Load() }

// Partitions returns how many partitions use the budget (created and not
// yet released).
func (b *Budget) Partitions() int64 { return b.parts.Load() }

// overShare reports whether a partition holding own bytes must shed state.
func (b *Budget) overShare(own int64) bool {
	if b.limit <= 0 || own <= 0 || b.used.Load() <= b.limit {
		return false
	}
	return own > b.limit/max(1, b.parts.Load())
}

// State size estimates. They count what a piece of state keeps reachable:
// its struct and strings rounded up to the allocator's size classes, plus
// its share of the containers holding it (map slots at a typical load, slice
// and heap slots). BenchmarkStateBytes compares them with the heap.
var (
	groupStructBytes  = allocSize(int(unsafe.Sizeof(group{})))
	windowStructBytes = allocSize(int(unsafe.Sizeof(window{})))
	hostStructBytes   = allocSize(int(unsafe.Sizeof(host{})))
)

const (
	alertIDBytes = 32 // hex of 128 bits
	// A window's groups live in a slice (8 B a pointer, doubled for growth
	// slack) until indexByKey groups, then also in a map slot holding a
	// GroupKey and a pointer (120 B) at about 70% load.
	groupSlotBytes      = 16
	groupIndexSlotBytes = 176
	// Partition.windows slot (hostWindow and pointer, 32 B at ~70% load),
	// heap slot and host slot.
	windowSlotBytes = 48 + 8 + 8
	// Partition.hosts slot: string header and pointer at ~70% load.
	hostSlotBytes = 40
	// Partition.forced slot: hostWindow and end (40 B at ~70% load).
	forcedSlotBytes = 64
)

// allocSize rounds n up the way the Go allocator's small size classes do
// (approximately: exact to 128 B, then within one class step).
func allocSize(n int) int64 {
	switch {
	case n <= 0:
		return 0
	case n <= 8:
		return 8
	case n <= 128:
		return int64((n + 15) &^ 15)
	case n <= 256:
		return int64((n + 31) &^ 31)
	case n <= 1024:
		return int64((n + 127) &^ 127)
	case n <= 32768:
		return int64((n + 1023) &^ 1023)
	}
	return int64((n + 8191) &^ 8191)
}

// stringBytes is what a string kept by the state costs; Null is a constant
// and costs nothing.
func stringBytes(s string) int64 {
	if s == Null {
		return 0
	}
	return allocSize(len(s))
}

func (g *group) sizeBytes(indexed bool) int64 {
	n := groupStructBytes + allocSize(alertIDBytes) + groupSlotBytes
	if indexed {
		n += groupIndexSlotBytes
	}
	// GroupKey.Dest is shared with the host and the window; counting it
	// once per group over-counts hosts with many groups, on the safe side.
	for _, s := range g.stringFields() {
		n += stringBytes(*s)
	}
	return n
}
