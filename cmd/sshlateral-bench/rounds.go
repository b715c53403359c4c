package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/consumer"
	"github.com/sshlateral/sshlateral/processor"
	"github.com/sshlateral/sshlateral/producer"
)

const phaseRaw = "raw franz-go consumer"

func rawSplitPhaseName(clients int) string {
	return fmt.Sprintf("raw, %d clients (partitions split)", clients)
}

func pipelinePhaseName(g consumer.Guarantee) string { return "sshlateral " + g.String() }

func compressionCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "zstd":
		return kgo.ZstdCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "none":
		return kgo.NoCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("--compression: want zstd, lz4, snappy, gzip or none, got %q", name)
}

// wantRecords is what a throughput phase reads: the stream and one closing
// record per partition.
func (h *benchHarness) wantRecords() int64 {
	return int64(h.rep.Stream.Events) + int64(h.cfg.partitions)
}

// closingRecords returns one everyday (non-ssh) record per partition of
// topic, two windows and a grace period after the stream's end in event
// time: it closes every window in sshlateral and in the peer alike.
func closingRecords(gen *generator, gc genConfig, topic string, partitions int) []*kgo.Record {
	pc := processor.DefaultConfig()
	at := gc.Start.Add(gc.Span + 2*pc.Window + pc.Grace)
	recs := make([]*kgo.Record, 0, partitions)
	for i := gc.Events; len(recs) < partitions; i++ {
		if gen.kindOf(i) != kindPlain {
			continue
		}
		buf, rec := gen.next(nil, i, at)
		_ = buf
		recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(len(recs)), Key: rec.Key, Value: rec.Value})
	}
	return recs
}

func (h *benchHarness) produceClosers(ctx context.Context, gen *generator, topic string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return fmt.Errorf("producer client: %w", err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, closingRecords(gen, h.cfg.gen, topic, h.cfg.partitions)...).FirstErr(); err != nil {
		return fmt.Errorf("produce closing records to topic %s: %w", topic, err)
	}
	return nil
}

// passStart marks the start of a pass: the first batch of the input topic
// a client has read and decompressed. A consumer sees its first record only
// after its first whole fetch response is decompressed, which with zstd can
// hold a fifth of a small stream; the batch is the finer mark.
type passStart struct {
	topic   string
	meter   *phaseMeter
	firstNs atomic.Int64
}

func (p *passStart) OnFetchBatchRead(_ kgo.BrokerMetadata, topic string, _ int32, _ kgo.FetchBatchMetrics) {
	if topic == p.topic && p.firstNs.Load() == 0 && p.firstNs.CompareAndSwap(0, time.Now().UnixNano()) {
		p.meter.firstRecord()
	}
}

// first returns the pass's start, or fallback if no batch was seen.
func (p *passStart) first(fallback time.Time) time.Time {
	if ns := p.firstNs.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return fallback
}

// benchPhase is one measured consumer of the loaded topic.
type benchPhase struct {
	name string
	run  func(ctx context.Context, round int) (phaseReport, error)
	// peer: a failed run is reported and the rounds go on.
	peer bool
}

func (h *benchHarness) throughputPhases(input string) []benchPhase {
	phases := []benchPhase{{phaseRaw, func(ctx context.Context, round int) (phaseReport, error) {
		return h.rawPhase(ctx, input, phaseRaw, h.prefix+"-raw-r"+strconv.Itoa(round), 1)
	}, false}}
	for _, n := range h.cfg.rawSplit {
		name := rawSplitPhaseName(n)
		phases = append(phases, benchPhase{name, func(ctx context.Context, _ int) (phaseReport, error) {
			return h.rawPhase(ctx, input, name, "", n)
		}, false})
	}
	for _, g := range h.cfg.guarantees {
		phases = append(phases, benchPhase{pipelinePhaseName(g), func(ctx context.Context, round int) (phaseReport, error) {
			return h.pipelinePhase(ctx, input, g, round)
		}, false})
	}
	if h.cfg.peerJar != "" {
		for _, g := range h.cfg.guarantees {
			if !slices.Contains(h.cfg.peerGuarantees, g) {
				continue
			}
			phases = append(phases, benchPhase{peerPhaseName(g), func(ctx context.Context, round int) (phaseReport, error) {
				return h.peerPhase(ctx, input, g, round)
			}, true})
		}
	}
	return phases
}

