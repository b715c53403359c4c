package main

import (
	"github.com/sshlateral/sshlateral/cmd/internal/cli"
	"github.com/sshlateral/sshlateral/cmd/internal/kafkaclient"
	"github.com/sshlateral/sshlateral/consumer/decode"

	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sshlateral/sshlateral/consumer"
	"github.com/sshlateral/sshlateral/processor"
	"github.com/sshlateral/sshlateral/producer"
)

// benchConfig configures the bench subcommand.
type benchConfig struct {
	// gen is the synthetic stream (--events, --hosts, --positive-rate,
	// --ssh-rate, --sshd-rate, --format, --record-size, --seed).
	gen genConfig
	// partitions of the input topic (--partitions). Default 12.
	partitions int
	// brokers to use (--brokers). Default none: an embedded kfake cluster
	// on 127.0.0.1.
	brokers []string
	// guarantees to measure (--guarantee both|at-least-once|exactly-once).
	// Default both.
	guarantees []consumer.Guarantee
	// rate (--rate): 0 (default) loads the whole stream first and measures
	// throughput; N > 0 runs only the latency test, producing --events at
	// N events/s.
	rate float64
	// latencyRate (--latency-rate) is the steady load of the latency phase
	// that follows the throughput phases when --rate is 0. Default 100000;
	// 0 skips it.
	latencyRate float64
	// latencyDuration (--latency-duration) is how long that phase loads.
	// Default 5s.
	latencyDuration time.Duration
	// stateGroups (--state-groups) is how many open groups the state cost
	// measurement holds. Default 20000; 0 skips it.
	stateGroups int
	// timeout (--timeout) bounds each phase. Default 5m.
	timeout time.Duration
	// json (--json) prints one JSON document instead of tables.
	json bool
	// cpuProfile (--cpuprofile) writes a CPU profile of the throughput
	// phases (the consumers, not generating and loading).
	cpuProfile string
	// logLevel (--log-level) of the pipelines, logged to stderr. Default error.
	logLevel string
	// brokerProcess (--broker-process) runs the embedded kfake cluster in
	// a child process ("child", the default), so that CPU, allocations and
	// RSS measured here are the consumer's alone, or "in-process".
	brokerProcess string
	// keying (--input-keying) of the measured pipelines. Default host.
	keying consumer.InputKeying
	// serveKfake (--serve-kfake) makes this process the child:
	// it serves a kfake cluster until its stdin closes.
	serveKfake bool
	// broker (--broker) is the broker the run starts when --brokers is
	// empty: "kfake" (default) or "kafka", a real broker in a container.
	broker string
	// kafkaImage (--kafka-image, SSHLATERAL_KAFKA_IMAGE) is the image of
	// --broker kafka.
	kafkaImage string
	// rounds (--rounds) of the throughput phases, in alternating order;
	// the tables give medians. Default 3.
	rounds int
	// compression (--compression) of the loaded input batches. Default
	// zstd, as real producers and replay write.
	compression string
	// rawSplit (--raw-split) lists client counts for extra raw phases in
	// which N clients each fetch a share of the partitions.
	rawSplit []int
	// peerJar (--peer-jar) is the Kafka Streams peer (integration/kstreams)
	// to run on the same topic; empty: not run.
	peerJar string
	// peerGuarantees (--peer-guarantee) are the guarantees the peer runs
	// in, among those of --guarantee. Default both.
	peerGuarantees []consumer.Guarantee
	// peerIdle (--peer-idle) is how long the peer waits without input
	// before it exits.
	peerIdle time.Duration
}

func (c *benchConfig) validate() error {
	errs := []error{c.gen.validate()}
	if c.partitions <= 0 {
		errs = append(errs, fmt.Errorf("--partitions: must be positive, got %d", c.partitions))
	}
	if c.rate < 0 {
		errs = append(errs, fmt.Errorf("--rate: must be >= 0, got %g", c.rate))
	}
	if c.latencyRate < 0 {
		errs = append(errs, fmt.Errorf("--latency-rate: must be >= 0, got %g", c.latencyRate))
	}
	if c.latencyDuration < 0 {
		errs = append(errs, fmt.Errorf("--latency-duration: must not be negative, got %s", c.latencyDuration))
	}
	if c.stateGroups < 0 {
		errs = append(errs, fmt.Errorf("--state-groups: must not be negative, got %d", c.stateGroups))
	}
	if c.brokerProcess != "child" && c.brokerProcess != "in-process" {
		errs = append(errs, fmt.Errorf("--broker-process: want child or in-process, got %q", c.brokerProcess))
	}
	if c.timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout: must be positive, got %s", c.timeout))
	}
	if c.broker != "kfake" && c.broker != "kafka" {
		errs = append(errs, fmt.Errorf("--broker: want kfake or kafka, got %q", c.broker))
	}
	if c.broker == "kafka" && len(c.brokers) > 0 {
		errs = append(errs, errors.New("--broker kafka starts its own broker: do not give --brokers too"))
	}
	if c.rounds <= 0 {
		errs = append(errs, fmt.Errorf("--rounds: must be positive, got %d", c.rounds))
	}
	if _, err := compressionCodec(c.compression); err != nil {
		errs = append(errs, err)
	}
	for _, n := range c.rawSplit {
		if n < 2 || n > c.partitions {
			errs = append(errs, fmt.Errorf("--raw-split: each client count must be between 2 and --partitions (%d), got %d", c.partitions, n))
		}
	}
	if c.peerJar != "" {
		if _, err := os.Stat(c.peerJar); err != nil {
			errs = append(errs, fmt.Errorf("--peer-jar: %w", err))
		}
		if _, err := exec.LookPath("java"); err != nil {
			errs = append(errs, fmt.Errorf("--peer-jar: java is needed to run the peer: %w", err))
		}
	}
	if c.peerIdle < time.Second {
		errs = append(errs, fmt.Errorf("--peer-idle: must be at least 1s, got %s", c.peerIdle))
	}
	return errors.Join(errs...)
}

func parseGuarantees(flagName, s string) ([]consumer.Guarantee, error) {
	if s == "both" {
		return []consumer.Guarantee{consumer.AtLeastOnce, consumer.ExactlyOnce}, nil
	}
	g, err := consumer.ParseGuarantee(s)
	if err != nil {
		return nil, fmt.Errorf("--%s: want both, at-least-once or exactly-once, got %q", flagName, s)
	}
	return []consumer.Guarantee{g}, nil
}

