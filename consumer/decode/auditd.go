package decode

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/sshlateral/sshlateral/processor"
)

// Linux auditd (raw audit.log lines). One process start is several records
// that share msg=audit(TIME:SERIAL): SYSCALL (execve), EXECVE (argv), CWD,
// PATH, PROCTITLE, and EOE where the kernel writes it. The decoder gathers
// the records of one serial into an assembly and decodes it when it is
// complete:
//   - on its EOE record;
//   - when more than maxAuditInFlight assemblies are open, the oldest
//     (counted as evicted);
//   - by Expire, for assemblies that waited auditTimeout since their first
//     record (counted as timed out), or all at the end of an input.
//
// A record that is not part of a syscall event (USER_*, DAEMON_*, …) is a
// skip on its own unless an assembly of its serial is open.
//
// Mapping (CIM Endpoint.Processes <- auditd execve): dest=node= (absent
// without a node prefix), user=UID= (the enriched name) else uid=,
// process=EXECVE a0..aN joined by single spaces (hex-encoded and a1[0]…
// chunked arguments decoded) else PROCTITLE with NULs as spaces,
// process_path=exe=, process_name=basename(exe) else comm= else the
// basename of a0 (an EXECVE record without its SYSCALL record),
// process_id=pid=, parent_process_id=ppid=. Parent name, path and command
// line are not in the records (null). The event time is the msg= stamp.
// Only a successful execve or execveat is a process start.
//
// This is a parser of the project's own: Elastic's go-libaudit (auparse,
// aucoalesce) is the preferred one, but the module proxy this project
// builds from does not serve it.

const (
	maxAuditInFlight = 64
	auditTimeout     = 2 * time.Second
	// maxAuditArgs bounds the command line of one assembly.
	maxAuditArgs = 64 << 10
)

// Outcomes of the auditd decoder.
const (
	// OutcomePending means the record was taken into an open assembly and
	// nothing is complete yet: hold back the offset commit (InFlight).
	OutcomePending Outcome = iota + OutcomeSkip + 1
)

// AuditStats counts how auditd assemblies completed.
type AuditStats struct {
	EOE, Evicted, TimedOut, Single int64
}

// auditAsm is one open assembly.
type auditAsm struct {
	serial uint64
	// firstPos is the caller's position (SetPosition) of the first record.
	firstPos int64
	t        time.Time
	arrived  time.Time
	records  int

	haveSyscall, exec, success, haveExecve bool
	// full is set when a record came through DecodeFull: the assembly is
	// then decoded without the prefilter.
	full bool
	// values, copied out of the records
	node, uid, uidName, pid, ppid, exe, comm, args, title []byte
	nextArg                                               int
}

func (a *auditAsm) reset() {
	*a = auditAsm{node: a.node[:0], uid: a.uid[:0], uidName: a.uidName[:0], pid: a.pid[:0], ppid: a.ppid[:0],
		exe: a.exe[:0], comm: a.comm[:0], args: a.args[:0], title: a.title[:0]}
}

// auditState is the decoder's assembly buffer.
type auditState struct {
	open  []*auditAsm // in order of first record
	free  []*auditAsm
	ready []*auditAsm // completed, not yet handed out
	stats AuditStats
}

func (s *auditState) get() *auditAsm {
	if n := len(s.free); n > 0 {
		a := s.free[n-1]
		s.free = s.free[:n-1]
		a.reset()
		return a
	}
	return &auditAsm{}
}

// InFlight returns the number of records held in open or completed but not
// yet returned assemblies. While it is non-zero, a consumer must not commit
// past the first record it gave since InFlight was last zero.
func (d *Decoder) InFlight() int {
	n := 0
	for _, a := range d.audit.open {
		n += a.records
	}
	for _, a := range d.audit.ready {
		n += a.records
	}
	return n
}

// AuditStats returns how the auditd assemblies completed so far.
func (d *Decoder) AuditStats() AuditStats { return d.audit.stats }