// throughputRounds runs every phase once per round, in alternating order
// (so that neither position favours a phase), then summarises the medians.
func (h *benchHarness) throughputRounds(ctx context.Context, input string) error {
	phases := h.throughputPhases(input)
	// What ran is summarised even when a phase fails.
	defer h.summarize(phases)
	// The first pass over freshly loaded data is slower on every broker
	// (group coordinator start, broker JIT, kfake's first read): a raw
	// pass that is not reported takes it.
	h.progress("warm-up pass (not reported)")
	if _, err := h.rawPhase(ctx, input, "warm-up", h.prefix+"-warmup", 1); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	for r := 1; r <= h.cfg.rounds; r++ {
		order := slices.Clone(phases)
		if r%2 == 0 {
			slices.Reverse(order)
		}
		for _, p := range order {
			h.progress("round %d of %d: %s", r, h.cfg.rounds, p.name)
			ph, err := p.run(ctx, r)
			ph.Round = r
			if err != nil && p.peer && ctx.Err() == nil {
				h.rep.Failures = append(h.rep.Failures, fmt.Sprintf("round %d, %s failed: %s", r, p.name, tailString(err.Error(), 1500)))
				continue
			}
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r, p.name, err)
			}
			if ph.Results != nil && ph.Results["EARLY"] != int64(h.rep.Stream.Positives) {
				h.rep.Warnings = append(h.rep.Warnings, fmt.Sprintf("round %d, %s: %d EARLY results for %d matching events",
					r, ph.Name, ph.Results["EARLY"], h.rep.Stream.Positives))
			}
			h.rep.Phases = append(h.rep.Phases, ph)
		}
	}
	return nil
}

func (h *benchHarness) summarize(phases []benchPhase) {
	names := make([]string, len(phases))
	for i, p := range phases {
		names[i] = p.name
	}
	h.rep.Summary = summarize(h.rep.Phases, names)
	for i, r := range h.rep.Summary {
		if r.Runs == 0 {
			h.rep.Summary[i].NotRun = "no successful run"
		}
	}
	for _, g := range h.cfg.guarantees {
		switch {
		case h.cfg.peerJar == "":
			h.rep.Summary = append(h.rep.Summary, summaryRow{Name: peerPhaseName(g), NotRun: "not run (no --peer-jar)"})
		case !slices.Contains(h.cfg.peerGuarantees, g):
			h.rep.Summary = append(h.rep.Summary, summaryRow{Name: peerPhaseName(g), NotRun: "not run (--peer-guarantee)"})
		}
	}
}

// rawPhase reads the whole topic with plain franz-go consumers that do
// nothing with the records: the practical limit of any consumer here. One
// client is a group consumer, as sshlateral's; more clients each fetch a
// fixed share of the partitions (each client has its own fetch goroutine,
// which decompresses).
func (h *benchHarness) rawPhase(ctx context.Context, topic, name, group string, clients int) (phaseReport, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.timeout)
	defer cancel()
	want := h.wantRecords()
	ph := phaseReport{Name: name}
	m := startMeter(h.brokerPID)
	begin := time.Now()
	pass := &passStart{topic: topic, meter: m}
	cls := make([]*kgo.Client, 0, clients)
	defer func() {
		for _, cl := range cls {
			cl.Close()
		}
	}()
	for i := range clients {
		opts := []kgo.Opt{kgo.SeedBrokers(h.brokers...), kgo.WithHooks(pass)}
		if clients == 1 {
			opts = append(opts, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		} else {
			parts := map[int32]kgo.Offset{}
			for p := i; p < h.cfg.partitions; p += clients {
				parts[int32(p)] = kgo.NewOffset().AtStart()
			}
			opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return ph, fmt.Errorf("raw consumer client: %w", err)
		}
		cls = append(cls, cl)
	}
	var (
		events, bytes   atomic.Int64
		firstNs, lastNs atomic.Int64
		wg              sync.WaitGroup
	)
	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	for _, cl := range cls {
		wg.Go(func() {
			for pollCtx.Err() == nil {
				fetches := cl.PollFetches(pollCtx)
				fetches.EachError(func(t string, p int32, err error) {
					if pollCtx.Err() == nil {
						h.logger.Warn("raw consumer fetch error", "topic", t, "partition", p, "err", err)
					}
				})
				var n, b int64
				fetches.EachRecord(func(r *kgo.Record) {
					n++
					b += int64(len(r.Key) + len(r.Value))
				})
				if n == 0 {
					continue
				}
				if firstNs.CompareAndSwap(0, time.Now().UnixNano()) {
					m.firstRecord()
				}
				bytes.Add(b)
				if events.Add(n) >= want {
					lastNs.CompareAndSwap(0, time.Now().UnixNano())
					stopPolling()
				}
			}
		})
	}
	wg.Wait()
	ph.Events, ph.Bytes = events.Load(), bytes.Load()
	if ph.Events < want {
		return ph, fmt.Errorf("raw consumer read %d of %d records of topic %s: %w", ph.Events, want, topic, ctx.Err())
	}
	m.finish(&ph)
	first, last := pass.first(time.Unix(0, firstNs.Load())), time.Unix(0, lastNs.Load())
	ph.StartupSeconds = first.Sub(begin).Seconds()
	setRates(&ph, first, last)
	return ph, nil
}