func parseBenchFlags(e cli.Env, args []string) (benchConfig, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	g := defaultGenConfig()
	fs.IntVar(&g.Events, "events", g.Events, "input records to generate")
	fs.IntVar(&g.Hosts, "hosts", g.Hosts, "distinct endpoints (record keys)")
	fs.Float64Var(&g.PositiveRate, "positive-rate", g.PositiveRate, "fraction of records that match the detection")
	fs.Float64Var(&g.SSHRate, "ssh-rate", g.SSHRate, "fraction of records whose process is ssh, matching or not")
	fs.Float64Var(&g.SSHDRate, "sshd-rate", g.SSHDRate, "fraction of other records started by an sshd session (they contain \"ssh\" and pass the prefilter)")
	fs.StringVar(&g.Format, "format", g.Format, "input format: sysmon, cim, envelope, hec, ecs or ocsf")
	fs.IntVar(&g.RecordSize, "record-size", 0, "approximate bytes per record, padded with a long parent command line (0: natural, about 1.5 KB for sysmon)")
	fs.DurationVar(&g.Span, "span", g.Span, "event time covered by the stream (windows close inside it)")
	fs.Uint64Var(&g.Seed, "seed", g.Seed, "random seed of the stream")
	partitions := fs.Int("partitions", 12, "partitions of the input topic")
	brokers := fs.String("brokers", "", "seed brokers (empty: an embedded kfake cluster on 127.0.0.1)")
	guarantee := fs.String("guarantee", "both", "pipelines to measure: both, at-least-once or exactly-once")
	rate := fs.Float64("rate", 0, "0: load everything, then measure throughput; N: latency test only, at N events/s")
	latencyRate := fs.Float64("latency-rate", 100000, "events/s of the latency phase after the throughput phases (0: skip)")
	latencyDuration := fs.Duration("latency-duration", 5*time.Second, "how long the latency phase loads")
	stateGroups := fs.Int("state-groups", 20000, "open groups for the state cost measurement (0: skip)")
	timeout := fs.Duration("timeout", 5*time.Minute, "limit of each phase")
	quick := fs.Bool("quick", false, "small run for CI: 100000 events, 2s latency phase, 5000 state groups (explicit flags win)")
	jsonOut := fs.Bool("json", false, "print one JSON document")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the throughput phases (consumers only) to this file")
	logLevel := fs.String("log-level", "error", "log level of the pipelines (logs go to stderr)")
	brokerProcess := fs.String("broker-process", "child", "embedded kfake in a child process (child: figures of this process are the consumer's alone) or in-process")
	broker := fs.String("broker", "kfake", "broker to start when --brokers is empty: kfake (embedded) or kafka (a real broker in a container, --kafka-image)")
	kafkaImage := fs.String("kafka-image", defaultKafkaImage, "image of --broker kafka (integration/kafkaimage/build.sh prints a local one)")
	rounds := fs.Int("rounds", 3, "rounds of the throughput phases, in alternating order; tables give medians")
	compression := fs.String("compression", "zstd", "compression of the loaded input: zstd, lz4, snappy, gzip or none")
	rawSplit := fs.String("raw-split", "", "comma-separated client counts N: extra raw phases where N clients each fetch a share of the partitions")
	peerJar := fs.String("peer-jar", "", "Kafka Streams peer jar (integration/kstreams) to run on the same topic (empty: not run)")
	peerGuarantee := fs.String("peer-guarantee", "both", "guarantees the peer runs in, among those of --guarantee: both, at-least-once or exactly-once")
	peerIdle := fs.Duration("peer-idle", 10*time.Second, "the peer exits after this long without records to process (longer than any pause in its input)")
	var keying consumer.InputKeying
	fs.Var(&keying, "input-keying", "input `keying` of the pipelines: host (default) or any (through a repartition topic)")
	serveKfake := fs.Bool("serve-kfake", false, "serve an embedded kfake cluster on 127.0.0.1, print its address, stop when stdin closes (the child of --broker-process child; the integration tests use it too)")
	if err := cli.ParseFlags(fs, e, args); err != nil {
		return benchConfig{}, err
	}
	if fs.NArg() > 0 {
		return benchConfig{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *quick {
		if !set["events"] {
			g.Events = 100_000
		}
		if !set["latency-duration"] {
			*latencyDuration = 2 * time.Second
		}
		if !set["state-groups"] {
			*stateGroups = 5000
		}
	}
	c := benchConfig{
		gen:             g,
		partitions:      *partitions,
		brokers:         cli.SplitList(*brokers),
		rate:            *rate,
		latencyRate:     *latencyRate,
		latencyDuration: *latencyDuration,
		stateGroups:     *stateGroups,
		timeout:         *timeout,
		json:            *jsonOut,
		cpuProfile:      *cpuProfile,
		logLevel:        *logLevel,
		brokerProcess:   *brokerProcess,
		serveKfake:      *serveKfake,
		broker:          *broker,
		kafkaImage:      *kafkaImage,
		rounds:          *rounds,
		compression:     *compression,
		peerJar:         *peerJar,
		peerIdle:        *peerIdle,
		keying:          keying,
	}
	var errs []error
	var err error
	for _, v := range cli.SplitList(*rawSplit) {
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("--raw-split: want client counts, got %q", v))
			continue
		}
		c.rawSplit = append(c.rawSplit, n)
	}
	if c.guarantees, err = parseGuarantees("guarantee", *guarantee); err != nil {
		errs = append(errs, err)
	}
	if c.peerGuarantees, err = parseGuarantees("peer-guarantee", *peerGuarantee); err != nil {
		errs = append(errs, err)
	}
	if err := c.validate(); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// benchReport is everything one bench run measured; --json prints it.
type benchReport struct {
	Machine machineInfo     `json:"machine"`
	Stream  streamInfo      `json:"stream"`
	Load    *loadReport     `json:"load,omitempty"`
	Phases  []phaseReport   `json:"phases,omitempty"`
	Latency []latencyReport `json:"latency,omitempty"`
	State   *stateReport    `json:"state,omitempty"`
	PeakRSS int64           `json:"peak_rss_bytes"`
	// BrokerPeakRSS is the child kfake process's peak RSS; 0 otherwise.
	BrokerPeakRSS int64 `json:"broker_peak_rss_bytes,omitempty"`
	// Summary has one row per phase: medians over the rounds.
	Summary  []summaryRow `json:"summary,omitempty"`
	Rounds   int          `json:"rounds,omitempty"`
	Warnings []string     `json:"warnings,omitempty"`
	// Failures are correctness failures (result rows that differ); any
	// makes the run exit non-zero. Slowness never does.
	Failures []string `json:"failures,omitempty"`
}

type machineInfo struct {
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	Broker     string `json:"broker"`
	// LoadAverage is the 1-minute load average when the run started: the
	// machine may be shared.
	LoadAverage string `json:"load_average"`
}

type streamInfo struct {
	Format       string  `json:"format"`
	Events       int     `json:"events"`
	Hosts        int     `json:"hosts"`
	Partitions   int     `json:"partitions"`
	Positives    int     `json:"positives"`
	SSH          int     `json:"ssh"`
	SSHDChildren int     `json:"sshd_children"`
	Bytes        int64   `json:"bytes"`
	AvgRecord    float64 `json:"avg_record_bytes"`
	Seed         uint64  `json:"seed"`
}

type loadReport struct {
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_sec"`
	MBPerSec     float64 `json:"mb_per_sec"`
}

// phaseReport is one consumer's pass over the loaded stream. Seconds runs
// from its first consumed record to its last; StartupSeconds (group join,
// state restore) is before that.
type phaseReport struct {
	Name           string  `json:"name"`
	Round          int     `json:"round"`
	Events         int64   `json:"events"`
	Bytes          int64   `json:"bytes"`
	StartupSeconds float64 `json:"startup_seconds"`
	Seconds        float64 `json:"seconds"`
	EventsPerSec   float64 `json:"events_per_sec"`
	MBPerSec       float64 `json:"mb_per_sec"`
	// CPUSeconds is the process's CPU time from the first record to the
	// last (the pass); CPUPerEvent divides it by the events.
	CPUSeconds  float64 `json:"cpu_seconds_pass"`
	CPUPerEvent float64 `json:"cpu_us_per_event"`
	// BrokerCPUSeconds is the broker process's CPU time in the pass, when
	// its process is on this host.
	BrokerCPUSeconds float64          `json:"broker_cpu_seconds_pass,omitempty"`
	AllocsPerEvent   float64          `json:"allocs_per_event"`
	BytesPerEvent    float64          `json:"alloc_bytes_per_event"`
	PeakRSS          int64            `json:"peak_rss_bytes"`
	PeakHeap         int64            `json:"peak_heap_bytes"`
	Results          map[string]int64 `json:"results,omitempty"`
	RecordsWritten   int64            `json:"records_written,omitempty"`
	// Rows is how many settled result rows the pass produced (checked
	// against the first pass and the generator).
	Rows int `json:"rows,omitempty"`
	// RowsDiffer: the rows were not those of the first pass.
	RowsDiffer   bool  `json:"rows_differ,omitempty"`
	DeadLettered int64 `json:"dead_lettered,omitempty"`
	// MachineBusy is the busy share of all cores during the phase, by any
	// process: the bench and its broker, and whatever else competed.
	MachineBusy float64 `json:"machine_busy"`
}

// latencyReport is the early-emission detection latency under steady load:
// from the produce call of a matching event to its EARLY risk record being
// readable on the output topic.
type latencyReport struct {
	Guarantee    string  `json:"guarantee"`
	TargetRate   float64 `json:"target_events_per_sec"`
	AchievedRate float64 `json:"achieved_events_per_sec"`
	Events       int     `json:"events"`
	Positives    int     `json:"positives"`
	Detected     int     `json:"detected"`
	P50ms        float64 `json:"p50_ms"`
	P99ms        float64 `json:"p99_ms"`
	Maxms        float64 `json:"max_ms"`
	ConsumedEnd  int64   `json:"consumed_at_end"`
	PeakRSS      int64   `json:"peak_rss_bytes"`
	MachineBusy  float64 `json:"machine_busy"`
}

// stateReport is the heap held per open group of a processor.Partition fed
// through the decoder, as a worker feeds it.
type stateReport struct {
	Groups        int     `json:"groups"`
	Hosts         int     `json:"hosts"`
	HeapBytes     int64   `json:"heap_bytes"`
	BytesPerGroup float64 `json:"bytes_per_group"`
	FieldBytes    float64 `json:"decoded_field_bytes_per_group"`
}

func cmdBench(ctx context.Context, e cli.Env, args []string) error {
	cfg, err := parseBenchFlags(e, args)
	if err != nil {
		return err
	}
	if cfg.serveKfake {
		return serveKfake(e)
	}
	rep, err := runBench(ctx, cfg, e.Stderr)
	if rep != nil {
		if cfg.json {
			enc := json.NewEncoder(e.Stdout)
			enc.SetIndent("", "  ")
			if jerr := enc.Encode(rep); jerr != nil && err == nil {
				err = jerr
			}
		} else {
			printBenchReport(e.Stdout, rep)
		}
	}
	return err
}

// runBench runs every phase cfg asks for; progress goes to logw. A partial
// report comes back with an error.
func runBench(ctx context.Context, cfg benchConfig, logw io.Writer) (*benchReport, error) {
	logger, err := cli.NewLogger(logw, "text", cfg.logLevel)
	if err != nil {
		return nil, err
	}
	progress := func(format string, args ...any) { fmt.Fprintf(logw, "bench: "+format+"\n", args...) }
	rep := &benchReport{Machine: machine()}
	if cfg.rate == 0 && cfg.stateGroups > 0 {
		// First, while nothing else lives in the heap.
		progress("state cost of %d open groups", cfg.stateGroups)
		st, err := measureStateCost(cfg.gen, cfg.stateGroups)
		if err != nil {
			return nil, err
		}
		rep.State = &st
	}
	brokers := cfg.brokers
	brokerPID := 0
	rep.Machine.Broker = "external " + strings.Join(brokers, ",")
	switch {
	case len(brokers) > 0:
	case cfg.broker == "kafka":
		b, err := startKafkaContainer(ctx, cfg.kafkaImage, logw)
		if err != nil {
			return nil, err
		}
		defer b.stop()
		brokers, brokerPID = b.addrs, b.pid
		rep.Machine.Broker = "kafka " + cfg.kafkaImage + " (container, host network)"
		defer func() { rep.BrokerPeakRSS = readVmHWM("/proc/" + strconv.Itoa(b.pid) + "/status") }()
	default:
		b, err := startKfake(ctx, cfg.brokerProcess == "child")
		if err != nil {
			return nil, err
		}
		defer b.stop()
		brokers = b.addrs
		if b.cmd != nil {
			brokerPID = b.cmd.Process.Pid
		}
		rep.Machine.Broker = "kfake, " + cfg.brokerProcess
		defer func() { rep.BrokerPeakRSS = b.peakRSS() }()
	}
	var idb [4]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return nil, err
	}
	h := &benchHarness{
		cfg:       cfg,
		brokers:   brokers,
		brokerPID: brokerPID,
		progress:  progress,
		prefix:    "sshlateral-bench-" + hex.EncodeToString(idb[:]),
		logger:    logger,
		rep:       rep,
	}
	defer h.cleanup()
	rep.Stream = streamInfo{Format: cfg.gen.Format, Events: cfg.gen.Events, Hosts: cfg.gen.Hosts,
		Partitions: cfg.partitions, Seed: cfg.gen.Seed}

	if cfg.rate > 0 {
		for _, g := range cfg.guarantees {
			progress("latency test, %s, %d events at %.0f events/s", g, cfg.gen.Events, cfg.rate)
			lr, err := h.latencyPhase(ctx, g, cfg.rate, cfg.gen.Events)
			if err != nil {
				return rep, err
			}
			rep.Latency = append(rep.Latency, lr)
		}
		rep.PeakRSS = peakRSS(false)
		return rep, nil
	}

	input := h.prefix + ".input"
	progress("generating and loading %d %s events into %d partitions", cfg.gen.Events, cfg.gen.Format, cfg.partitions)
	if err := h.createTopic(ctx, input, int32(cfg.partitions)); err != nil {
		return rep, err
	}
	load, err := h.load(ctx, input)
	if err != nil {
		return rep, err
	}
	rep.Load = &load
	rep.Rounds = cfg.rounds

	// The profile covers the consumers only, not generating and loading.
	stopProfile, err := startCPUProfile(cfg.cpuProfile)
	if err != nil {
		return rep, err
	}
	defer stopProfile()
	if err := h.throughputRounds(ctx, input); err != nil {
		return rep, err
	}
	stopProfile()
	// The loaded stream is no longer needed: free the broker's memory.
	h.deleteTopics(ctx)
	if cfg.latencyRate > 0 && cfg.latencyDuration > 0 {
		n := int(cfg.latencyRate * cfg.latencyDuration.Seconds())
		for _, g := range cfg.guarantees {
			progress("latency, %s, %d events at %.0f events/s", g, n, cfg.latencyRate)
			lr, err := h.latencyPhase(ctx, g, cfg.latencyRate, n)
			if err != nil {
				return rep, err
			}
			rep.Latency = append(rep.Latency, lr)
		}
	}
	rep.PeakRSS = peakRSS(false)
	if len(rep.Failures) > 0 {
		return rep, fmt.Errorf("%d correctness failures: %s", len(rep.Failures), strings.Join(rep.Failures, "; "))
	}
	return rep, nil
}

