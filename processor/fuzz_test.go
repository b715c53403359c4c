package processor

import (
	"strings"
	"testing"
	"time"
)

// fuzzConfig derives a configuration from one byte.
func fuzzConfig(b byte) Config {
	cfg := DefaultConfig()
	if b&1 != 0 {
		cfg.Emit = EmitFinal
	}
	if b&2 != 0 {
		cfg.Match = MatchRobust
	}
	cfg.MaxOpenGroups = [...]int{1, 2, 3, 1000}[(b>>2)&3]
	if b&16 != 0 {
		cfg.IdleClose = 0
	}
	if b&32 != 0 {
		cfg.Grace = 0
	}
	if b&64 != 0 {
		cfg.Window, cfg.Offset = 7*time.Minute, 3*time.Minute
	}
	return cfg
}

type emitted struct {
	id  string
	rev int32
}

// partitionChecker holds what the invariants need across operations.
type partitionChecker struct {
	t       *testing.T
	cfg     Config
	seen    map[emitted]Result
	final   map[string]bool  // ids whose FINAL went out
	latest  map[string]int64 // count of the newest revision per window id
	late    int64            // LATE results
	matched int64            // matching events fed
}

func (c *partitionChecker) check(r Result) {
	t := c.t
	t.Helper()
	if r.Count < 1 || r.FirstSeen.After(r.LastSeen) {
		t.Fatalf("bad count or times: %+v", r)
	}
	if r.WindowEnd.Sub(r.WindowStart) != c.cfg.Window || (r.WindowStart.UnixNano()-int64(c.cfg.Offset))%int64(c.cfg.Window) != 0 {
		t.Fatalf("window [%s, %s) not aligned to %s+%s", r.WindowStart, r.WindowEnd, c.cfg.Window, c.cfg.Offset)
	}
	if r.FirstSeen.Before(r.WindowStart) || !r.LastSeen.Before(r.WindowEnd) {
		t.Fatalf("times outside the window: %+v", r)
	}
	if !alertIDPattern.MatchString(r.AlertID) {
		t.Fatalf("alert id %q", r.AlertID)
	}
	k := emitted{r.AlertID, r.Revision}
	if prev, dup := c.seen[k]; dup && !(r.Emission == EmissionLate && resultsEqual(prev, r)) {
		t.Fatalf("(alert id, revision) emitted twice:\n%+v\n%+v", prev, r)
	}
	c.seen[k] = r
	if r.Emission != EmissionLate && c.final[r.AlertID] {
		t.Fatalf("result after the FINAL of %s: %+v", r.AlertID, r)
	}
	switch r.Emission {
	case EmissionEarly:
		if c.cfg.Emit != EmitEarly || r.Revision != 0 || r.Count != 1 {
			t.Fatalf("EARLY in %s mode: %+v", c.cfg.Emit, r)
		}
		c.latest[r.AlertID] = r.Count
	case EmissionFinal:
		_, hadEarly := c.seen[emitted{r.AlertID, 0}]
		if r.Revision == 1 && (!hadEarly || c.seen[emitted{r.AlertID, 0}].Emission != EmissionEarly) {
			t.Fatalf("FINAL revision 1 without EARLY: %+v", r)
		}
		if r.Revision == 1 && r.Count == 1 {
			t.Fatalf("FINAL revision 1 of an unchanged group: %+v", r)
		}
		if r.Revision != 0 && r.Revision != 1 {
			t.Fatalf("FINAL revision %d", r.Revision)
		}
		c.final[r.AlertID] = true
		c.latest[r.AlertID] = r.Count
	case EmissionLate:
		if r.Count != 1 || !r.FirstSeen.Equal(r.LastSeen) || r.Revision != 0 {
			t.Fatalf("bad LATE %+v", r)
		}
		if _, window := c.latest[r.AlertID]; window {
			t.Fatalf("LATE reuses a window's alert id: %+v", r)
		}
		c.late++
	default:
		t.Fatalf("unknown emission %d", r.Emission)
	}
}

