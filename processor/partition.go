package processor

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Event times are clamped to ±2^62 ns around the epoch (about 1824 to 2116)
// so that window arithmetic cannot overflow. A decoder should reject such
// times; clamped ones still land in a deterministic window.
const (
	minNanos = -(1 << 62)
	maxNanos = 1 << 62
)

var minTime, maxTime = time.Unix(0, minNanos), time.Unix(0, maxNanos)

func toNanos(t time.Time) int64 {
	// Compare before UnixNano, which is undefined outside 1678..2262.
	if t.Before(minTime) {
		return minNanos
	}
	if t.After(maxTime) {
		return maxNanos
	}
	return t.UnixNano()
}

func fromNanos(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// PartitionStats counts what a Partition did since it was created (counters
// are not part of the durable state) and what it holds now.
type PartitionStats struct {
	Matched     int64 // matching events processed
	Early       int64 // EARLY results emitted
	Final       int64 // FINAL results emitted
	Late        int64 // LATE results emitted (matches for closed windows)
	Forced      int64 // host windows closed early by MaxOpenGroups
	OpenWindows int   // open host windows (one per dest and window start)
	OpenGroups  int   // open groups over all host windows
}

// hostWindow names one window of one host: the partition keeps windows per
// dest (GroupKey.Dest, so a missing dest is Null) and per window start.
type hostWindow struct {
	dest  string
	start int64 // unix ns
}

type window struct {
	hw     hostWindow
	end    int64 // unix ns, exclusive
	groups map[GroupKey]*group
}

// group is one result row in the making.
type group struct {
	key         GroupKey
	alertID     string
	start, end  int64
	count       int64
	first, last int64 // min and max event time, unix ns

	// earlyEmitted records that revision 0 went out as EARLY, with the count
	// and last time it carried; it is durable, so that a restored partition
	// neither repeats the EARLY nor reuses revision 0 for the FINAL.
	earlyEmitted bool
	earlyCount   int64
	earlyLast    int64

	// Context of the first event to arrive; it stays the same in every
	// revision of the group.
	parentProcess, processPath, parentProcessPath, originalFileName string

	queued    bool // in Partition.dirty
	persisted bool // a drained change holds it, so closing needs a tombstone
	closed    bool
}

// Partition is the window state of one input partition. It is deterministic:
// the same calls with the same arguments append the same results. It is not
// safe for concurrent use; one goroutine owns it.
//
// Windows are kept per host: a matching event of dest d at time t belongs to
// the host window (d, start(t)) and, in it, to the group KeyOf(e). The
// watermark is the newest event time seen minus Grace (or, when idle, the
// wall clock minus Grace; see Tick) and never moves back. A host window closes
// when the watermark reaches its end. A closed host window never reopens:
// later matches for it are LATE.
type Partition struct {
	cfg                   Config
	window, offset, grace int64

	hasWatermark bool
	watermark    int64

	windows    map[hostWindow]*window
	openGroups int
	minEnd     int64 // smallest end among windows; valid when len(windows) > 0

	// forced holds force-closed host windows (to their end) until the
	// watermark passes them; until then a match there is LATE too.
	forced         map[hostWindow]int64
	minForcedEnd   int64
	armed          bool // lastArrival is set: the idle timer runs
	lastArrival    time.Time
	dirty          []*group
	tombstones     []string // alert ids of closed, persisted groups
	metaDirty      bool
	restoreIndex   map[string]*group // by alert id, only between Restore calls
	stats          PartitionStats
	closingScratch []*window
}

// NewPartition returns an empty partition, or the error of cfg.Validate.
func NewPartition(cfg Config) (*Partition, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("processor config: %w", err)
	}
	return &Partition{
		cfg:     cfg,
		window:  int64(cfg.Window),
		offset:  int64(cfg.Offset),
		grace:   int64(cfg.Grace),
		windows: make(map[hostWindow]*window),
		forced:  make(map[hostWindow]int64),
	}, nil
}