// startCPUProfile starts a CPU profile into path (none when empty); the
// returned stop may be called more than once.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
		})
	}, nil
}

// benchHarness holds what the phases share: brokers, topic names, the report.
type benchHarness struct {
	cfg     benchConfig
	brokers []string
	// brokerPID is the broker's process on this host (container or kfake
	// child), whose CPU the phases report; 0 when unknown.
	brokerPID int
	progress  func(format string, args ...any)
	// refRows are the settled result rows of the first pipeline pass;
	// every later pass, and the peer, must produce the same.
	refRows     []resultRow
	refRowsFrom string
	prefix      string
	logger      *slog.Logger
	rep         *benchReport
	topics      []string
}

func (h *benchHarness) admin() (*kadm.Client, func(), error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.brokers...))
	if err != nil {
		return nil, nil, fmt.Errorf("admin client: %w", err)
	}
	return kadm.NewClient(cl), cl.Close, nil
}

func (h *benchHarness) createTopic(ctx context.Context, topic string, partitions int32) error {
	adm, closeFn, err := h.admin()
	if err != nil {
		return err
	}
	defer closeFn()
	// Records may carry event times long past (the generated stream, the
	// peer's rows): time-based retention must not delete them mid-run.
	forever := "-1"
	resp, err := adm.CreateTopic(ctx, partitions, -1, map[string]*string{"retention.ms": &forever}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	h.topics = append(h.topics, topic)
	return nil
}

// cleanup deletes the topics of the run, which matters on a real cluster.
func (h *benchHarness) cleanup() {
	if len(h.cfg.brokers) > 0 {
		h.deleteTopics(context.Background())
	}
}

// deleteTopics deletes every topic the run created so far.
func (h *benchHarness) deleteTopics(ctx context.Context) {
	if len(h.topics) == 0 {
		return
	}
	h.withAdmin(ctx, func(ctx context.Context, adm *kadm.Client) {
		if _, err := adm.DeleteTopics(ctx, h.topics...); err != nil {
			h.logger.Warn("delete bench topics", "topics", h.topics, "err", err)
		}
	})
	h.topics = nil
}

// withAdmin calls fn with an admin client and a 30-second bound; cleanup
// work, so a client that cannot be made is skipped.
func (h *benchHarness) withAdmin(ctx context.Context, fn func(context.Context, *kadm.Client)) {
	adm, closeFn, err := h.admin()
	if err != nil {
		return
	}
	defer closeFn()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	fn(ctx, adm)
}

// load generates the stream and produces it, keyed by host and compressed
// as --compression says, as fast as the broker takes it, counting kinds and
// bytes into the report. Then one closing record per partition, far later in
// event time, closes every window, so that every group gets its settled row.
func (h *benchHarness) load(ctx context.Context, topic string) (loadReport, error) {
	gen, err := newGenerator(h.cfg.gen)
	if err != nil {
		return loadReport{}, err
	}
	codec, err := compressionCodec(h.cfg.compression)
	if err != nil {
		return loadReport{}, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.brokers...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(codec), kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(100000))
	if err != nil {
		return loadReport{}, fmt.Errorf("producer client: %w", err)
	}
	defer cl.Close()
	var (
		errOnce  sync.Once
		firstErr error
	)
	onAck := func(_ *kgo.Record, err error) {
		if err != nil {
			errOnce.Do(func() { firstErr = fmt.Errorf("produce to topic %s: %w", topic, err) })
		}
	}
	st := &h.rep.Stream
	start := time.Now()
	// Records keep their value until acknowledged, so each chunk is fresh.
	var buf []byte
	for i := 0; i < h.cfg.gen.Events; i++ {
		if cap(buf)-len(buf) < 64<<10 {
			buf = make([]byte, 0, 4<<20)
		}
		var rec genRecord
		buf, rec = gen.next(buf, i, time.Time{})
		buf = buf[len(buf):]
		countKind(st, rec.Kind)
		st.Bytes += int64(len(rec.Key) + len(rec.Value))
		cl.Produce(ctx, &kgo.Record{Key: rec.Key, Value: rec.Value}, onAck)
	}
	if err := cl.Flush(ctx); err != nil {
		return loadReport{}, fmt.Errorf("flush topic %s: %w", topic, err)
	}
	if firstErr != nil {
		return loadReport{}, firstErr
	}
	if err := h.produceClosers(ctx, gen, topic); err != nil {
		return loadReport{}, err
	}
	secs := time.Since(start).Seconds()
	st.AvgRecord = float64(st.Bytes) / float64(st.Events)
	return loadReport{Seconds: secs, EventsPerSec: float64(st.Events) / secs, MBPerSec: float64(st.Bytes) / secs / 1e6}, nil
}

func countKind(st *streamInfo, k recordKind) {
	switch k {
	case kindPositive:
		st.Positives++
		st.SSH++
	case kindSSH:
		st.SSH++
	case kindSSHDChild:
		st.SSHDChildren++
	}
}

// phaseMeter samples process-wide costs around a phase: CPU time,
// allocations, peak RSS and the live heap.
type phaseMeter struct {
	brokerPID      int
	passOnce       sync.Once
	passCPU0       time.Duration // at the first record
	passBroker0    time.Duration
	cpu0           time.Duration
	sys0           systemCPU
	mallocs0, tot0 uint64
	peakHeap       atomic.Int64
	stop           chan struct{}
	done           chan struct{}
}

func startMeter(brokerPID int) *phaseMeter {
	runtime.GC()
	peakRSS(true)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := &phaseMeter{brokerPID: brokerPID, cpu0: cpuTime(), sys0: readSystemCPU(), mallocs0: ms.Mallocs, tot0: ms.TotalAlloc,
		stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		// The heap in use, sampled: ReadMemStats stops the world, so
		// rarely.
		defer close(m.done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if v := int64(ms.HeapInuse); v > m.peakHeap.Load() {
				m.peakHeap.Store(v)
			}
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

// firstRecord marks the start of the pass; only the first call counts.
func (m *phaseMeter) firstRecord() {
	m.passOnce.Do(func() {
		m.passCPU0, m.passBroker0 = cpuTime(), processCPU(m.brokerPID)
	})
}

// finish ends the phase at its last record.
func (m *phaseMeter) finish(ph *phaseReport) {
	cpu, broker := cpuTime(), processCPU(m.brokerPID)
	m.firstRecord() // a phase without records has an empty pass
	close(m.stop)
	<-m.done
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	n := float64(max(ph.Events, 1))
	ph.CPUSeconds = (cpu - m.passCPU0).Seconds()
	ph.CPUPerEvent = float64(cpu-m.passCPU0) / float64(time.Microsecond) / n
	if m.brokerPID > 0 {
		ph.BrokerCPUSeconds = (broker - m.passBroker0).Seconds()
	}
	ph.AllocsPerEvent = float64(ms.Mallocs-m.mallocs0) / n
	ph.BytesPerEvent = float64(ms.TotalAlloc-m.tot0) / n
	ph.PeakRSS = peakRSS(false)
	ph.PeakHeap = m.peakHeap.Load()
	ph.MachineBusy = readSystemCPU().busySince(m.sys0)
}

// systemCPU is the machine's CPU time from /proc/stat, in clock ticks.
type systemCPU struct{ busy, total uint64 }

func readSystemCPU() systemCPU {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return systemCPU{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var s systemCPU
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		s.total += n
		if i != 3 && i != 4 { // idle, iowait
			s.busy += n
		}
	}
	return s
}

// busySince is the share of the machine's CPU time that was busy since
// start, whoever used it: with the bench alone it shows the bench's own load;
// much more than that means other work competed with the measurement.
func (s systemCPU) busySince(start systemCPU) float64 {
	if s.total <= start.total {
		return 0
	}
	return float64(s.busy-start.busy) / float64(s.total-start.total)
}

func setRates(ph *phaseReport, first, last time.Time) {
	ph.Seconds = last.Sub(first).Seconds()
	if ph.Seconds > 0 {
		ph.EventsPerSec = float64(ph.Events) / ph.Seconds
		ph.MBPerSec = float64(ph.Bytes) / ph.Seconds / 1e6
	}
}

// pipelineConfig is the configuration of one measured pipeline: defaults,
// as sshlateral run has them, with fresh names.
func (h *benchHarness) pipelineConfig(name, input string, g consumer.Guarantee) (consumer.Config, *producer.Encoder, error) {
	cfg := consumer.DefaultConfig()
	cfg.Brokers = h.brokers
	cfg.Group = h.prefix + "-" + name
	cfg.InputTopic = input
	cfg.OutputTopic = h.prefix + "." + name + ".risk"
	cfg.DLQTopic = h.prefix + "." + name + ".dlq"
	cfg.Guarantee = g
	cfg.InputKeying = h.cfg.keying
	cfg.Logger = h.logger
	var err error
	if cfg.Format, err = decode.ParseFormat(h.cfg.gen.Format); err != nil {
		return cfg, nil, err
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return cfg, nil, err
	}
	enc, err := producer.NewEncoder(producer.EncoderConfig{Topic: cfg.OutputTopic, Wire: producer.WirePlain})
	if err != nil {
		return cfg, nil, err
	}
	return cfg, enc, nil
}

func (h *benchHarness) ensureTopics(ctx context.Context, cfg consumer.Config) error {
	cl, err := kafkaclient.NewConfig(h.brokers).NewClient(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	topics := kafkaclient.PipelineTopics{Input: cfg.InputTopic, Output: cfg.OutputTopic, DLQ: cfg.DLQTopic}
	if !cfg.DisableChangelog {
		topics.Changelog = cfg.ChangelogTopic
	}
	if err := kafkaclient.EnsurePipelineTopics(ctx, cl, topics, int32(h.cfg.partitions)); err != nil {
		return err
	}
	if cfg.InputKeying == consumer.KeyingAny {
		if err := kafkaclient.EnsureTopics(ctx, cl, []kafkaclient.Topic{{Name: cfg.RepartitionTopic, Partitions: int32(h.cfg.partitions)}}); err != nil {
			return err
		}
		h.topics = append(h.topics, cfg.RepartitionTopic)
	}
	h.topics = append(h.topics, cfg.OutputTopic, cfg.DLQTopic)
	if !cfg.DisableChangelog {
		h.topics = append(h.topics, cfg.ChangelogTopic)
	}
	return nil
}

// runningPipeline is a pipeline started in the background.
type runningPipeline struct {
	p      *consumer.Pipeline
	cancel context.CancelFunc
	done   chan error
}

func startPipeline(ctx context.Context, cfg consumer.Config, enc consumer.Encoder) (*runningPipeline, error) {
	p, err := consumer.New(cfg, enc)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	rp := &runningPipeline{p: p, cancel: cancel, done: make(chan error, 1)}
	go func() { rp.done <- p.Run(runCtx) }()
	return rp, nil
}

// stop cancels the pipeline and returns its error; a clean stop is nil.
func (rp *runningPipeline) stop() error {
	rp.cancel()
	err := <-rp.done
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// pipelinePhase runs the full pipeline over the loaded topic with a fresh
// group until it has consumed every record.
func (h *benchHarness) pipelinePhase(ctx context.Context, input string, g consumer.Guarantee, round int) (phaseReport, error) {
	name := "alo"
	if g == consumer.ExactlyOnce {
		name = "eos"
	}
	name += "-r" + strconv.Itoa(round)
	ph := phaseReport{Name: pipelinePhaseName(g)}
	cfg, enc, err := h.pipelineConfig(name, input, g)
	if err != nil {
		return ph, err
	}
	if err := h.ensureTopics(ctx, cfg); err != nil {
		return ph, err
	}
	want := h.wantRecords()
	m := startMeter(h.brokerPID)
	begin := time.Now()
	pass := &passStart{topic: input, meter: m}
	cfg.ClientOpts = append(cfg.ClientOpts, kgo.WithHooks(pass))
	rp, err := startPipeline(ctx, cfg, enc)
	if err != nil {
		return ph, err
	}
	first, last, err := waitConsumed(ctx, rp, want, h.cfg.timeout, m.firstRecord)
	first = pass.first(first)
	if err != nil {
		stopErr := rp.stop()
		return ph, errors.Join(err, stopErr)
	}
	ph.Events = rp.p.Stats().Consumed
	m.finish(&ph)
	// Consumed counts records handed to the processor; the records it
	// caused are acknowledged before the worker takes its next batch, and
	// the stop below waits for them.
	if err := rp.stop(); err != nil {
		return ph, fmt.Errorf("%s: %w", ph.Name, err)
	}
	st := rp.p.Stats()
	ph.Bytes = h.rep.Stream.Bytes
	ph.StartupSeconds = first.Sub(begin).Seconds()
	ph.Results = st.Results
	ph.RecordsWritten = st.RecordsWritten
	ph.DeadLettered = cli.Sum(st.DeadLettered)
	setRates(&ph, first, last)
	rows, err := h.readRiskRows(ctx, cfg.OutputTopic)
	if err != nil {
		return ph, fmt.Errorf("%s: %w", ph.Name, err)
	}
	ph.Rows = len(rows)
	ph.RowsDiffer = !h.checkRows(ph.Name, rows)
	return ph, nil
}

// waitConsumed polls the pipeline's counters until it has consumed want
// records, returning when it consumed its first and its last.
func waitConsumed(ctx context.Context, rp *runningPipeline, want int64, timeout time.Duration, onFirst func()) (first, last time.Time, err error) {
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return first, last, ctx.Err()
		case err := <-rp.done:
			rp.done <- err // for stop
			return first, last, fmt.Errorf("pipeline stopped early: %w", err)
		case <-t.C:
		}
		n := rp.p.Stats().Consumed
		now := time.Now()
		if n > 0 && first.IsZero() {
			first = now
			onFirst()
		}
		if n >= want {
			return first, now, nil
		}
		if now.After(deadline) {
			return first, last, fmt.Errorf("pipeline consumed %d of %d records within %s", n, want, timeout)
		}
	}
}

// latencyPhase loads n fresh events at a steady rate into a new topic while
// a pipeline runs, and measures, for every matching event, the time from its
// produce call until its EARLY risk record can be read. The events are
// generated beforehand, their event times spread over the phase's wall time,
// so that generation does not compete with the pipeline.
func (h *benchHarness) latencyPhase(ctx context.Context, g consumer.Guarantee, rate float64, n int) (latencyReport, error) {
	lr := latencyReport{Guarantee: g.String(), TargetRate: rate, Events: n}
	name := "live-alo"
	if g == consumer.ExactlyOnce {
		name = "live-eos"
	}
	input := h.prefix + "." + name + ".input"
	if err := h.createTopic(ctx, input, int32(h.cfg.partitions)); err != nil {
		return lr, err
	}
	cfg, enc, err := h.pipelineConfig(name, input, g)
	if err != nil {
		return lr, err
	}
	if err := h.ensureTopics(ctx, cfg); err != nil {
		return lr, err
	}

	gcfg := h.cfg.gen
	gcfg.Events = n
	gcfg.Start = time.Now().UTC()
	gcfg.Span = time.Duration(float64(n) / rate * float64(time.Second))
	gen, err := newGenerator(gcfg)
	if err != nil {
		return lr, err
	}
	recs := make([]kgo.Record, n)
	// A latency-only run describes the stream it loads, once: every
	// guarantee loads the same one.
	describe := h.cfg.rate > 0 && h.rep.Stream.Bytes == 0
	positiveIndex := map[string]int{}
	positive := make([]bool, n)
	var buf []byte
	for i := range recs {
		if cap(buf)-len(buf) < 64<<10 {
			buf = make([]byte, 0, 4<<20)
		}
		var rec genRecord
		buf, rec = gen.next(buf, i, time.Time{})
		buf = buf[len(buf):]
		recs[i] = kgo.Record{Topic: input, Key: rec.Key, Value: rec.Value}
		if describe {
			countKind(&h.rep.Stream, rec.Kind)
			h.rep.Stream.Bytes += int64(len(rec.Key) + len(rec.Value))
		}
		if rec.Kind == kindPositive {
			positiveIndex[rec.Host+"/"+rec.PID] = i
			positive[i] = true
		}
	}
	lr.Positives = len(positiveIndex)
	if describe && h.rep.Stream.Events > 0 {
		h.rep.Stream.AvgRecord = float64(h.rep.Stream.Bytes) / float64(h.rep.Stream.Events)
	}
	producedAt := make([]atomic.Int64, n) // unix ns, positives only
	readAt := make([]atomic.Int64, n)
	var detected atomic.Int64

	ctx, cancel := context.WithTimeout(ctx, h.cfg.timeout)
	defer cancel()
	peakRSS(true)
	rp, err := startPipeline(ctx, cfg, enc)
	if err != nil {
		return lr, err
	}
	defer rp.stop()
	if err := waitAssigned(ctx, rp.p, h.cfg.partitions); err != nil {
		return lr, err
	}

	reader, err := kgo.NewClient(kgo.SeedBrokers(h.brokers...), kgo.ConsumeTopics(cfg.OutputTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return lr, fmt.Errorf("output reader: %w", err)
	}
	defer reader.Close()
	dec, err := producer.NewDecoder()
	if err != nil {
		return lr, err
	}
	readCtx, stopReading := context.WithCancel(ctx)
	readerDone := make(chan error, 1)
	go func() {
		readerDone <- readEarly(readCtx, reader, dec, func(key string, at time.Time) {
			if i, ok := positiveIndex[key]; ok && readAt[i].CompareAndSwap(0, at.UnixNano()) {
				detected.Add(1)
			}
		})
	}()
	// The reader's first fetch and the pipeline's first poll are in flight
	// before the load starts.
	time.Sleep(500 * time.Millisecond)

	loader, err := kgo.NewClient(kgo.SeedBrokers(h.brokers...), kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.MaxBufferedRecords(100000))
	if err != nil {
		stopReading()
		return lr, fmt.Errorf("producer client: %w", err)
	}
	defer loader.Close()
	var produceErr atomic.Pointer[error]
	onAck := func(_ *kgo.Record, err error) {
		if err != nil {
			produceErr.CompareAndSwap(nil, &err)
		}
	}
	sys0 := readSystemCPU()
	start := time.Now()
	for i := 0; i < n; {
		due := min(int(time.Since(start).Seconds()*rate)+1, n)
		for ; i < due; i++ {
			if positive[i] {
				producedAt[i].Store(time.Now().UnixNano())
			}
			loader.Produce(ctx, &recs[i], onAck)
		}
		if i < n {
			time.Sleep(200 * time.Microsecond)
		}
		if ctx.Err() != nil {
			break
		}
	}
	loadSecs := time.Since(start).Seconds()
	lr.AchievedRate = float64(n) / loadSecs
	if err := loader.Flush(ctx); err != nil {
		stopReading()
		return lr, fmt.Errorf("flush topic %s: %w", input, err)
	}
	if p := produceErr.Load(); p != nil {
		stopReading()
		return lr, fmt.Errorf("produce to topic %s: %w", input, *p)
	}
	// Wait for the stragglers: every positive detected, or a quiet spell.
	waitUntil := time.Now().Add(10 * time.Second)
	for detected.Load() < int64(lr.Positives) && time.Now().Before(waitUntil) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	lr.ConsumedEnd = rp.p.Stats().Consumed
	lr.MachineBusy = readSystemCPU().busySince(sys0)
	stopReading()
	if err := <-readerDone; err != nil {
		return lr, err
	}
	lr.PeakRSS = peakRSS(false)

	var lat []time.Duration
	for _, i := range positiveIndex {
		p, r := producedAt[i].Load(), readAt[i].Load()
		if p != 0 && r != 0 {
			lat = append(lat, time.Duration(r-p))
		}
	}
	lr.Detected = len(lat)
	if len(lat) > 0 {
		slices.Sort(lat)
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		lr.P50ms = ms(percentile(lat, 0.50))
		lr.P99ms = ms(percentile(lat, 0.99))
		lr.Maxms = ms(lat[len(lat)-1])
	}
	return lr, nil
}

// percentile returns the nearest-rank percentile q of sorted d.
func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	k := int(float64(len(d))*q+0.999999999) - 1
	return d[min(max(k, 0), len(d)-1)]
}

// waitAssigned waits until the pipeline owns every partition and has
// restored their state.
func waitAssigned(ctx context.Context, p *consumer.Pipeline, partitions int) error {
	deadline := time.Now().Add(60 * time.Second)
	running := func() int { // restored and fetching
		n := 0
		for _, ps := range p.Partitions() {
			if ps.State == consumer.StateRunning {
				n++
			}
		}
		return n
	}
	for running() < partitions {
		if time.Now().After(deadline) {
			return fmt.Errorf("pipeline runs %d of %d partitions after 60s", running(), partitions)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// readEarly reads risk records and calls seen with "dest/process_id" and
// the time each EARLY record was read.
func readEarly(ctx context.Context, cl *kgo.Client, dec *producer.Decoder, seen func(key string, at time.Time)) error {
	for {
		fetches := cl.PollFetches(ctx)
		at := time.Now()
		if ctx.Err() != nil {
			return nil
		}
		var derr error
		fetches.EachRecord(func(r *kgo.Record) {
			if !isEarly(r) || derr != nil {
				return
			}
			native, err := dec.Decode(r.Value)
			if err != nil {
				derr = fmt.Errorf("decode risk record at topic %s partition %d offset %d: %w", r.Topic, r.Partition, r.Offset, err)
				return
			}
			seen(nativeString(native["dest"])+"/"+nativeString(native["process_id"]), at)
		})
		if derr != nil {
			return derr
		}
	}
}

func isEarly(r *kgo.Record) bool {
	for _, h := range r.Headers {
		if h.Key == producer.HeaderEmission {
			return string(h.Value) == processor.EmissionEarly.String()
		}
	}
	return false
}

// nativeString reads a goavro string, bare or in a union.
func nativeString(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case map[string]any:
		if x, ok := s["string"].(string); ok {
			return x
		}
	}
	return ""
}

// measureStateCost fills a processor.Partition with groups open groups, fed
// by the decoder from generated matching records exactly as a worker feeds
// it, and returns the heap they hold.
func measureStateCost(gc genConfig, groups int) (stateReport, error) {
	gc.Events = groups
	gc.PositiveRate, gc.SSHRate = 1, 1
	gc.Span = 30 * time.Minute // inside one window: every group stays open
	gc.Start = time.Date(2025, 3, 10, 8, 0, 0, 0, time.UTC)
	gen, err := newGenerator(gc)
	if err != nil {
		return stateReport{}, err
	}
	format, err := decode.ParseFormat(gc.Format)
	if err != nil {
		return stateReport{}, err
	}
	dec, err := decode.NewDecoder(format)
	if err != nil {
		return stateReport{}, err
	}
	cfg := processor.DefaultConfig()
	cfg.MaxOpenGroups = groups + 1
	part, err := processor.NewPartition(cfg)
	if err != nil {
		return stateReport{}, err
	}
	var (
		ev      processor.Event
		results []processor.Result
		changes []processor.StateChange
		fields  int64
	)
	buf := make([]byte, 0, 64<<10)
	now := time.Now()
	// Warm every scratch buffer before the baseline.
	for i := 0; i < 64; i++ {
		buf, _ = gen.next(buf[:0], i, time.Time{})
	}
	results = make([]processor.Result, 0, 64)
	changes = make([]processor.StateChange, 0, 1024)
	before := liveHeap()
	for i := 0; i < groups; i++ {
		var rec genRecord
		buf, rec = gen.next(buf[:0], i, time.Time{})
		out, err := dec.Decode(rec.Value, &ev)
		if err != nil {
			return stateReport{}, fmt.Errorf("decode generated record %d: %w", i, err)
		}
		if out != decode.OutcomeEvent {
			return stateReport{}, fmt.Errorf("generated record %d: outcome %s, want event", i, out)
		}
		fields += int64(len(ev.Dest) + len(ev.User) + len(ev.Process) + len(ev.ProcessName) + len(ev.ProcessPath) +
			len(ev.ProcessID) + len(ev.ParentProcess) + len(ev.ParentProcessName) + len(ev.ParentProcessPath) +
			len(ev.ParentProcessID) + len(ev.OriginalFileName))
		results = part.Process(&ev, now, results[:0])
		if i%1000 == 999 {
			// A worker drains the changes after every batch.
			changes = part.DrainChanges(changes[:0])
			clear(changes)
		}
	}
	changes = part.DrainChanges(changes[:0])
	clear(changes)
	clear(results)
	ev = processor.Event{}
	after := liveHeap()
	st := part.Stats()
	runtime.KeepAlive(part)
	runtime.KeepAlive(dec)
	if st.OpenGroups != groups {
		return stateReport{}, fmt.Errorf("state cost: %d open groups, want %d", st.OpenGroups, groups)
	}
	return stateReport{
		Groups:        groups,
		Hosts:         st.OpenWindows,
		HeapBytes:     after - before,
		BytesPerGroup: float64(after-before) / float64(groups),
		FieldBytes:    float64(fields) / float64(groups),
	}, nil
}

func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// peakRSS returns the process's peak resident set (VmHWM) in bytes; reset
// first clears the peak so that the next reading covers only what follows
// (Linux clear_refs; where that fails the peak stays process-wide).
func peakRSS(reset bool) int64 {
	if reset {
		_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
		return 0
	}
	if v := readVmHWM("/proc/self/status"); v > 0 {
		return v
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		return ru.Maxrss << 10
	}
	return 0
}

// readVmHWM reads the peak RSS from a /proc status file; 0 if unknown.
func readVmHWM(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func machine() machineInfo {
	m := machineInfo{Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAverage, _, _ = strings.Cut(string(b), " ")
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return m
}

func printBenchReport(w io.Writer, r *benchReport) {
	mb := func(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
	fmt.Fprintf(w, "machine: %s, %d cores, GOMAXPROCS %d, %s, load average %s at start, broker %s\n", r.Machine.CPU, r.Machine.Cores,
		r.Machine.GOMAXPROCS, r.Machine.GoVersion, r.Machine.LoadAverage, r.Machine.Broker)
	s := r.Stream
	fmt.Fprintf(w, "stream: %d %s events (%.0f B avg, %.1f MB), %d hosts, %d partitions, %d ssh, %d matching, %d sshd children, seed %d\n",
		s.Events, s.Format, s.AvgRecord, float64(s.Bytes)/1e6, s.Hosts, s.Partitions, s.SSH, s.Positives, s.SSHDChildren, s.Seed)
	if r.Load != nil {
		fmt.Fprintf(w, "load: %.1fs, %.0f events/s, %.1f MB/s\n", r.Load.Seconds, r.Load.EventsPerSec, r.Load.MBPerSec)
	}
	if len(r.Phases) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "round\tphase\tevents/s\tMB/s\tseconds\tstartup s\tCPU s\tCPU µs/event\tbroker CPU s\tallocs/event\tB alloc/event\tpeak RSS\tpeak heap\tmachine busy\tresults\t")
		for _, p := range r.Phases {
			res := "-"
			if p.Results != nil {
				res = fmt.Sprintf("E%d F%d L%d rec%d", p.Results["EARLY"], p.Results["FINAL"], p.Results["LATE"], p.RecordsWritten)
			}
			if p.Rows > 0 {
				res += fmt.Sprintf(" rows%d", p.Rows)
			}
			fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.0f\t%s\t%s\t%.0f%%\t%s\t\n", p.Round, p.Name, p.EventsPerSec, p.MBPerSec,
				p.Seconds, p.StartupSeconds, p.CPUSeconds, p.CPUPerEvent, p.BrokerCPUSeconds, p.AllocsPerEvent, p.BytesPerEvent, mb(p.PeakRSS), mb(p.PeakHeap), 100*p.MachineBusy, res)
		}
		tw.Flush()
	}
	if len(r.Summary) > 0 {
		printSummary(w, r.Summary, r.Rounds)
	}
	if len(r.Latency) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "latency (produce -> EARLY readable)\ttarget ev/s\tachieved ev/s\tdetected\tp50 ms\tp99 ms\tmax ms\tpeak RSS\tmachine busy\t")
		for _, l := range r.Latency {
			fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%d/%d\t%.2f\t%.2f\t%.2f\t%s\t%.0f%%\t\n", l.Guarantee, l.TargetRate, l.AchievedRate,
				l.Detected, l.Positives, l.P50ms, l.P99ms, l.Maxms, mb(l.PeakRSS), 100*l.MachineBusy)
		}
		tw.Flush()
	}
	if r.State != nil {
		fmt.Fprintf(w, "\nstate: %d open groups on %d hosts hold %.1f MiB: %.0f bytes per open group (decoded fields %.0f bytes)\n",
			r.State.Groups, r.State.Hosts, float64(r.State.HeapBytes)/(1<<20), r.State.BytesPerGroup, r.State.FieldBytes)
	}
	fmt.Fprintf(w, "peak RSS of the whole run: %s", mb(r.PeakRSS))
	if r.BrokerPeakRSS > 0 {
		fmt.Fprintf(w, " (broker process: %s)", mb(r.BrokerPeakRSS))
	}
	fmt.Fprintln(w)
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "WARNING: %s\n", warn)
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "FAILURE: %s\n", f)
	}
}