// FuzzPartition runs operations decoded from the input on a partition and on
// a twin that is drained and restored along the way, and checks that both
// emit the same results and that the results keep the invariants.
func FuzzPartition(f *testing.F) {
	f.Add([]byte{0, 0, 1, 2, 1, 5, 3, 2, 9, 40, 4, 0, 200, 6, 0, 0})
	f.Add([]byte{1, 0, 0, 10, 0, 1, 10, 0, 2, 10, 7, 1, 0, 0, 3, 60, 5, 90, 0, 6, 0, 0})
	f.Add([]byte{4, 0, 0, 1, 0, 5, 1, 0, 9, 2, 1, 0, 4, 0, 0, 16, 7, 0, 0, 0, 3, 33, 5, 200, 0})
	f.Add([]byte{83, 0, 1, 0, 0, 2, 17, 2, 3, 4, 7, 0, 0, 1, 9, 240, 2, 10, 255, 5, 255, 0, 0, 7, 0})
	f.Add([]byte{114, 2, 0, 7, 2, 4, 7, 2, 8, 7, 7, 2, 1, 0, 0, 64, 5, 30, 0, 5, 30, 0, 5, 30, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		cfg := fuzzConfig(data[0])
		// Bound the work per input: the checks replay the whole changelog.
		data = data[1:min(len(data), 1+3*400)]
		p, err := NewPartition(cfg)
		if err != nil {
			t.Fatal(err)
		}
		twin, _ := NewPartition(cfg)
		chk := &partitionChecker{t: t, cfg: cfg, seen: map[emitted]Result{}, final: map[string]bool{}, latest: map[string]int64{}}
		hosts := []string{"web-1", "web-2", "db-1", ""}
		pids := []string{"100", "200", "300"}
		base := at(9, 0, 0, 0)
		cursor, wall := base, base
		var changes []StateChange
		var got, want []Result
		step := func(o op) {
			n := len(got)
			got = apply(p, o, got)
			want = apply(twin, o, want)
			for _, r := range got[n:] {
				chk.check(r)
			}
		}
		for ; len(data) >= 3; data = data[3:] {
			kind, a, b := data[0]%8, data[1], data[2]
			// Event times follow a cursor with up to 30 minutes of disorder.
			cursor = cursor.Add(time.Duration(b%16) * time.Minute)
			ts := cursor.Add(-time.Duration(b/16)*2*time.Minute + time.Duration(a)*time.Second)
			if arrival := ts.Add(time.Second); arrival.After(wall) {
				wall = arrival
			}
			switch kind {
			case 0, 1, 2:
				e := positive(hosts[a%4], pids[(a/4)%3], ts)
				if !Match(cfg.Match, e) {
					t.Fatal("positive event does not match")
				}
				chk.matched++
				step(op{kind: opProcess, ev: e, now: wall})
			case 3:
				step(op{kind: opProcess, ev: negative(hosts[a%4], ts), now: wall})
			case 4:
				step(op{kind: opAdvance, at: ts, now: wall})
			case 5:
				wall = wall.Add(time.Duration(a) * 2 * time.Second)
				step(op{kind: opTick, now: wall})
			case 6:
				step(op{kind: opFlush})
				if s := p.Stats(); s.OpenGroups != 0 || s.OpenWindows != 0 {
					t.Fatalf("open after Flush: %+v", s)
				}
			case 7:
				changes = p.DrainChanges(changes)
				log := changes
				if a&1 != 0 {
					log = compact(changes, uint64(b))
				}
				restored, _ := NewPartition(cfg)
				for _, c := range log {
					if err := restored.Restore(c); err != nil {
						t.Fatalf("Restore own changelog: %v", err)
					}
				}
				rs, ps := restored.Stats(), p.Stats()
				if !restored.Watermark().Equal(p.Watermark()) || rs.OpenGroups != ps.OpenGroups || rs.StateBytes != ps.StateBytes {
					t.Fatalf("restored watermark %s groups %d bytes %d, want %s %d %d", restored.Watermark(),
						rs.OpenGroups, rs.StateBytes, p.Watermark(), ps.OpenGroups, ps.StateBytes)
				}
				p.Release()
				p = restored
				// A restored idle timer starts at the next call; give both
				// the same next call, an event older than any watermark.
				step(op{kind: opAdvance, at: base.Add(-48 * time.Hour), now: wall})
			}
			if kind != 7 && a%5 == 0 {
				changes = p.DrainChanges(changes)
			}
		}
		step(op{kind: opFlush})
		sameResults(t, got, want)
		if s := p.Stats(); s.OpenGroups != 0 || s.OpenWindows != 0 || s.StateBytes != 0 || s.Hosts != 0 {
			t.Fatalf("state left after Flush: %+v", s)
		}
		var total int64
		for _, c := range chk.latest {
			total += c
		}
		if total+chk.late != chk.matched {
			t.Fatalf("groups count %d + %d late != %d matching events", total, chk.late, chk.matched)
		}
	})
}

