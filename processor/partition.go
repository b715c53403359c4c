package processor

import (
	"cmp"
	"container/heap"
	"fmt"
	"slices"
	"time"
)

// PartitionStats counts what a Partition did since it was created (counters
// are not part of the durable state) and what it holds now.
type PartitionStats struct {
	Matched     int64 // matching events processed
	Early       int64 // EARLY results emitted
	Final       int64 // FINAL results emitted
	Late        int64 // LATE results emitted (matches for closed windows)
	Forced      int64 // host windows closed early by MaxOpenGroups or the byte budget
	OpenWindows int   // open host windows (one per dest and window start)
	OpenGroups  int   // open groups over all host windows

	// Ignored counts events Process or Advance left out because their time
	// failed CheckEventTime (out of range, or beyond MaxFuture).
	Ignored int64
	// ClocksDiscarded counts restored clocks (partition, host) found beyond
	// the wall clock plus MaxFuture at the first call after Restore.
	ClocksDiscarded int64
	// Hosts is the number of host clocks kept: hosts with open windows, or
	// whose clock is ahead of the partition clock.
	Hosts int
	// StateBytes estimates the memory the open state keeps reachable; it is
	// what the partition counts against its Budget.
	StateBytes int64
}

// hostWindow names one window of one host: the partition keeps windows per
// dest (GroupKey.Dest, so a missing dest is Null) and per window start.
type hostWindow struct {
	dest  string
	start int64 // unix ns
}

type window struct {
	hw    hostWindow
	end   int64 // unix ns, exclusive
	host  *host
	index int // in Partition.heap
	// groups holds the window's groups; byKey indexes them once there are
	// more than indexByKey (most windows hold one or two, and a map of
	// GroupKey costs a kilobyte even when nearly empty).
	groups []*group
	byKey  map[GroupKey]*group
}

const indexByKey = 8

func (w *window) find(k *GroupKey) *group {
	if w.byKey != nil {
		return w.byKey[*k]
	}
	for _, g := range w.groups {
		if g.key == *k {
			return g
		}
	}
	return nil
}

// host is the event-time clock of one dest: the newest time among its
// matching events while the partition keeps it. Non-matching events move
// only the partition clock: most reach the partition without a dest
// (rejected by the prefilter), and looking up the others would cost every
// event a map access for no change in results.
type host struct {
	dest       string
	clock      int64 // unix ns
	wins       []*window
	queued     bool // in Partition.dirtyHosts
	persisted  bool // a drained change holds it, so forgetting needs a tombstone
	idleQueued bool // in Partition.idle
	gone       bool // forgotten; stale pointers skip it
}

// line is the host's close line: its windows ending at or before it close.
func (h *host) line(grace int64) int64 { return h.clock - grace }

// group is one result row in the making.
type group struct {
	key         GroupKey
	alertID     string
	start, end  int64
	count       int64
	first, last int64 // min and max event time, unix ns
	bytes       int64 // counted against the budget

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
// the host window (d, start(t)) and, in it, to the group KeyOf(e). Two clocks
// close them (docs/windows.md):
//   - each host's own clock, the newest time among its matching events: a
//     host window closes when that clock minus Grace reaches its end, so a
//     host's results depend on its own events only;
//   - the partition clock, which closes the windows of hosts that fell
//     silent: the newest accepted event time of any host, but never ahead of
//     the wall clock of the arrivals, minus Grace (or, when idle, the wall
//     clock minus Grace; see Tick). Watermark returns it.
//
// Events dated more than MaxFuture ahead of the wall clock, or outside the
// supported range, move no clock. Clocks never move back, and a closed host
// window never reopens (later matches for it are LATE), except where the
// first call after a Restore discards a clock found beyond the future bound.
type Partition struct {
	cfg                              Config
	window, offset, grace, maxFuture int64

	hasNewest bool
	newest    int64 // newest accepted event time of any event
	hasLine   bool
	line      int64 // partition close line (Watermark)

	windows    map[hostWindow]*window
	heap       windowHeap // open windows, oldest end first
	hosts      map[string]*host
	idle       idleHeap // hosts without windows, to forget once the line passes them
	openGroups int

	// forced holds force-closed host windows (to their end) until the
	// partition line passes them; until then a match there is LATE too.
	forced       map[hostWindow]int64
	minForcedEnd int64

	budget   *Budget
	bytes    int64
	released bool

	// The idle timer runs on the wall clock of Ticks alone, so that Process
	// and Advance may be given append times: arrived records that an event
	// came since the last Tick, lastArrival the first Tick after it.
	arrived        bool
	armed          bool // lastArrival is set: the idle timer runs
	lastArrival    time.Time
	restored       bool // Restore ran; the next call with a wall clock validates clocks
	dirty          []*group
	dirtyHosts     []*host
	tombstones     []string // alert ids of closed, persisted groups
	hostTombstones []string // dests of forgotten, persisted hosts
	metaDirty      bool
	restoreIndex   map[string]*group // by alert id, only between Restore calls
	stats          PartitionStats
	closingScratch []*window
}

// NewPartition returns an empty partition, or the error of cfg.Validate. It
// counts itself against cfg.Budget (or a budget of its own of
// cfg.MaxStateBytes); Release gives the bytes back.
func NewPartition(cfg Config) (*Partition, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("processor config: %w", err)
	}
	b := cfg.Budget
	if b == nil {
		b = NewBudget(cfg.MaxStateBytes)
	}
	b.parts.Add(1)
	return &Partition{
		cfg:       cfg,
		window:    int64(cfg.Window),
		offset:    int64(cfg.Offset),
		grace:     int64(cfg.Grace),
		maxFuture: int64(cfg.MaxFuture),
		windows:   make(map[hostWindow]*window),
		hosts:     make(map[string]*host),
		forced:    make(map[hostWindow]int64),
		budget:    b,
	}, nil
}

