package processor

import (
	"cmp"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// StateChange is one entry of a partition's changelog, Kafka Streams style:
// the latest value of a key, or a tombstone (nil Value) deleting it.
type StateChange struct {
	Key   []byte
	Value []byte
}

// Changelog keys. Every group has its own key (prefix + alert id, stable for
// the group's life), every host clock its own (prefix + dest); the partition
// clock and force-closed windows share metaKey.
const (
	metaKey        = "sshlateral/processor/meta"
	groupKeyPrefix = "sshlateral/processor/group/"
	hostKeyPrefix  = "sshlateral/processor/host/"
)

// Value encodings: a tag byte, a version byte, then varints and
// uvarint-length-prefixed strings. Meta version 1 (one watermark, written
// before per-host clocks) is still read: its watermark becomes the
// partition line, validated like any restored clock.
const (
	groupTag     = 'G'
	metaTag      = 'M'
	hostTag      = 'H'
	stateVersion = 1 // groups and hosts
	metaVersion  = 2
)

// DrainChanges appends every state change since the last drain and forgets
// them: one entry per group that changed and is still open (its encoded
// state, including whether its EARLY went out), a tombstone per group that
// closed after an earlier drain wrote it, a tombstone per forgotten host
// clock and an entry per host clock that moved, then the meta entry
// (partition clock and force-closed windows) if it changed. A group that opened and closed between
// two drains leaves no entry. Applying the entries in order with Restore on a
// fresh Partition reproduces the state, hence the same future results.
func (p *Partition) DrainChanges(out []StateChange) []StateChange {
	for _, g := range p.dirty {
		g.queued = false
		if g.closed {
			continue
		}
		out = append(out, StateChange{Key: groupChangeKey(g.alertID), Value: encodeGroup(g)})
		g.persisted = true
	}
	clear(p.dirty)
	p.dirty = p.dirty[:0]
	for _, id := range p.tombstones {
		out = append(out, StateChange{Key: groupChangeKey(id)})
	}
	clear(p.tombstones)
	p.tombstones = p.tombstones[:0]
	// Tombstones first: a host forgotten and seen again since the last
	// drain ends with its new value.
	for _, dest := range p.hostTombstones {
		out = append(out, StateChange{Key: hostChangeKey(dest)})
	}
	clear(p.hostTombstones)
	p.hostTombstones = p.hostTombstones[:0]
	for _, h := range p.dirtyHosts {
		h.queued = false
		if h.gone {
			continue
		}
		out = append(out, StateChange{Key: hostChangeKey(h.dest), Value: encodeHost(h.clock)})
		h.persisted = true
	}
	clear(p.dirtyHosts)
	p.dirtyHosts = p.dirtyHosts[:0]
	if p.metaDirty {
		out = append(out, StateChange{Key: []byte(metaKey), Value: p.encodeMeta()})
		p.metaDirty = false
	}
	return out
}

// Restore applies one changelog entry to a partition before it processes
// events. For a key, a later entry replaces an earlier one and a tombstone
// (nil or empty Value) deletes it; entries of different keys may come in any
// order. A restored group keeps the window bounds it was opened with. The
// error names the key and what is wrong with the value; the partition is
// unchanged then. The first Process, Advance or Tick after the last Restore
// validates the restored clocks against its wall clock (see Process).
func (p *Partition) Restore(c StateChange) error {
	key := string(c.Key)
	var err error
	switch {
	case key == metaKey:
		err = p.restoreMeta(c.Value)
	case strings.HasPrefix(key, hostKeyPrefix):
		err = p.restoreHostClock(key[len(hostKeyPrefix):], c.Value)
	case strings.HasPrefix(key, groupKeyPrefix):
		err = p.restoreGroup(key[len(groupKeyPrefix):], c.Value)
	default:
		err = errors.New("not a processor key")
	}
	if err != nil {
		return fmt.Errorf("restore changelog key %q: %w", key, err)
	}
	p.restored = true
	return nil
}

func (p *Partition) restoreMeta(v []byte) error {
	var m meta
	if len(v) > 0 {
		var err error
		if m, err = decodeMeta(v); err != nil {
			return err
		}
	}
	p.hasLine, p.line = m.hasLine, m.line
	p.hasNewest, p.newest = m.hasNewest, m.newest
	p.charge(-forcedSlotBytes * int64(len(p.forced)))
	clear(p.forced)
	for _, f := range m.forced {
		p.forced[f.hw] = f.end
	}
	p.charge(forcedSlotBytes * int64(len(p.forced)))
	p.recomputeMinForcedEnd()
	return nil
}

func (p *Partition) restoreHostClock(dest string, v []byte) error {
	h := p.hosts[dest]
	if len(v) == 0 {
		if h != nil {
			h.persisted = false
			if len(h.wins) == 0 {
				p.forgetHost(h)
			} else {
				h.clock = latestInWindows(h.wins)
			}
		}
		return nil
	}
	clock, err := decodeHost(v)
	if err != nil {
		return err
	}
	if h == nil {
		h = p.restoreHost(dest, clock)
	}
	h.clock = max(h.clock, clock)
	h.persisted = true
	return nil
}

func (p *Partition) restoreGroup(id string, v []byte) error {
	index := p.groupIndex()
	if len(v) == 0 {
		if old := index[id]; old != nil {
			p.removeGroup(old)
		}
		return nil
	}
	g, err := decodeGroup(v)
	if err != nil {
		return err
	}
	if g.alertID != id {
		return fmt.Errorf("%w: value is the group of alert id %s", ErrCorruptState, g.alertID)
	}
	hw := hostWindow{dest: g.key.Dest, start: g.start}
	if w := p.windows[hw]; w != nil && w.end != g.end {
		return fmt.Errorf("%w: window end %s conflicts with restored window end %s",
			ErrCorruptState, fromNanos(g.end).Format(timeFormat), fromNanos(w.end).Format(timeFormat))
	}
	if old := index[id]; old != nil {
		p.removeGroup(old)
	}
	h := p.hosts[g.key.Dest]
	if h == nil {
		h = p.restoreHost(g.key.Dest, g.last)
	}
	h.clock = max(h.clock, g.last)
	w := p.windows[hw]
	if w == nil {
		w = &window{hw: hw, end: g.end, host: h}
		p.addWindow(w)
	}
	g.persisted = true
	p.addGroup(w, g)
	index[id] = g
	return nil
}

// restoreHost adds a host clock read from the changelog: it is not dirty,
// and waits in the idle queue until it gets windows or is forgotten.
func (p *Partition) restoreHost(dest string, clock int64) *host {
	h := &host{dest: dest, clock: clock, idleQueued: true}
	p.hosts[dest] = h
	p.charge(hostStructBytes + hostSlotBytes)
	heap.Push(&p.idle, idleHost{at: clock, h: h})
	return h
}

func latestInWindows(wins []*window) int64 {
	var c int64
	for i, w := range wins {
		for j, g := range w.groups {
			if (i == 0 && j == 0) || g.last > c {
				c = g.last
			}
		}
	}
	return c
}

const timeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// groupIndex maps alert ids to open groups for tombstones and replacements;
// it lives only while Restore calls follow each other.
func (p *Partition) groupIndex() map[string]*group {
	if p.restoreIndex == nil {
		p.restoreIndex = make(map[string]*group, p.openGroups)
		for _, w := range p.heap {
			for _, g := range w.groups {
				p.restoreIndex[g.alertID] = g
			}
		}
	}
	return p.restoreIndex
}

func (p *Partition) removeGroup(g *group) {
	hw := hostWindow{dest: g.key.Dest, start: g.start}
	if w := p.windows[hw]; w != nil {
		if i := slices.Index(w.groups, g); i >= 0 {
			w.groups = slices.Delete(w.groups, i, i+1)
			if w.byKey != nil {
				delete(w.byKey, g.key)
			}
			p.openGroups--
			p.charge(-g.bytes)
			if len(w.groups) == 0 {
				p.dropWindow(w)
			}
		}
	}
	g.closed = true
	delete(p.restoreIndex, g.alertID)
}

func (p *Partition) recomputeMinForcedEnd() {
	first := true
	for _, end := range p.forced {
		if first || end < p.minForcedEnd {
			p.minForcedEnd, first = end, false
		}
	}
}

func groupChangeKey(alertID string) []byte {
	return append([]byte(groupKeyPrefix), alertID...)
}

func hostChangeKey(dest string) []byte {
	return append([]byte(hostKeyPrefix), dest...)
}

func encodeHost(clock int64) []byte {
	return binary.AppendVarint([]byte{hostTag, stateVersion}, clock)
}

func decodeHost(v []byte) (int64, error) {
	d := decoder{buf: v}
	d.header(hostTag, "host", stateVersion)
	clock := d.varint("clock")
	if err := d.finish(); err != nil {
		return 0, err
	}
	if !timeInRange(clock) {
		return 0, fmt.Errorf("%w: host value: clock %d out of range", ErrCorruptState, clock)
	}
	return clock, nil
}

// timeInRange bounds restored times to what the partition can produce (and
// the older version clamped to, ±2^62 ns) plus a window and grace of slack,
// so that no arithmetic on them overflows.
func timeInRange(v int64) bool {
	const slack = int64(maxWindow + maxGrace)
	return v >= -(1<<62)-slack && v <= 1<<62+slack
}

func encodeGroup(g *group) []byte {
	k := &g.key
	b := make([]byte, 0, 96+len(k.Dest)+len(k.User)+len(k.ParentProcessName)+len(k.ProcessName)+
		len(k.Process)+len(k.ProcessID)+len(k.ParentProcessID)+len(g.parentProcess)+
		len(g.processPath)+len(g.parentProcessPath)+len(g.originalFileName))
	b = append(b, groupTag, stateVersion)
	for _, v := range [...]int64{g.start, g.end, g.count, g.first, g.last} {
		b = binary.AppendVarint(b, v)
	}
	var flags byte
	if g.earlyEmitted {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.AppendVarint(b, g.earlyCount)
	b = binary.AppendVarint(b, g.earlyLast)
	for _, s := range g.stringFields() {
		b = appendString(b, *s)
	}
	return b
}

// stringFields lists the encoded strings in their fixed order.
func (g *group) stringFields() [11]*string {
	k := &g.key
	return [11]*string{&k.Dest, &k.User, &k.ParentProcessName, &k.ProcessName, &k.Process,
		&k.ProcessID, &k.ParentProcessID, &g.parentProcess, &g.processPath,
		&g.parentProcessPath, &g.originalFileName}
}

var groupStringNames = [11]string{"dest", "user", "parent_process_name", "process_name", "process",
	"process_id", "parent_process_id", "parent_process", "process_path", "parent_process_path",
	"original_file_name"}

func decodeGroup(v []byte) (*group, error) {
	d := decoder{buf: v}
	d.header(groupTag, "group", stateVersion)
	g := &group{}
	g.start = d.varint("window start")
	g.end = d.varint("window end")
	g.count = d.varint("count")
	g.first = d.varint("first time")
	g.last = d.varint("last time")
	flags := d.byte("flags")
	g.earlyCount = d.varint("early count")
	g.earlyLast = d.varint("early last time")
	for i, s := range g.stringFields() {
		*s = d.string(groupStringNames[i])
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	g.earlyEmitted = flags&1 != 0
	switch {
	case flags&^1 != 0:
		return nil, fmt.Errorf("%w: group value: unknown flags %#x", ErrCorruptState, flags)
	case !timeInRange(g.start) || !timeInRange(g.end):
		return nil, fmt.Errorf("%w: group value: window [%d, %d) out of range", ErrCorruptState, g.start, g.end)
	case g.start >= g.end:
		return nil, fmt.Errorf("%w: group value: window start %d not before end %d", ErrCorruptState, g.start, g.end)
	case g.count < 1:
		return nil, fmt.Errorf("%w: group value: count %d, want at least 1", ErrCorruptState, g.count)
	case g.first > g.last || g.first < g.start || g.last >= g.end:
		return nil, fmt.Errorf("%w: group value: first %d and last %d not ordered inside window [%d, %d)", ErrCorruptState,
			g.first, g.last, g.start, g.end)
	case g.earlyEmitted && (g.earlyCount < 1 || g.earlyCount > g.count):
		return nil, fmt.Errorf("%w: group value: early count %d outside [1, %d]", ErrCorruptState, g.earlyCount, g.count)
	}
	for i, s := range g.stringFields() {
		if i < 7 && *s == "" {
			return nil, fmt.Errorf("%w: group value: empty %s (missing fields are %q)", ErrCorruptState, groupStringNames[i], Null)
		}
	}
	g.alertID = windowAlertID(g.start, g.end, &g.key)
	return g, nil
}

type forcedWindow struct {
	hw  hostWindow
	end int64
}

type meta struct {
	hasLine, hasNewest bool
	line, newest       int64
	forced             []forcedWindow
}

// encodeMeta writes version 2: flags (1 line set, 2 newest set), the line,
// the newest event time, then the force-closed windows.
func (p *Partition) encodeMeta() []byte {
	forced := make([]forcedWindow, 0, len(p.forced))
	for hw, end := range p.forced {
		forced = append(forced, forcedWindow{hw: hw, end: end})
	}
	// Map order is random; sorted entries make the value reproducible.
	slices.SortFunc(forced, func(a, b forcedWindow) int {
		return cmp.Or(cmp.Compare(a.hw.dest, b.hw.dest), cmp.Compare(a.hw.start, b.hw.start))
	})
	b := make([]byte, 0, 24+len(forced)*32)
	b = append(b, metaTag, metaVersion)
	var flags byte
	if p.hasLine {
		flags |= 1
	}
	if p.hasNewest {
		flags |= 2
	}
	b = append(b, flags)
	b = binary.AppendVarint(b, p.line)
	b = binary.AppendVarint(b, p.newest)
	b = binary.AppendUvarint(b, uint64(len(forced)))
	for _, f := range forced {
		b = appendString(b, f.hw.dest)
		b = binary.AppendVarint(b, f.hw.start)
		b = binary.AppendVarint(b, f.end)
	}
	return b
}

func decodeMeta(v []byte) (meta, error) {
	d := decoder{buf: v}
	version := d.header(metaTag, "meta", 1, metaVersion)
	var m meta
	flags := d.byte("clock flags")
	m.line = d.varint("watermark")
	if version >= 2 {
		m.newest = d.varint("newest event time")
	}
	n := d.uvarint("forced window count")
	// Each entry takes at least three bytes; a larger count is corrupt and
	// must not size an allocation.
	if d.err == nil && n > uint64(len(d.buf)-d.off)/3 {
		d.fail("forced window count %d exceeds the %d bytes left", n, len(d.buf)-d.off)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		var f forcedWindow
		f.hw.dest = d.string("forced window dest")
		f.hw.start = d.varint("forced window start")
		f.end = d.varint("forced window end")
		if d.err == nil && f.hw.start >= f.end {
			d.fail("forced window start %d not before end %d", f.hw.start, f.end)
		}
		m.forced = append(m.forced, f)
	}
	if err := d.finish(); err != nil {
		return meta{}, err
	}
	switch {
	case version == 1 && flags > 1:
		return meta{}, fmt.Errorf("%w: meta value: watermark flag %d, want 0 or 1", ErrCorruptState, flags)
	case version >= 2 && flags > 3:
		return meta{}, fmt.Errorf("%w: meta value: clock flags %#x, want at most 0x3", ErrCorruptState, flags)
	}
	m.hasLine = flags&1 != 0
	m.hasNewest = flags&2 != 0
	if !timeInRange(m.line) || !timeInRange(m.newest) {
		return meta{}, fmt.Errorf("%w: meta value: watermark %d or newest event time %d out of range", ErrCorruptState, m.line, m.newest)
	}
	return m, nil
}

// decoder reads a state value, keeping the first error with its position.
type decoder struct {
	buf  []byte
	off  int
	what string
	err  error
}

// ErrCorruptState marks a Restore error caused by an undecodable or
// inconsistent value (as opposed to a key the processor does not own).
var ErrCorruptState = errors.New("corrupt state value")

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s value at byte %d: %s", ErrCorruptState, d.what, d.off, fmt.Sprintf(format, args...))
	}
}

// header checks the tag and that the version is one of versions, the
// newest last, and returns the version.
func (d *decoder) header(tag byte, what string, versions ...byte) byte {
	d.what = what
	if len(d.buf) < 2 {
		d.fail("%d bytes, shorter than the header", len(d.buf))
		return 0
	}
	if d.buf[0] != tag {
		d.fail("tag %q, want %q", d.buf[0], tag)
		return 0
	}
	if !slices.Contains(versions, d.buf[1]) {
		d.fail("version %d, want %d", d.buf[1], versions[len(versions)-1])
		return 0
	}
	d.off = 2
	return d.buf[1]
}

func (d *decoder) byte(field string) byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.buf) {
		d.fail("truncated reading %s", field)
		return 0
	}
	d.off++
	return d.buf[d.off-1]
}

func (d *decoder) varint(field string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf[d.off:])
	if n <= 0 {
		d.fail("truncated or overlong varint reading %s", field)
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf[d.off:])
	if n <= 0 {
		d.fail("truncated or overlong varint reading %s", field)
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) string(field string) string {
	n := d.uvarint(field + " length")
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.buf)-d.off) {
		d.fail("%s length %d exceeds the %d bytes left", field, n, len(d.buf)-d.off)
		return ""
	}
	s := string(d.buf[d.off : d.off+int(n)])
	d.off += int(n)
	return s
}

func (d *decoder) finish() error {
	if d.err == nil && d.off != len(d.buf) {
		d.fail("%d trailing bytes", len(d.buf)-d.off)
	}
	return d.err
}