// windowStart returns floor((t-Offset)/Window)*Window + Offset.
func (p *Partition) windowStart(t int64) int64 {
	d := t - p.offset
	q := d / p.window
	if d%p.window < 0 {
		q--
	}
	return q*p.window + p.offset
}

// Process applies the matcher to a fully decoded event, then updates window
// state and advances the watermark by the event's time; now is the wall clock
// of its arrival, for Tick. Results are appended to out in this order:
//   - EARLY (revision 0) when, in early mode, the event opens a group;
//   - LATE when the event's host window is closed (its end is at or before
//     the watermark, or it was force-closed): Count 1, FirstSeen = LastSeen
//     = the event time, revision 0, counted in Stats().Late, never dropped;
//   - FINALs of host windows that MaxOpenGroups force-closed;
//   - FINALs of host windows the advanced watermark closed.
//
// A non-matching event costs what Advance costs and does not allocate.
func (p *Partition) Process(e *Event, now time.Time, out []Result) []Result {
	p.touch(now)
	t := toNanos(e.Time)
	if Match(p.cfg.Match, e) {
		out = p.add(e, t, out)
	}
	return p.advance(t, out)
}

// Advance records an event that cannot match (rejected by the prefilter, or
// decoded and not matching): its event time moves the watermark and its
// arrival resets the idle timer. It may append FINALs of windows the
// watermark closed, and does not allocate otherwise.
func (p *Partition) Advance(eventTime, now time.Time, out []Result) []Result {
	p.touch(now)
	return p.advance(toNanos(eventTime), out)
}

// Tick closes windows of a partition that has been idle: when no Process or
// Advance came for IdleClose of wall-clock time, the watermark moves to
// now-Grace (never backwards) and the host windows it passes close. The idle
// timer starts at the last Process or Advance, or, on a new or restored
// partition, at its first Tick: a restored partition therefore closes due
// windows one IdleClose after the restart even if no event ever arrives,
// without racing the backlog the consumer is about to read. IdleClose 0
// disables Tick.
func (p *Partition) Tick(now time.Time, out []Result) []Result {
	p.restoreIndex = nil
	if p.cfg.IdleClose <= 0 {
		return out
	}
	if !p.armed {
		p.touch(now)
		return out
	}
	if now.Sub(p.lastArrival) < p.cfg.IdleClose {
		return out
	}
	p.raiseWatermark(toNanos(now) - p.grace)
	return p.closeDue(out)
}

// Flush closes every open host window (end of input for scan, or shutdown),
// emitting FINALs as a normal close would, and moves the watermark to the
// latest end it closed so that those windows stay closed: a later match in
// one of them is LATE rather than a second EARLY under the same alert id.
func (p *Partition) Flush(out []Result) []Result {
	p.restoreIndex = nil
	if len(p.windows) == 0 {
		return out
	}
	var latest int64
	first := true
	for _, w := range p.windows {
		if first || w.end > latest {
			latest, first = w.end, false
		}
	}
	out = p.closeWindows(out, latest)
	p.raiseWatermark(latest)
	p.pruneForced()
	return out
}

// Watermark returns the current watermark, or the zero Time before the first
// event or idle Tick.
func (p *Partition) Watermark() time.Time {
	if !p.hasWatermark {
		return time.Time{}
	}
	return fromNanos(p.watermark)
}

// Stats returns the counters and the current open windows and groups.
func (p *Partition) Stats() PartitionStats {
	s := p.stats
	s.OpenWindows = len(p.windows)
	s.OpenGroups = p.openGroups
	return s
}

func (p *Partition) touch(now time.Time) {
	p.armed = true
	p.lastArrival = now
	p.restoreIndex = nil
}

func (p *Partition) advance(t int64, out []Result) []Result {
	p.raiseWatermark(t - p.grace)
	return p.closeDue(out)
}