// Expire completes the assemblies that have waited longer than the auditd
// timeout at now, or all of them when now is the zero time (the end of an
// input), and returns how many completed assemblies are waiting for Ready.
func (d *Decoder) Expire(now time.Time) int {
	d.audit.timeOut(func(a *auditAsm) bool { return now.IsZero() || now.Sub(a.arrived) >= auditTimeout })
	return len(d.audit.ready)
}

// timeOut completes the open assemblies done says are over, in order.
func (s *auditState) timeOut(done func(*auditAsm) bool) {
	keep := s.open[:0]
	for _, a := range s.open {
		if done(a) {
			s.stats.TimedOut++
			s.ready = append(s.ready, a)
		} else {
			keep = append(keep, a)
		}
	}
	clear(s.open[len(keep):])
	s.open = keep
}

// Ready decodes the next completed assembly into ev, like Decode; ok is
// false when none is waiting.
func (d *Decoder) Ready(ev *processor.Event) (out Outcome, ok bool, err error) {
	s := &d.audit
	if len(s.ready) == 0 {
		return 0, false, nil
	}
	a := s.ready[0]
	copy(s.ready, s.ready[1:])
	s.ready[len(s.ready)-1] = nil
	s.ready = s.ready[:len(s.ready)-1]
	*ev = processor.Event{}
	d.skip = ""
	out, err = d.auditEvent(a, ev, !a.full && !d.noPrefilter)
	s.free = append(s.free, a)
	if err == nil && out != OutcomeSkip && !processor.ValidEventTime(ev.Time) {
		*ev = processor.Event{}
		return 0, true, fmt.Errorf("%w: auditd %s", ErrEventTime, a.t.Format(time.RFC3339Nano))
	}
	return out, true, err
}

// isAuditLine reports whether line starts like an audit.log record.
func isAuditLine(line []byte) bool {
	return bytes.HasPrefix(line, []byte("type=")) || bytes.HasPrefix(line, []byte("node="))
}

// auditSyscallTypes are the record types the kernel writes as parts of one
// syscall event; any other type is a record of its own.
func auditPartType(typ []byte) bool {
	switch string(typ) {
	case "SYSCALL", "EXECVE", "CWD", "PATH", "PROCTITLE", "EOE", "SOCKADDR", "SOCKETCALL", "IPC", "MMAP",
		"FD_PAIR", "BPRM_FCAPS", "CAPSET", "OBJ_PID", "KERN_MODULE", "NETFILTER_CFG", "EXECVE_ARGS", "SECCOMP":
		return true
	}
	return false
}

// decodeAuditd takes one audit.log line.
func (d *Decoder) decodeAuditd(line []byte, ev *processor.Event, prefilter bool) (Outcome, error) {
	node, typ, t, serial, body, err := parseAuditHeader(line)
	if err == errAuditNoStamp {
		// "type=UNKNOWN[1329] msg=?": a record the kernel could not
		// stamp belongs to no event.
		d.audit.stats.Single++
		d.skip = SkipNotProcessStart
		return OutcomeSkip, nil
	}
	if err != nil {
		return 0, err
	}
	if len(node) == 0 && d.fbHostSet {
		node = d.fbHost // an envelope's host stands in for a missing node=
	}
	s := &d.audit
	// The kernel writes every record of an event at once, under one
	// stamp: an assembly of this node stamped auditTimeout or more before
	// this record will get no more records. Completing it now, in stream
	// order, keeps an event without EOE from waiting for the wall-clock
	// timeout (and its window from closing before it arrives).
	s.timeOut(func(o *auditAsm) bool { return bytes.Equal(o.node, node) && t.Sub(o.t) >= auditTimeout })
	var a *auditAsm
	for _, o := range s.open {
		if o.serial == serial && o.t.Equal(t) && bytes.Equal(o.node, node) {
			a = o
			break
		}
	}
	if a == nil {
		if !auditPartType(typ) {
			s.stats.Single++
			d.skip = SkipNotProcessStart
			return OutcomeSkip, nil
		}
		a = s.get()
		a.serial, a.t, a.arrived, a.firstPos = serial, t, d.now(), d.pos
		a.node = append(a.node, node...)
		s.open = append(s.open, a)
	}
	a.records++
	a.full = a.full || !prefilter
	if err := a.add(typ, body); err != nil {
		return 0, err
	}
	var done *auditAsm
	switch {
	case string(typ) == "EOE":
		s.stats.EOE++
		done = a
	case len(s.open) > maxAuditInFlight:
		s.stats.Evicted++
		done = s.open[0]
	}
	if done == nil {
		return OutcomePending, nil
	}
	for i, o := range s.open {
		if o == done {
			s.open = append(s.open[:i], s.open[i+1:]...)
			break
		}
	}
	out, err := d.auditEvent(done, ev, !done.full)
	s.free = append(s.free, done)
	return out, err
}