// embeddedBroker is a kfake cluster on 127.0.0.1, here or in a child process.
type embeddedBroker struct {
	addrs   []string
	cluster *kfake.Cluster // in-process
	cmd     *exec.Cmd      // child
	stdin   io.WriteCloser
}

func startKfake(ctx context.Context, child bool) (*embeddedBroker, error) {
	if !child {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return nil, fmt.Errorf("start embedded kafka: %w", err)
		}
		return &embeddedBroker{addrs: cluster.ListenAddrs(), cluster: cluster}, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start embedded kafka: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe, "--serve-kfake")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start embedded kafka process: %w", err)
	}
	b := &embeddedBroker{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.stop()
		return nil, fmt.Errorf("embedded kafka process did not report its address: %w", err)
	}
	b.addrs = cli.SplitList(strings.TrimSpace(line))
	if len(b.addrs) == 0 {
		b.stop()
		return nil, fmt.Errorf("embedded kafka process reported no address: %q", line)
	}
	return b, nil
}

func (b *embeddedBroker) stop() {
	if b.cluster != nil {
		b.cluster.Close()
		return
	}
	b.stdin.Close()
	done := make(chan struct{})
	go func() { b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		b.cmd.Process.Kill()
		<-done
	}
}

// peakRSS is the child's VmHWM, or 0 for an in-process cluster.
func (b *embeddedBroker) peakRSS() int64 {
	if b.cmd == nil || b.cmd.Process == nil {
		return 0
	}
	return readVmHWM("/proc/" + strconv.Itoa(b.cmd.Process.Pid) + "/status")
}

// serveKfake is the child side of startKfake.
func serveKfake(e cli.Env) error {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return fmt.Errorf("start embedded kafka: %w", err)
	}
	defer cluster.Close()
	fmt.Fprintln(e.Stdout, strings.Join(cluster.ListenAddrs(), ","))
	_, err = io.Copy(io.Discard, e.Stdin)
	return err
}