// resultRow is one settled detection result: a group's row as the scheduled
// search would list it. Comparable, so that passes compare with ==.
type resultRow struct {
	Dest, User, ParentProcessName, ProcessName, Process, ProcessID, ParentProcessID string
	Count                                                                           int64
	FirstTime, LastTime                                                             string
	WindowStart                                                                     time.Time
}

func (r resultRow) String() string {
	return fmt.Sprintf("dest=%s user=%s parent=%s process_name=%s pid=%s ppid=%s count=%d first=%s last=%s window=%s process=%q",
		r.Dest, r.User, r.ParentProcessName, r.ProcessName, r.ProcessID, r.ParentProcessID, r.Count, r.FirstTime, r.LastTime,
		r.WindowStart.Format(time.RFC3339), r.Process)
}

func compareRows(a, b resultRow) int {
	for _, c := range [...][2]string{{a.Dest, b.Dest}, {a.ProcessID, b.ProcessID}, {a.User, b.User},
		{a.ParentProcessName, b.ParentProcessName}, {a.ProcessName, b.ProcessName}, {a.Process, b.Process},
		{a.ParentProcessID, b.ParentProcessID}, {a.FirstTime, b.FirstTime}, {a.LastTime, b.LastTime}} {
		if n := strings.Compare(c[0], c[1]); n != 0 {
			return n
		}
	}
	if n := a.WindowStart.Compare(b.WindowStart); n != 0 {
		return n
	}
	return int(min(max(a.Count-b.Count, -1), 1))
}

// readTopic hands fn every committed record of topic (every record, with
// uncommitted) up to its end offsets at the call; transaction markers are
// read (not handed over) so that the end is reached in transactional topics
// too.
func (h *benchHarness) readTopic(ctx context.Context, topic string, uncommitted bool, fn func(*kgo.Record) error) error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.timeout)
	defer cancel()
	adm, closeAdm, err := h.admin()
	if err != nil {
		return err
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	closeAdm()
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("end offsets of topic %s: %w", topic, err)
	}
	pending := map[int32]int64{}
	parts := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			pending[o.Partition] = o.Offset
			parts[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(pending) == 0 {
		return nil
	}
	isolation := kgo.ReadCommitted()
	if uncommitted {
		isolation = kgo.ReadUncommitted()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchIsolationLevel(isolation), kgo.KeepControlRecords())
	if err != nil {
		return fmt.Errorf("reader of topic %s: %w", topic, err)
	}
	defer cl.Close()
	for len(pending) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read topic %s: %d partitions not read to their end: %w", topic, len(pending), err)
		}
		if err := fetches.Err(); err != nil {
			return fmt.Errorf("read topic %s: %w", topic, err)
		}
		var ferr error
		fetches.EachRecord(func(r *kgo.Record) {
			if end, ok := pending[r.Partition]; ok && r.Offset+1 >= end {
				delete(pending, r.Partition)
			}
			if r.Attrs.IsControl() || ferr != nil {
				return
			}
			ferr = fn(r)
		})
		if ferr != nil {
			return ferr
		}
	}
	return nil
}

