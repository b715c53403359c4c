package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/consumer"
	"github.com/sshlateral/sshlateral/integration/escurow"
)

// The Kafka Streams peer (integration/kstreams, docs/kafka-streams-peer.md)
// runs the same detection as a Kafka Streams application: one JSON row per
// group at window close, and a one-line JSON summary on stdout when it has
// been idle for --exit-when-idle seconds.

// peerGuarantee is the peer's processing.guarantee for g.
func peerGuarantee(g consumer.Guarantee) string {
	if g == consumer.ExactlyOnce {
		return "exactly_once_v2"
	}
	return "at_least_once"
}

func peerPhaseName(g consumer.Guarantee) string { return "kafka streams " + peerGuarantee(g) }

// peerSummary is the peer's summary line.
type peerSummary struct {
	Records      int64   `json:"records"`
	Rows         int64   `json:"rows"`
	FirstToLastS float64 `json:"first_to_last_s"`
	// FirstToSettledS also waits for the last repartitioned record.
	FirstToSettledS float64 `json:"first_to_settled_s"`
	// RebalancesInPass: a rebalance inside the pass slows it.
	RebalancesInPass int64   `json:"rebalances_in_pass"`
	EventsPerS       float64 `json:"events_per_s"`
	CPUSecPass       float64 `json:"cpu_s_pass"`
	CPUSecProcess    float64 `json:"cpu_s_process"`
	PeakRSSMiB       int64   `json:"peak_rss_mib"`
}

// peerRow is one output row of the peer.
type peerRow struct {
	escurow.Row
	WindowStart string `json:"window_start"`
}

// peerPhase runs the peer jar on the loaded topic with a fresh application
// id and output topic, then checks its rows against sshlateral's.
func (h *benchHarness) peerPhase(ctx context.Context, input string, g consumer.Guarantee, round int) (phaseReport, error) {
	ph := phaseReport{Name: peerPhaseName(g)}
	short := "alo"
	if g == consumer.ExactlyOnce {
		short = "eos"
	}
	appID := h.prefix + "-peer-" + short + "-r" + strconv.Itoa(round)
	output := h.prefix + ".peer-" + short + "-r" + strconv.Itoa(round) + ".rows"
	if err := h.createTopic(ctx, output, int32(h.cfg.partitions)); err != nil {
		return ph, err
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.timeout)
	defer cancel()
	args := []string{"-jar", h.cfg.peerJar, "--bootstrap", strings.Join(h.brokers, ","), "--input", input, "--output", output,
		"--application-id", appID, "--guarantee", peerGuarantee(g),
		"--exit-when-idle", strconv.Itoa(int(h.cfg.peerIdle / time.Second))}
	cmd := exec.CommandContext(ctx, "java", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	sys0 := readSystemCPU()
	b0 := processCPU(h.brokerPID)
	err := cmd.Run()
	// Kafka Streams creates its internal topics itself; they go with ours.
	h.adoptTopics(ctx, appID+"-")
	if err != nil {
		return ph, fmt.Errorf("kafka streams peer %s: %w\nstderr: %s", strings.Join(args, " "), err, tailString(stderr.String(), 4000))
	}
	var sum peerSummary
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &sum); err != nil {
		return ph, fmt.Errorf("kafka streams peer summary %q: %w", stdout.Bytes(), err)
	}
	ph.MachineBusy = readSystemCPU().busySince(sys0)
	if h.brokerPID > 0 {
		// The broker's CPU over the peer's whole run, start-up included:
		// the peer's pass is not visible from here.
		ph.BrokerCPUSeconds = (processCPU(h.brokerPID) - b0).Seconds()
	}
	ph.Events = sum.Records
	ph.Bytes = h.rep.Stream.Bytes
	ph.Seconds = sum.FirstToLastS
	ph.EventsPerSec = sum.EventsPerS
	ph.MBPerSec = float64(ph.Bytes) / max(ph.Seconds, 1e-9) / 1e6
	ph.CPUSeconds = sum.CPUSecPass
	ph.CPUPerEvent = sum.CPUSecPass * 1e6 / float64(max(sum.Records, 1))
	ph.PeakRSS = sum.PeakRSSMiB << 20
	if sum.RebalancesInPass > 0 {
		h.rep.Warnings = append(h.rep.Warnings, fmt.Sprintf("round %d, %s: %d rebalances inside the pass", round, ph.Name, sum.RebalancesInPass))
	}
	if want := h.wantRecords(); sum.Records != want {
		h.rep.Failures = append(h.rep.Failures, fmt.Sprintf("%s: read %d records, want %d", ph.Name, sum.Records, want))
		ph.RowsDiffer = true
	}
	rows, err := h.readPeerRows(ctx, output, false)
	if err != nil {
		return ph, fmt.Errorf("%s: %w", ph.Name, err)
	}
	ph.Rows = len(rows)
	if !h.checkRows(ph.Name, rows) {
		ph.RowsDiffer = true
		// Rows written in transactions that were aborted (and not written
		// again) are in the topic, but not committed.
		all, err := h.readPeerRows(ctx, output, true)
		h.rep.Warnings = append(h.rep.Warnings, fmt.Sprintf("round %d, %s: the peer counted %d rows emitted; %s holds %d committed, %d in all (read uncommitted; %v); the peer's stderr ends: %s",
			round, ph.Name, sum.Rows, output, len(rows), len(all), err, tailString(stderr.String(), 2000)))
	}
	return ph, nil
}

// readPeerRows reads the peer's rows, sorted.
func (h *benchHarness) readPeerRows(ctx context.Context, topic string, uncommitted bool) ([]resultRow, error) {
	var rows []resultRow
	err := h.readTopic(ctx, topic, uncommitted, func(r *kgo.Record) error {
		var pr peerRow
		if err := json.Unmarshal(r.Value, &pr); err != nil {
			return fmt.Errorf("peer row at topic %s partition %d offset %d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		ws, err := time.Parse(time.RFC3339, pr.WindowStart)
		if err != nil {
			return fmt.Errorf("peer row at topic %s partition %d offset %d: window_start: %w", r.Topic, r.Partition, r.Offset, err)
		}
		rows = append(rows, resultRow{Dest: pr.Dest, User: pr.User, ParentProcessName: pr.ParentProcessName,
			ProcessName: pr.ProcessName, Process: pr.Process, ProcessID: pr.ProcessID, ParentProcessID: pr.ParentProcessID,
			Count: pr.Count, FirstTime: pr.FirstTime, LastTime: pr.LastTime, WindowStart: ws.UTC()})
		return nil
	})
	slices.SortFunc(rows, compareRows)
	return rows, err
}

// adoptTopics adds the broker's topics named with prefix to the run's, so
// that cleanup deletes them.
func (h *benchHarness) adoptTopics(ctx context.Context, prefix string) {
	h.withAdmin(ctx, func(ctx context.Context, adm *kadm.Client) {
		topics, err := adm.ListTopics(ctx)
		if err != nil {
			return
		}
		for _, t := range topics.Names() {
			if strings.HasPrefix(t, prefix) {
				h.topics = append(h.topics, t)
			}
		}
	})
}

// tailString returns the last n bytes of s.
func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