func (p *Partition) raiseWatermark(wm int64) {
	if !p.hasWatermark || wm > p.watermark {
		p.watermark, p.hasWatermark = wm, true
		p.metaDirty = true
	}
}

// closeDue closes the host windows whose end the watermark has reached. It is
// on every event's path, so the common case is two comparisons.
func (p *Partition) closeDue(out []Result) []Result {
	if !p.hasWatermark {
		return out
	}
	if len(p.windows) > 0 && p.watermark >= p.minEnd {
		out = p.closeWindows(out, p.watermark)
	}
	if len(p.forced) > 0 && p.watermark >= p.minForcedEnd {
		p.pruneForced()
	}
	return out
}

// closed reports whether matches for host window hw (ending at end) are LATE.
func (p *Partition) closed(hw hostWindow, end int64) bool {
	if p.hasWatermark && end <= p.watermark {
		return true
	}
	if len(p.forced) == 0 {
		return false
	}
	_, ok := p.forced[hw]
	return ok
}

// add records a matching event at time t.
func (p *Partition) add(e *Event, t int64, out []Result) []Result {
	p.stats.Matched++
	start := p.windowStart(t)
	end := start + p.window
	key := KeyOf(e)
	hw := hostWindow{dest: key.Dest, start: start}
	w := p.windows[hw]
	if w != nil {
		// A restored window keeps the bounds it was opened with.
		end = w.end
	}
	if p.closed(hw, end) {
		p.stats.Late++
		return append(out, Result{
			AlertID:           lateAlertID(start, end, &key, t),
			Key:               key,
			Count:             1,
			FirstSeen:         fromNanos(t),
			LastSeen:          fromNanos(t),
			WindowStart:       fromNanos(start),
			WindowEnd:         fromNanos(end),
			Emission:          EmissionLate,
			ParentProcess:     e.ParentProcess,
			ProcessPath:       e.ProcessPath,
			ParentProcessPath: e.ParentProcessPath,
			OriginalFileName:  e.OriginalFileName,
		})
	}
	if w == nil {
		w = &window{hw: hw, end: end, groups: make(map[GroupKey]*group, 1)}
		p.addWindow(w)
	}
	if g := w.groups[key]; g != nil {
		g.count++
		g.first = min(g.first, t)
		g.last = max(g.last, t)
		p.markDirty(g)
		return out
	}
	g := &group{
		key:               key,
		alertID:           windowAlertID(start, end, &key),
		start:             start,
		end:               end,
		count:             1,
		first:             t,
		last:              t,
		parentProcess:     e.ParentProcess,
		processPath:       e.ProcessPath,
		parentProcessPath: e.ParentProcessPath,
		originalFileName:  e.OriginalFileName,
	}
	w.groups[key] = g
	p.openGroups++
	p.markDirty(g)
	if p.cfg.Emit == EmitEarly {
		g.earlyEmitted, g.earlyCount, g.earlyLast = true, g.count, g.last
		p.stats.Early++
		out = append(out, g.result(EmissionEarly, 0))
	}
	for p.openGroups > p.cfg.MaxOpenGroups && len(p.windows) > 0 {
		out = p.forceCloseOldest(out)
	}
	return out
}

func (p *Partition) addWindow(w *window) {
	if len(p.windows) == 0 || w.end < p.minEnd {
		p.minEnd = w.end
	}
	p.windows[w.hw] = w
}

func (p *Partition) markDirty(g *group) {
	if !g.queued {
		g.queued = true
		p.dirty = append(p.dirty, g)
	}
}

func (g *group) result(em Emission, revision int32) Result {
	return Result{
		AlertID:           g.alertID,
		Key:               g.key,
		Count:             g.count,
		FirstSeen:         fromNanos(g.first),
		LastSeen:          fromNanos(g.last),
		WindowStart:       fromNanos(g.start),
		WindowEnd:         fromNanos(g.end),
		Emission:          em,
		Revision:          revision,
		ParentProcess:     g.parentProcess,
		ProcessPath:       g.processPath,
		ParentProcessPath: g.parentProcessPath,
		OriginalFileName:  g.originalFileName,
	}
}