// Release returns the partition's bytes to its Budget and stops counting it
// among the budget's partitions; call it when the partition is dropped (for
// example when its input partition is revoked). The partition must not be
// used afterwards. A second call does nothing.
func (p *Partition) Release() {
	if p.released {
		return
	}
	p.released = true
	p.budget.used.Add(-p.bytes)
	p.budget.parts.Add(-1)
	p.bytes = 0
}

func (p *Partition) charge(n int64) {
	p.bytes += n
	p.budget.used.Add(n)
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
// state and the clocks by the event's time. now is the wall clock of its
// arrival: best the time the record was appended to the input (its broker
// timestamp, capped at the current time), so that a backlog read after an
// outage keeps the bounds it would have had live; the current time is
// correct too, but then bounds a backlog by the present only. An event
// whose time fails CheckEventTime(e.Time, now, MaxFuture) changes nothing
// and is counted in Stats().Ignored. Results are
// appended to out in this order:
//   - after a Restore, FINALs of restored windows that lie beyond the wall
//     clock plus MaxFuture (state written before the future bound existed);
//   - EARLY (revision 0) when, in early mode, the event opens a group;
//   - LATE when the event's host window is closed (its end is at or before
//     the host's or the partition's close line, or it was force-closed):
//     Count 1, FirstSeen = LastSeen = the event time, revision 0, counted in
//     Stats().Late, never dropped;
//   - FINALs of host windows that MaxOpenGroups or the budget force-closed;
//   - FINALs of the event's host's windows its advanced clock closed;
//   - FINALs of host windows the budget force-closed (when another
//     partition sharing it pushed it over) and of those the advanced
//     partition clock closed.
//
// A non-matching event costs what Advance costs plus the matcher, and does
// not allocate.
func (p *Partition) Process(e *Event, now time.Time, out []Result) []Result {
	return p.ProcessArrived(e, now, now, out)
}

// ProcessArrived is Process with the two uses of now apart. The event is
// checked against wall, the consumer's clock: an event dated after its
// record's append time may be a shipper's clock behind the host's, and a
// true positive must not be ignored for it. The partition clock stays
// bounded by arrival (the append time, at most wall): an event dated
// ahead of its arrival moves its own host's clock, but closes no other
// host's window before the stream's append times reach it. Process(e, now)
// is ProcessArrived(e, now, now).
func (p *Partition) ProcessArrived(e *Event, arrival, wall time.Time, out []Result) []Result {
	t, ok := eventNanos(e.Time)
	wallNs := wallNanos(wall)
	if !ok || t > wallNs+p.maxFuture {
		p.stats.Ignored++
		return out
	}
	out = p.touch(wallNs, out)
	if Match(p.cfg.Match, e) {
		out = p.add(e, t, out)
	}
	return p.advance(t, min(wallNanos(arrival), wallNs), out)
}

// Advance records an event that cannot match and whose host is unknown
// (rejected by the prefilter before its dest was read): its event time
// moves the partition clock and its arrival resets the idle timer. An
// event whose time fails CheckEventTime changes nothing. It may append
// FINALs of windows the partition clock closed (or, while the partition is
// over its share of an exceeded Budget, force-closed), and does not
// allocate otherwise.
func (p *Partition) Advance(eventTime, now time.Time, out []Result) []Result {
	return p.AdvanceArrived(eventTime, now, now, out)
}

// AdvanceArrived is Advance with arrival and wall apart, as in
// ProcessArrived.
func (p *Partition) AdvanceArrived(eventTime, arrival, wall time.Time, out []Result) []Result {
	t, ok := eventNanos(eventTime)
	wallNs := wallNanos(wall)
	if !ok || t > wallNs+p.maxFuture {
		p.stats.Ignored++
		return out
	}
	out = p.touch(wallNs, out)
	return p.advance(t, min(wallNanos(arrival), wallNs), out)
}

// Tick closes windows of a partition that has been idle: when no Process or
// Advance came for IdleClose of wall-clock time, the partition clock moves
// to now-Grace (never backwards) and the host windows it passes close. The
// idle timer runs on the Ticks' wall clock alone: it restarts at the first
// Tick after an event (so idleness is measured with the granularity of the
// Ticks) and, on a new or restored partition, at its first Tick: a
// restored partition therefore closes due windows one IdleClose after the
// restart even if no event ever arrives, without racing the backlog the
// consumer is about to read. IdleClose 0 disables the idle close. Tick also sheds state while the
// partition is over its share of an exceeded Budget.
func (p *Partition) Tick(now time.Time, out []Result) []Result {
	p.restoreIndex = nil
	nowNs := wallNanos(now)
	if p.restored {
		out = p.settle(nowNs, out)
	}
	out = p.shed(out)
	if p.cfg.IdleClose <= 0 {
		return out
	}
	if p.arrived || !p.armed {
		p.arrived, p.armed, p.lastArrival = false, true, now
		return out
	}
	if now.Sub(p.lastArrival) < p.cfg.IdleClose || len(p.heap) == 0 {
		// Idle close is for windows left open by a quiet partition; with
		// none open the clock stays, so that a backfill of older events
		// into a fresh partition is not late before it starts.
		return out
	}
	p.raiseLine(nowNs - p.grace)
	return p.closeDue(out)
}

// Flush closes every open host window (end of input for scan, or shutdown),
// emitting FINALs as a normal close would, and moves the partition clock to
// the latest end it closed (or force-closed earlier) so that those windows
// stay closed: a later match in one of them is LATE rather than a second
// EARLY under the same alert id. Afterwards the partition holds no windows;
// only host clocks still ahead of the partition clock remain.
func (p *Partition) Flush(out []Result) []Result {
	p.restoreIndex = nil
	if len(p.heap) == 0 && len(p.forced) == 0 {
		return out
	}
	var latest int64
	first := true
	for _, w := range p.heap {
		if first || w.end > latest {
			latest, first = w.end, false
		}
	}
	for _, end := range p.forced {
		if first || end > latest {
			latest, first = end, false
		}
	}
	out = p.closeWindows(out, latest)
	p.raiseLine(latest)
	return p.closeDue(out)
}

// Watermark returns the partition clock's close line: host windows ending at
// or before it are closed whatever their host's own clock says. It is the
// zero Time before the first event or idle Tick.
func (p *Partition) Watermark() time.Time {
	if !p.hasLine {
		return time.Time{}
	}
	return fromNanos(p.line)
}

// HostWatermark returns the close line of dest's own clock (its newest event
// time minus Grace), or false when the partition keeps no clock for it (its
// windows then follow Watermark alone).
func (p *Partition) HostWatermark(dest string) (time.Time, bool) {
	h := p.hosts[orNull(dest)]
	if h == nil {
		return time.Time{}, false
	}
	return fromNanos(h.line(p.grace)), true
}

// Stats returns the counters and the current open windows and groups.
func (p *Partition) Stats() PartitionStats {
	s := p.stats
	s.OpenWindows = len(p.windows)
	s.OpenGroups = p.openGroups
	s.Hosts = len(p.hosts)
	s.StateBytes = p.bytes
	return s
}

func (p *Partition) touch(nowNs int64, out []Result) []Result {
	p.arrived = true
	p.restoreIndex = nil
	if p.restored {
		out = p.settle(nowNs, out)
	}
	return out
}

// advance moves the partition clock to the event time t, held to the wall
// clock: one host dating its events ahead cannot close anyone's windows
// before real time does.
func (p *Partition) advance(t, nowNs int64, out []Result) []Result {
	if !p.hasNewest || t > p.newest {
		p.newest, p.hasNewest = t, true
		p.metaDirty = true
	}
	p.raiseLine(min(p.newest, nowNs) - p.grace)
	if b := p.budget; b.limit > 0 && p.bytes > 0 && b.used.Load() > b.limit {
		out = p.shed(out)
	}
	return p.closeDue(out)
}

func (p *Partition) raiseLine(l int64) {
	if !p.hasLine || l > p.line {
		p.line, p.hasLine = l, true
		p.metaDirty = true
	}
}

// closeDue closes the host windows whose end the partition line has reached
// and forgets what the line makes redundant. It is on every event's path,
// so the common case is a few comparisons.
func (p *Partition) closeDue(out []Result) []Result {
	if !p.hasLine {
		return out
	}
	if len(p.heap) > 0 && p.line >= p.heap[0].end {
		out = p.closeWindows(out, p.line)
	}
	if len(p.forced) > 0 && p.line >= p.minForcedEnd {
		p.pruneForced()
	}
	if len(p.idle) > 0 && p.idle[0].at-p.grace <= p.line {
		p.pruneHosts()
	}
	return out
}

// advanceHost moves h's clock to t and closes its windows the clock passed.
func (p *Partition) advanceHost(h *host, t int64, out []Result) []Result {
	if t <= h.clock {
		return out
	}
	h.clock = t
	p.markHostDirty(h)
	limit := h.line(p.grace)
	due := false
	for _, w := range h.wins {
		if w.end <= limit {
			due = true
			break
		}
	}
	if !due {
		return out
	}
	closing := p.closingScratch[:0]
	for _, w := range h.wins {
		if w.end <= limit {
			closing = append(closing, w)
		}
	}
	slices.SortFunc(closing, compareWindows)
	for _, w := range closing {
		out = p.emitClose(out, w)
		p.dropWindow(w)
	}
	clear(closing)
	p.closingScratch = closing[:0]
	return out
}

// closed reports whether matches for host window hw (ending at end) of host
// h (nil if it has no clock) are LATE.
func (p *Partition) closed(h *host, hw hostWindow, end int64) bool {
	if p.hasLine && end <= p.line {
		return true
	}
	if h != nil && end <= h.line(p.grace) {
		return true
	}
	if len(p.forced) == 0 {
		return false
	}
	_, ok := p.forced[hw]
	return ok
}

// settle runs at the first call with a wall clock after Restore: a clock
// the changelog carried from beyond nowNs+MaxFuture is discarded (the
// partition clock's line may legitimately be up to one Window further, where
// Flush leaves it), a host's clock is recomputed from its restored groups,
// and windows that start beyond the bound, which only future-dated events
// could have opened, are closed with their FINALs.
func (p *Partition) settle(nowNs int64, out []Result) []Result {
	p.restored = false
	limit := nowNs + p.maxFuture
	if p.hasNewest && p.newest > limit {
		p.hasNewest, p.newest = false, 0
		p.metaDirty = true
		p.stats.ClocksDiscarded++
	}
	if p.hasLine && p.line > limit+p.window {
		p.hasLine, p.line = false, 0
		p.metaDirty = true
		p.stats.ClocksDiscarded++
	}
	var future []*window
	for _, w := range p.heap {
		if w.hw.start > limit {
			future = append(future, w)
		}
	}
	slices.SortFunc(future, compareWindows)
	for _, w := range future {
		p.stats.Forced++
		out = p.emitClose(out, w)
		p.dropWindow(w)
	}
	for _, h := range p.hosts {
		if h.clock <= limit {
			continue
		}
		p.stats.ClocksDiscarded++
		if len(h.wins) == 0 {
			p.forgetHost(h)
			continue
		}
		h.clock = min(latestInWindows(h.wins), limit)
		p.markHostDirty(h)
	}
	return out
}

// add records a matching event at time t.
func (p *Partition) add(e *Event, t int64, out []Result) []Result {
	p.stats.Matched++
	start := p.windowStart(t)
	end := start + p.window
	key := boundKey(KeyOf(e))
	ctx := boundContext(e)
	hw := hostWindow{dest: key.Dest, start: start}
	w := p.windows[hw]
	if w != nil {
		// A restored window keeps the bounds it was opened with.
		end = w.end
	}
	h := p.hosts[key.Dest]
	if p.closed(h, hw, end) {
		p.stats.Late++
		out = append(out, Result{
			AlertID:           lateAlertID(start, end, &key, t),
			Key:               key,
			Count:             1,
			FirstSeen:         fromNanos(t),
			LastSeen:          fromNanos(t),
			WindowStart:       fromNanos(start),
			WindowEnd:         fromNanos(end),
			Emission:          EmissionLate,
			ParentProcess:     ctx.ParentProcess,
			ProcessPath:       ctx.ProcessPath,
			ParentProcessPath: ctx.ParentProcessPath,
			OriginalFileName:  ctx.OriginalFileName,
		})
		if h != nil {
			out = p.advanceHost(h, t, out)
		}
		return out
	}
	if h == nil {
		h = p.newHost(key.Dest, t)
	}
	if w == nil {
		w = &window{hw: hw, end: end, host: h}
		p.addWindow(w)
	}
	if g := w.find(&key); g != nil {
		g.count++
		g.first = min(g.first, t)
		g.last = max(g.last, t)
		p.markDirty(g)
		return p.advanceHost(h, t, out)
	}
	g := &group{
		key:               key,
		alertID:           windowAlertID(start, end, &key),
		start:             start,
		end:               end,
		count:             1,
		first:             t,
		last:              t,
		parentProcess:     ctx.ParentProcess,
		processPath:       ctx.ProcessPath,
		parentProcessPath: ctx.ParentProcessPath,
		originalFileName:  ctx.OriginalFileName,
	}
	p.addGroup(w, g)
	p.markDirty(g)
	if p.cfg.Emit == EmitEarly {
		g.earlyEmitted, g.earlyCount, g.earlyLast = true, g.count, g.last
		p.stats.Early++
		out = append(out, g.result(EmissionEarly, 0))
	}
	for len(p.heap) > 0 && p.openGroups > p.cfg.MaxOpenGroups {
		out = p.forceCloseOldest(out)
	}
	out = p.shed(out)
	return p.advanceHost(h, t, out)
}

// shed force-closes the oldest windows while the partition holds more than
// its share of an exceeded budget.
func (p *Partition) shed(out []Result) []Result {
	for len(p.heap) > 0 && p.budget.overShare(p.bytes) {
		out = p.forceCloseOldest(out)
	}
	return out
}

func (p *Partition) newHost(dest string, t int64) *host {
	h := &host{dest: dest, clock: t}
	p.hosts[dest] = h
	p.charge(hostStructBytes + hostSlotBytes)
	p.markHostDirty(h)
	return h
}

func (p *Partition) addWindow(w *window) {
	p.windows[w.hw] = w
	heap.Push(&p.heap, w)
	w.host.wins = append(w.host.wins, w)
	p.charge(windowStructBytes + windowSlotBytes)
}

func (p *Partition) addGroup(w *window, g *group) {
	w.groups = append(w.groups, g)
	switch {
	case w.byKey != nil:
		w.byKey[g.key] = g
	case len(w.groups) > indexByKey:
		w.byKey = make(map[GroupKey]*group, 2*len(w.groups))
		for _, o := range w.groups {
			w.byKey[o.key] = o
			if o != g {
				p.charge(groupIndexSlotBytes)
				o.bytes += groupIndexSlotBytes
			}
		}
	}
	g.bytes = g.sizeBytes(w.byKey != nil)
	p.charge(g.bytes)
	p.openGroups++
}

// dropWindow forgets a window whose groups were emitted or removed.
func (p *Partition) dropWindow(w *window) {
	delete(p.windows, w.hw)
	heap.Remove(&p.heap, w.index)
	h := w.host
	if i := slices.Index(h.wins, w); i >= 0 {
		last := len(h.wins) - 1
		h.wins[i] = h.wins[last]
		h.wins[last] = nil
		h.wins = h.wins[:last]
	}
	p.charge(-(windowStructBytes + windowSlotBytes))
	if len(h.wins) == 0 && !h.idleQueued {
		h.idleQueued = true
		heap.Push(&p.idle, idleHost{at: h.clock, h: h})
	}
}

// pruneHosts forgets hosts without windows whose clock the partition line
// has caught up with: the line alone now decides for them.
func (p *Partition) pruneHosts() {
	for len(p.idle) > 0 && p.idle[0].at-p.grace <= p.line {
		h := heap.Pop(&p.idle).(idleHost).h
		h.idleQueued = false
		switch {
		case h.gone || len(h.wins) > 0:
		case h.line(p.grace) <= p.line:
			p.forgetHost(h)
		default:
			h.idleQueued = true
			heap.Push(&p.idle, idleHost{at: h.clock, h: h})
		}
	}
}

func (p *Partition) forgetHost(h *host) {
	h.gone = true
	delete(p.hosts, h.dest)
	p.charge(-(hostStructBytes + hostSlotBytes))
	if h.persisted {
		p.hostTombstones = append(p.hostTombstones, h.dest)
	}
}

func (p *Partition) markDirty(g *group) {
	if !g.queued && !p.cfg.DiscardChanges {
		g.queued = true
		p.dirty = append(p.dirty, g)
	}
}

func (p *Partition) markHostDirty(h *host) {
	if !h.queued && !p.cfg.DiscardChanges {
		h.queued = true
		p.dirtyHosts = append(p.dirtyHosts, h)
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
// dest, then start) because the partition holds too many groups or bytes.
func (p *Partition) forceCloseOldest(out []Result) []Result {
	oldest := p.heap[0]
	p.stats.Forced++
	if len(p.forced) == 0 || oldest.end < p.minForcedEnd {
		p.minForcedEnd = oldest.end
	}
	if _, dup := p.forced[oldest.hw]; !dup {
		p.charge(forcedSlotBytes)
	}
	p.forced[oldest.hw] = oldest.end
	p.metaDirty = true
	out = p.emitClose(out, oldest)
	p.dropWindow(oldest)
	return out
}

// closeWindows closes every host window ending at or before limit, in order
// of end, dest and start; groups within a window in GroupKey order.
func (p *Partition) closeWindows(out []Result, limit int64) []Result {
	for len(p.heap) > 0 && p.heap[0].end <= limit {
		w := p.heap[0]
		out = p.emitClose(out, w)
		p.dropWindow(w)
	}
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
// other group gets a FINAL revision 0. The caller drops w.
func (p *Partition) emitClose(out []Result, w *window) []Result {
	slices.SortFunc(w.groups, func(a, b *group) int { return compareKeys(&a.key, &b.key) })
	for _, g := range w.groups {
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
		p.charge(-g.bytes)
	}
	p.openGroups -= len(w.groups)
	return out
}

// pruneForced forgets force-closed host windows the partition line has
// passed: the line alone now makes their matches LATE.
func (p *Partition) pruneForced() {
	if !p.hasLine {
		return
	}
	first := true
	for hw, end := range p.forced {
		if end <= p.line {
			delete(p.forced, hw)
			p.charge(-forcedSlotBytes)
			p.metaDirty = true
			continue
		}
		if first || end < p.minForcedEnd {
			p.minForcedEnd, first = end, false
		}
	}
}

// windowHeap orders open windows by compareWindows: the top is the next to
// close, by the partition line or the state bounds.
type windowHeap []*window

func (h windowHeap) Len() int           { return len(h) }
func (h windowHeap) Less(i, j int) bool { return compareWindows(h[i], h[j]) < 0 }
func (h windowHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *windowHeap) Push(x any) {
	w := x.(*window)
	w.index = len(*h)
	*h = append(*h, w)
}
func (h *windowHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	w.index = -1
	return w
}

// idleHost is a host without windows, keyed by its clock when queued (a
// clock that moved on since is re-queued when popped).
type idleHost struct {
	at int64
	h  *host
}

type idleHeap []idleHost

func (h idleHeap) Len() int           { return len(h) }
func (h idleHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h idleHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *idleHeap) Push(x any)        { *h = append(*h, x.(idleHost)) }
func (h *idleHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = idleHost{}
	*h = old[:len(old)-1]
	return x
}