// FuzzMatchRobustSuperset checks that robust matching accepts everything ESCU
// accepts, that ESCU equals a plain lower-case-and-contains oracle, and that
// the prefilter never rejects a match.
func FuzzMatchRobustSuperset(f *testing.F) {
	f.Add("ssh", positiveCommand)
	f.Add("SSH", "ssh -o StrictHostKeyChecking=no h 'curl HTTPS://x'")
	f.Add("ssh", `ssh -o'ConnectTimeout=5' "-oBatchMode=yes" h "curl http://x"`)
	f.Add("ssh", `ssh -qo " batchmode yes" h \"http:`)
	f.Add("ssh", "ssh -oStrictHostChecking=no -oConnectTimeOut=8 'curl http://x'")
	f.Add("scp", "scp -oBatchMode=yes http://x h:")
	f.Add("ssh", "")
	f.Fuzz(func(t *testing.T, name, cmd string) {
		e := &Event{ProcessName: name, Process: cmd}
		escu, robust := Match(MatchESCU, e), Match(MatchRobust, e)
		if escu && !robust {
			t.Fatalf("robust misses an ESCU match: name %q process %q", name, cmd)
		}
		lc := asciiLower(cmd)
		oracle := asciiLower(name) == "ssh" &&
			(strings.Contains(lc, "ostricthostkeychecking") || strings.Contains(lc, "oconnecttimeout") || strings.Contains(lc, "obatchmode")) &&
			(strings.Contains(lc, "http:") || strings.Contains(lc, "https:"))
		if escu != oracle {
			t.Fatalf("Match(escu) = %v, oracle %v: name %q process %q", escu, oracle, name, cmd)
		}
		if robust && !asciiLowerContainsAll(lc, "http") {
			t.Fatalf("robust match without a URL: %q", cmd)
		}
		// The decoders' prefilter drops names without "ssh" in ASCII.
		if robust && indexFold(name, "ssh") < 0 {
			t.Fatalf("a match whose process name lacks \"ssh\" in ASCII: %q", name)
		}
	})
}

func asciiLowerContainsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// FuzzIndexFold compares the SWAR search with a simple oracle.
func FuzzIndexFold(f *testing.F) {
	f.Add([]byte("xxxxxxxxxxxxxxxxSsH"), "ssh")
	f.Add([]byte("http\x1a"), "http:")
	f.Add([]byte("@@@@@@@@@@`ab"), "`ab")
	f.Add([]byte(""), "")
	f.Fuzz(func(t *testing.T, h []byte, needle string) {
		got := indexFold(h, needle) >= 0
		want := strings.Contains(asciiLower(string(h)), asciiLower(needle))
		if got != want {
			t.Fatalf("indexFold(%q, %q) >= 0 is %v, want %v", h, needle, got, want)
		}
		if idx, wantIdx := indexFold(string(h), needle), strings.Index(asciiLower(string(h)), asciiLower(needle)); idx != wantIdx {
			t.Fatalf("indexFold(%q, %q) = %d, want %d", h, needle, idx, wantIdx)
		}
	})
}

// FuzzRestore feeds arbitrary changelog values to Restore: it must fail with
// an error or accept a value that re-encodes to an equivalent one, and the
// partition must stay usable.
func FuzzRestore(f *testing.F) {
	cfg := DefaultConfig()
	cfg.MaxOpenGroups = 1 // the second group forces the first: meta holds a forced window
	src, _ := NewPartition(cfg)
	src.Process(positive("web-1", "1", at(10, 0, 0, 0)), at(10, 0, 1, 0), nil)
	src.Process(positive("web-2", "1", at(10, 1, 0, 0)), at(10, 1, 1, 0), nil)
	for _, c := range src.DrainChanges(nil) {
		f.Add(string(c.Key) == metaKey, c.Value) // group, host and meta values
	}
	f.Add(false, []byte{'G', 1})
	f.Add(true, []byte{'M', 1, 1, 2, 0})
	f.Add(false, []byte{'H', 1, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, isMeta bool, value []byte) {
		p, _ := NewPartition(DefaultConfig())
		key := []byte(metaKey)
		var g *group
		switch {
		case isMeta:
		case len(value) > 0 && value[0] == hostTag:
			key = hostChangeKey("web-1")
		default:
			var err error
			if g, err = decodeGroup(value); err != nil {
				g = nil
				key = groupChangeKey(strings.Repeat("0", 32))
			} else {
				key = groupChangeKey(g.alertID)
			}
		}
		err := p.Restore(StateChange{Key: key, Value: value})
		if err != nil {
			return
		}
		if g != nil {
			again, err := decodeGroup(encodeGroup(g))
			if err != nil {
				t.Fatalf("re-encoded group does not decode: %v", err)
			}
			again.persisted, g.persisted = false, false
			if *again != *g {
				t.Fatalf("group changed in a round trip:\n%+v\n%+v", g, again)
			}
		}
		out := p.Process(positive("web-1", "1", at(10, 2, 0, 0)), at(10, 2, 1, 0), nil)
		out = p.Flush(out)
		for _, r := range out {
			if r.Count < 1 || r.FirstSeen.After(r.LastSeen) {
				t.Fatalf("bad result after restoring %x: %+v", value, r)
			}
		}
		if s := p.Stats(); s.OpenGroups != 0 {
			t.Fatalf("open groups after Flush: %+v", s)
		}
	})
}