// readRiskRows reads sshlateral's risk records and returns the settled row
// of each group: its dest record with the highest revision (the FINAL, or the
// EARLY when nothing changed after it), sorted.
func (h *benchHarness) readRiskRows(ctx context.Context, topic string) ([]resultRow, error) {
	dec, err := producer.NewDecoder()
	if err != nil {
		return nil, err
	}
	type settled struct {
		revision int32
		row      resultRow
	}
	latest := map[string]settled{}
	err = h.readTopic(ctx, topic, false, func(r *kgo.Record) error {
		m, err := dec.Decode(r.Value)
		if err != nil {
			return fmt.Errorf("decode risk record at topic %s partition %d offset %d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		if nativeString(m["risk_object_type"]) != "system" {
			return nil
		}
		rev, _ := m["revision"].(int32)
		id := nativeString(m["alert_id"])
		if s, ok := latest[id]; ok && s.revision >= rev {
			return nil
		}
		count, _ := m["count"].(int64)
		latest[id] = settled{rev, resultRow{
			Dest: nativeString(m["dest"]), User: nativeString(m["user"]), ParentProcessName: nativeString(m["parent_process_name"]),
			ProcessName: nativeString(m["process_name"]), Process: nativeString(m["process"]), ProcessID: nativeString(m["process_id"]),
			ParentProcessID: nativeString(m["parent_process_id"]), Count: count,
			FirstTime: nativeString(m["firstTime"]), LastTime: nativeString(m["lastTime"]), WindowStart: nativeTime(m["window_start"]),
		}}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rows := make([]resultRow, 0, len(latest))
	for _, s := range latest {
		rows = append(rows, s.row)
	}
	slices.SortFunc(rows, compareRows)
	return rows, nil
}

// nativeTime reads a goavro timestamp-millis.
func nativeTime(v any) time.Time {
	switch t := v.(type) {
	case time.Time:
		return t.UTC()
	case int64:
		return time.UnixMilli(t).UTC()
	}
	return time.Time{}
}

// checkRows compares a pass's settled rows with the first pass's (and,
// for the first, their number with the matching events generated). A
// difference is a correctness failure: the run exits non-zero.
func (h *benchHarness) checkRows(name string, rows []resultRow) bool {
	if h.refRows == nil {
		if want := h.rep.Stream.Positives; len(rows) != want {
			h.rep.Failures = append(h.rep.Failures, fmt.Sprintf("%s: %d result rows for %d matching events", name, len(rows), want))
			return false
		}
		h.refRows, h.refRowsFrom = rows, name
		return true
	}
	if d := rowDiff(rows, h.refRows, 5); d != "" {
		h.rep.Failures = append(h.rep.Failures, fmt.Sprintf("%s: result rows differ from %s's (%d rows, want %d): %s",
			name, h.refRowsFrom, len(rows), len(h.refRows), d))
		return false
	}
	return true
}

// rowDiff describes up to limit rows that only one of the sorted got and
// want holds; "" when they are equal.
func rowDiff(got, want []resultRow, limit int) string {
	if slices.Equal(got, want) {
		return ""
	}
	var out []string
	i, j := 0, 0
	for (i < len(got) || j < len(want)) && len(out) < limit {
		switch {
		case j == len(want) || (i < len(got) && compareRows(got[i], want[j]) < 0):
			out = append(out, "extra "+got[i].String())
			i++
		case i == len(got) || compareRows(got[i], want[j]) > 0:
			out = append(out, "missing "+want[j].String())
			j++
		default:
			i++
			j++
		}
	}
	if len(out) == 0 {
		return "same rows in another multiplicity"
	}
	return strings.Join(out, "; ")
}

// summaryRow is one phase over all rounds: medians, and ratios to the raw
// consumer's medians.
type summaryRow struct {
	Name             string  `json:"name"`
	Runs             int     `json:"runs"`
	NotRun           string  `json:"not_run,omitempty"`
	EventsPerSec     float64 `json:"events_per_sec"`
	CPUSeconds       float64 `json:"cpu_seconds_pass"`
	CPUPerEvent      float64 `json:"cpu_us_per_event"`
	BrokerCPUSeconds float64 `json:"broker_cpu_seconds_pass,omitempty"`
	PeakRSS          int64   `json:"peak_rss_bytes"`
	Rows             int     `json:"rows,omitempty"`
	RowsDiffer       bool    `json:"rows_differ,omitempty"`
	// XRaw and CPUXRaw are throughput and CPU per event relative to the
	// raw consumer's.
	XRaw    float64 `json:"throughput_x_raw"`
	CPUXRaw float64 `json:"cpu_per_event_x_raw"`
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// summarize returns one row per name, in that order, from the phases' runs.
func summarize(phases []phaseReport, names []string) []summaryRow {
	rows := make([]summaryRow, 0, len(names))
	for _, name := range names {
		var eps, cpu, cpuEv, broker, rss []float64
		r := summaryRow{Name: name}
		for _, p := range phases {
			if p.Name != name {
				continue
			}
			r.Runs++
			eps = append(eps, p.EventsPerSec)
			cpu = append(cpu, p.CPUSeconds)
			cpuEv = append(cpuEv, p.CPUPerEvent)
			broker = append(broker, p.BrokerCPUSeconds)
			rss = append(rss, float64(p.PeakRSS))
			r.Rows = max(r.Rows, p.Rows)
			r.RowsDiffer = r.RowsDiffer || p.RowsDiffer
		}
		r.EventsPerSec, r.CPUSeconds, r.CPUPerEvent = median(eps), median(cpu), median(cpuEv)
		r.BrokerCPUSeconds, r.PeakRSS = median(broker), int64(median(rss))
		rows = append(rows, r)
	}
	var raw *summaryRow
	for i := range rows {
		if rows[i].Name == phaseRaw {
			raw = &rows[i]
		}
	}
	if raw != nil && raw.EventsPerSec > 0 && raw.CPUPerEvent > 0 {
		for i := range rows {
			rows[i].XRaw = rows[i].EventsPerSec / raw.EventsPerSec
			rows[i].CPUXRaw = rows[i].CPUPerEvent / raw.CPUPerEvent
		}
	}
	return rows
}

// printSummary prints the ratio table, then sshlateral against the peer.
func printSummary(w io.Writer, rows []summaryRow, rounds int) {
	fmt.Fprintf(w, "\nratio table (medians of %d rounds, first→last record; CPU is this process's, or the peer's, in the pass):\n", rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\truns\tevents/s\tx raw\tCPU s\tCPU µs/event\tCPU/event x raw\tbroker CPU s\tpeak RSS\tresult rows\t")
	byName := map[string]summaryRow{}
	for _, r := range rows {
		byName[r.Name] = r
		if r.NotRun != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\t-\t%s\t\n", r.Name, r.NotRun)
			continue
		}
		ratio := func(v float64) string {
			if v == 0 || r.RowsDiffer {
				return "-"
			}
			return fmt.Sprintf("%.2f", v)
		}
		rowsCol := "-"
		switch {
		case r.RowsDiffer:
			rowsCol = "DIFFER"
		case r.Rows > 0:
			rowsCol = fmt.Sprintf("%d equal", r.Rows)
		}
		broker := "-"
		if r.BrokerCPUSeconds > 0 {
			broker = fmt.Sprintf("%.2f", r.BrokerCPUSeconds)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%.2f\t%.2f\t%s\t%s\t%.0f MiB\t%s\t\n", r.Name, r.Runs, r.EventsPerSec, ratio(r.XRaw),
			r.CPUSeconds, r.CPUPerEvent, ratio(r.CPUXRaw), broker, float64(r.PeakRSS)/(1<<20), rowsCol)
	}
	tw.Flush()
	for _, g := range []consumer.Guarantee{consumer.AtLeastOnce, consumer.ExactlyOnce} {
		ours, okOurs := byName[pipelinePhaseName(g)]
		peer, okPeer := byName[peerPhaseName(g)]
		switch {
		case !okOurs || !okPeer:
		case peer.NotRun != "":
			fmt.Fprintf(w, "sshlateral / kafka streams, %s: %s\n", g, peer.NotRun)
		case peer.RowsDiffer || ours.RowsDiffer:
			fmt.Fprintf(w, "sshlateral / kafka streams, %s: no ratio, result rows differ\n", g)
		case peer.EventsPerSec > 0 && peer.CPUPerEvent > 0:
			fmt.Fprintf(w, "sshlateral / kafka streams, %s: %.2fx throughput, %.2fx CPU per event, %.2fx peak RSS\n", g,
				ours.EventsPerSec/peer.EventsPerSec, ours.CPUPerEvent/peer.CPUPerEvent, float64(ours.PeakRSS)/float64(max(peer.PeakRSS, 1)))
		}
	}
}