// auditEvent turns a completed assembly into an outcome.
func (d *Decoder) auditEvent(a *auditAsm, ev *processor.Event, prefilter bool) (Outcome, error) {
	// An EXECVE record is written only for an execve; without its SYSCALL
	// record (lost, or cut off by the start of a log) it still is one.
	if a.haveSyscall && (!a.exec || !a.success) || !a.haveSyscall && !a.haveExecve {
		d.skip = SkipNotProcessStart
		return OutcomeSkip, nil
	}
	name := basenameBytes(a.exe)
	if len(name) == 0 {
		name = a.comm
	}
	if len(name) == 0 && a.haveExecve {
		arg0 := a.args
		if i := bytes.IndexByte(arg0, ' '); i >= 0 {
			arg0 = arg0[:i]
		}
		name = basenameBytes(arg0)
	}
	if prefilter && !mayBeSSH(name) {
		ev.Time = a.t
		return OutcomeNoMatch, nil
	}
	// An envelope's host stood in for node= when the assembly opened; the
	// envelope of the record being decoded now may be another host's.
	d.fbHostSet = false
	d.resetFields()
	set := func(f int, v []byte) {
		if len(v) > 0 {
			d.setField(f, v)
		}
	}
	set(fDest, a.node)
	if len(a.uidName) > 0 {
		set(fUser, a.uidName)
	} else {
		set(fUser, a.uid)
	}
	if a.haveExecve {
		set(fProcess, a.args)
	} else {
		set(fProcess, a.title)
	}
	set(fProcessName, name)
	set(fProcessPath, a.exe)
	set(fProcessID, a.pid)
	set(fParentProcessID, a.ppid)
	ev.Time = a.t
	d.fillEvent(ev)
	return OutcomeEvent, nil
}

func basenameBytes(p []byte) []byte {
	if i := bytes.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

func auditErr(format string, args ...any) error {
	return fmt.Errorf("auditd: "+format, args...)
}

// parseAuditHeader reads "[node=N ]type=T msg=audit(SEC.FRAC:SERIAL): ".
func parseAuditHeader(line []byte) (node, typ []byte, t time.Time, serial uint64, body []byte, err error) {
	p := line
	if bytes.HasPrefix(p, []byte("node=")) {
		sp := bytes.IndexByte(p, ' ')
		if sp < 0 {
			return nil, nil, t, 0, nil, auditErr("no type= after node=")
		}
		node, p = p[len("node="):sp], p[sp+1:]
	}
	if !bytes.HasPrefix(p, []byte("type=")) {
		return nil, nil, t, 0, nil, auditErr("record does not start with type=")
	}
	sp := bytes.IndexByte(p, ' ')
	if sp < 0 {
		return nil, nil, t, 0, nil, auditErr("no msg= after type=")
	}
	typ, p = p[len("type="):sp], p[sp+1:]
	if bytes.HasPrefix(p, []byte("msg=?")) {
		return nil, nil, t, 0, nil, errAuditNoStamp
	}
	if !bytes.HasPrefix(p, []byte("msg=audit(")) {
		return nil, nil, t, 0, nil, auditErr("no msg=audit( stamp")
	}
	p = p[len("msg=audit("):]
	end := bytes.IndexByte(p, ')')
	if end < 0 {
		return nil, nil, t, 0, nil, auditErr("unterminated msg=audit( stamp")
	}
	stamp := p[:end]
	body = bytes.TrimPrefix(p[end+1:], []byte(":")) // DAEMON_* records have no colon
	colon := bytes.IndexByte(stamp, ':')
	if colon < 0 {
		return nil, nil, t, 0, nil, auditErr("no serial in msg=audit(%s)", stamp)
	}
	var ok bool
	if t, ok = parseEpoch(stamp[:colon]); !ok || jsonNumberEnd(stamp[:colon], 0) != colon {
		return nil, nil, t, 0, nil, auditErr("invalid time in msg=audit(%s)", stamp)
	}
	serial, ok = parseUint(stamp[colon+1:])
	if !ok {
		return nil, nil, t, 0, nil, auditErr("invalid serial in msg=audit(%s)", stamp)
	}
	return node, typ, t, serial, body, nil
}

var errAuditNoStamp = auditErr("record without a stamp (msg=?)")

func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}