// forceCloseOldest closes the host window with the oldest end (ties broken by
// dest, then start) because the partition holds too many groups.
func (p *Partition) forceCloseOldest(out []Result) []Result {
	var oldest *window
	for _, w := range p.windows {
		if oldest == nil || compareWindows(w, oldest) < 0 {
			oldest = w
		}
	}
	p.stats.Forced++
	if len(p.forced) == 0 || oldest.end < p.minForcedEnd {
		p.minForcedEnd = oldest.end
	}
	p.forced[oldest.hw] = oldest.end
	p.metaDirty = true
	out = p.emitClose(out, oldest)
	delete(p.windows, oldest.hw)
	p.recomputeMinEnd()
	return out
}

// closeWindows closes every host window ending at or before limit, in order
// of end, dest and start; groups within a window in GroupKey order.
func (p *Partition) closeWindows(out []Result, limit int64) []Result {
	closing := p.closingScratch[:0]
	for _, w := range p.windows {
		if w.end <= limit {
			closing = append(closing, w)
		}
	}
	slices.SortFunc(closing, compareWindows)
	for _, w := range closing {
		out = p.emitClose(out, w)
		delete(p.windows, w.hw)
	}
	clear(closing)
	p.closingScratch = closing[:0]
	p.recomputeMinEnd()
	return out
}

func compareWindows(a, b *window) int {
	if c := cmp.Compare(a.end, b.end); c != 0 {
		return c
	}
	if c := cmp.Compare(a.hw.dest, b.hw.dest); c != 0 {
		return c
	}
	return cmp.Compare(a.hw.start, b.hw.start)
}

func compareKeys(a, b *GroupKey) int {
	return cmp.Or(
		cmp.Compare(a.Dest, b.Dest),
		cmp.Compare(a.User, b.User),
		cmp.Compare(a.ParentProcessName, b.ParentProcessName),
		cmp.Compare(a.ProcessName, b.ProcessName),
		cmp.Compare(a.Process, b.Process),
		cmp.Compare(a.ProcessID, b.ProcessID),
		cmp.Compare(a.ParentProcessID, b.ParentProcessID),
	)
}

// emitClose appends the FINALs of w's groups and retires them. A group whose
// EARLY went out gets a FINAL (revision 1) only if it changed since; any
// other group gets a FINAL revision 0.
func (p *Partition) emitClose(out []Result, w *window) []Result {
	groups := make([]*group, 0, len(w.groups))
	for _, g := range w.groups {
		groups = append(groups, g)
	}
	slices.SortFunc(groups, func(a, b *group) int { return compareKeys(&a.key, &b.key) })
	for _, g := range groups {
		switch {
		case !g.earlyEmitted:
			p.stats.Final++
			out = append(out, g.result(EmissionFinal, 0))
		case g.count != g.earlyCount || g.last != g.earlyLast:
			p.stats.Final++
			out = append(out, g.result(EmissionFinal, 1))
		}
		g.closed = true
		if g.persisted {
			p.tombstones = append(p.tombstones, g.alertID)
		}
	}
	p.openGroups -= len(w.groups)
	return out
}

func (p *Partition) recomputeMinEnd() {
	first := true
	for _, w := range p.windows {
		if first || w.end < p.minEnd {
			p.minEnd, first = w.end, false
		}
	}
}

// pruneForced forgets force-closed host windows the watermark has passed:
// the watermark alone now makes their matches LATE.
func (p *Partition) pruneForced() {
	if !p.hasWatermark {
		return
	}
	first := true
	for hw, end := range p.forced {
		if end <= p.watermark {
			delete(p.forced, hw)
			p.metaDirty = true
			continue
		}
		if first || end < p.minForcedEnd {
			p.minForcedEnd, first = end, false
		}
	}
}