// nextAuditField returns the next key=value of a record body from p. A
// value is "quoted" (taken as is), 'quoted', or a bare token. The enriched
// part after the 0x1d separator is read like the rest.
func nextAuditField(b []byte, p int) (key, val []byte, quoted bool, next int, ok bool) {
	for p < len(b) && (b[p] == ' ' || b[p] == 0x1d) {
		p++
	}
	if p >= len(b) {
		return nil, nil, false, p, false
	}
	eq := p
	for eq < len(b) && b[eq] != '=' && b[eq] != ' ' {
		eq++
	}
	key = b[p:eq]
	if eq >= len(b) || b[eq] != '=' {
		return key, nil, false, eq, true // a bare word: no value
	}
	v := eq + 1
	if v < len(b) && (b[v] == '"' || b[v] == '\'') {
		q := bytes.IndexByte(b[v+1:], b[v])
		if q < 0 {
			return key, b[v+1:], true, len(b), true
		}
		return key, b[v+1 : v+1+q], true, v + q + 2, true
	}
	e := v
	for e < len(b) && b[e] != ' ' && b[e] != 0x1d {
		e++
	}
	return key, b[v:e], false, e, true
}

// appendAuditValue appends an encoded value (exe, comm, argv, proctitle):
// quoted as is, unquoted as hex when it is hex, else as is ("(null)").
func appendAuditValue(dst, v []byte, quoted bool) []byte {
	if quoted || len(v)%2 != 0 || len(v) == 0 {
		return append(dst, v...)
	}
	for _, c := range v {
		if hexVal(c) < 0 {
			return append(dst, v...)
		}
	}
	for i := 0; i < len(v); i += 2 {
		dst = append(dst, byte(hexVal(v[i])<<4|hexVal(v[i+1])))
	}
	return dst
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// execSyscall reports whether arch/syscall is execve or execveat.
func execSyscall(arch, nr []byte) bool {
	switch string(nr) {
	case "execve", "execveat":
		return true
	}
	switch string(arch) {
	case "c000003e", "x86_64": // x86_64
		return string(nr) == "59" || string(nr) == "322"
	case "c00000b7", "aarch64": // aarch64
		return string(nr) == "221" || string(nr) == "281"
	case "40000003", "i386": // i386
		return string(nr) == "11" || string(nr) == "358"
	}
	return false
}

// add takes the fields of one record into the assembly.
func (a *auditAsm) add(typ, body []byte) error {
	switch string(typ) {
	case "SYSCALL":
		a.haveSyscall = true
		var arch, nr []byte
		for p := 0; ; {
			k, v, q, next, ok := nextAuditField(body, p)
			if !ok {
				break
			}
			p = next
			switch string(k) {
			case "arch":
				arch = v
			case "syscall":
				nr = v
			case "success":
				a.success = string(v) == "yes"
			case "pid":
				a.pid = append(a.pid[:0], v...)
			case "ppid":
				a.ppid = append(a.ppid[:0], v...)
			case "uid":
				a.uid = append(a.uid[:0], v...)
			case "UID":
				a.uidName = append(a.uidName[:0], v...)
			case "exe":
				a.exe = appendAuditValue(a.exe[:0], v, q)
			case "comm":
				a.comm = appendAuditValue(a.comm[:0], v, q)
			}
		}
		a.exec = execSyscall(arch, nr)
	case "EXECVE":
		a.haveExecve = true
		for p := 0; ; {
			k, v, q, next, ok := nextAuditField(body, p)
			if !ok {
				break
			}
			p = next
			if len(k) < 2 || k[0] != 'a' || !isDigit(k[1]) {
				continue
			}
			// aN, aN[j] (a chunk of a long argument); aN_len is skipped.
			i := 1
			for i < len(k) && isDigit(k[i]) {
				i++
			}
			n, _ := parseUint(k[1:i])
			chunk := i < len(k) && k[i] == '['
			if i < len(k) && !chunk {
				continue
			}
			if int(n) != a.nextArg && !(chunk && int(n)+1 == a.nextArg) {
				return auditErr("EXECVE argument %s out of order", k)
			}
			if !chunk || int(n) == a.nextArg {
				if len(a.args) > 0 {
					a.args = append(a.args, ' ')
				}
				a.nextArg = int(n) + 1
			}
			a.args = appendAuditValue(a.args, v, q)
			if len(a.args) > maxAuditArgs {
				return auditErr("EXECVE arguments over %d bytes", maxAuditArgs)
			}
		}
	case "PROCTITLE":
		for p := 0; ; {
			k, v, q, next, ok := nextAuditField(body, p)
			if !ok {
				break
			}
			p = next
			if string(k) == "proctitle" {
				a.title = appendAuditValue(a.title[:0], v, q)
				for i, c := range a.title {
					if c == 0 {
						a.title[i] = ' '
					}
				}
				a.title = bytes.TrimRight(a.title, " ")
			}
		}
	}
	return nil
}

// Assembles reports whether the decoder may build one event out of several
// records (auditd, and auto, which recognises it): its caller then calls
// Expire and Ready, holds back offsets while InFlight is non-zero, and
// feeds it again the records before a restored offset.
func (d *Decoder) Assembles() bool {
	switch d.format {
	case FormatAuto, FormatAuditd, FormatEnvelope, FormatHEC:
		return true // an envelope may hold auditd lines
	}
	return false
}

// SetPosition tells the decoder the caller's position of the next record
// (a Kafka offset): an assembly remembers where its first record was, for
// HeldFrom.
func (d *Decoder) SetPosition(pos int64) { d.pos = pos }

// HeldFrom returns the position of the first record of the oldest assembly
// not yet handed out (open or completed): a consumer must not commit past
// it. ok is false when none is.
func (d *Decoder) HeldFrom() (pos int64, ok bool) {
	for _, l := range [][]*auditAsm{d.audit.open, d.audit.ready} {
		for _, a := range l {
			if !ok || a.firstPos < pos {
				pos, ok = a.firstPos, true
			}
		}
	}
	return pos, ok
}

// OpenAssemblies returns the ids of the open assemblies (node, stamp and
// serial), for a consumer to store with its state: after a restart, records
// read again to rebuild them may also rebuild assemblies that completed and
// were applied before; KeepOnly drops those.
func (d *Decoder) OpenAssemblies() []string {
	ids := make([]string, 0, len(d.audit.open))
	for _, a := range d.audit.open {
		ids = append(ids, a.id())
	}
	return ids
}

// KeepOnly drops the open assemblies whose id is not in ids, and every
// completed one not yet handed out.
func (d *Decoder) KeepOnly(ids map[string]bool) {
	s := &d.audit
	keep := s.open[:0]
	for _, a := range s.open {
		if ids[a.id()] {
			keep = append(keep, a)
		} else {
			s.free = append(s.free, a)
		}
	}
	clear(s.open[len(keep):])
	s.open = keep
	s.free = append(s.free, s.ready...)
	clear(s.ready)
	s.ready = s.ready[:0]
}

func (a *auditAsm) id() string {
	return string(a.node) + "/" + strconv.FormatInt(a.t.UnixNano(), 10) + "/" + strconv.FormatUint(a.serial, 10)
}
