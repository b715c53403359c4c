package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/sshlateral/sshlateral/integration/kafkaimage"
	"github.com/testcontainers/testcontainers-go"
)

// defaultKafkaImage is the official image of the broker version the
// acceptance suite runs; integration/kafkaimage/build.sh builds the same
// broker without a registry (pass its tag as --kafka-image).
const defaultKafkaImage = "apache/kafka:4.3.1"

// containerLabel marks the bench's broker container. It is not the
// acceptance suite's label (org.sshlateral.test), whose leftovers a starting
// test run removes: on a shared machine that would remove a running bench's
// broker too.
const containerLabel = "org.sshlateral.bench"

// containerBroker is a single-node KRaft broker in a container on the host
// network, as the acceptance suite starts it.
type containerBroker struct {
	ctr   *testcontainers.DockerContainer
	addrs []string
	pid   int // the broker's process id on this host; 0 if unknown
}

// startKafkaContainer starts image on a free 127.0.0.1 port and waits until
// it answers metadata requests.
func startKafkaContainer(ctx context.Context, image string, logw io.Writer) (*containerBroker, error) {
	// The reaper container comes from a registry this machine may not reach;
	// the container is terminated on every return path and labelled instead.
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	ports, err := freeLoopbackPorts(2)
	if err != nil {
		return nil, err
	}
	seed := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	controller := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
	// Variable names of the official image (KIP-975); kafkaimage reads the same.
	env := kafkaimage.Env(seed, controller)

	start := time.Now()
	ctr, err := testcontainers.Run(ctx, image,
		testcontainers.WithEnv(env),
		testcontainers.WithLabels(map[string]string{containerLabel: "1"}),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) { hc.NetworkMode = "host" }),
	)
	b := &containerBroker{ctr: ctr, addrs: []string{seed}}
	if err != nil {
		b.stop()
		return nil, fmt.Errorf("start kafka container from image %q on %s: %w "+
			"(without a registry, build the image with integration/kafkaimage/build.sh and pass its tag as --kafka-image)", image, seed, err)
	}
	if err := waitKafkaReady(ctx, ctr, seed, 3*time.Minute); err != nil {
		b.stop()
		return nil, err
	}
	if info, err := ctr.Inspect(ctx); err == nil && info.State != nil {
		b.pid = info.State.Pid
	}
	fmt.Fprintf(logw, "bench: kafka from %s ready on %s in %s\n", image, seed, time.Since(start).Round(time.Millisecond))
	return b, nil
}

func (b *containerBroker) stop() {
	if b.ctr == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = b.ctr.Terminate(ctx)
}

// waitKafkaReady waits for the broker the bench started to answer.
func waitKafkaReady(ctx context.Context, ctr *testcontainers.DockerContainer, seed string, timeout time.Duration) error {
	return kafkaimage.WaitReady(ctx, seed, timeout, func(ctx context.Context) error {
		state, err := ctr.State(ctx)
		if err != nil {
			return fmt.Errorf("kafka container state: %w", err)
		}
		if !state.Running {
			return fmt.Errorf("kafka container is %s (exit code %d)", state.Status, state.ExitCode)
		}
		return nil
	})
}

func freeLoopbackPorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free loopback port: %w", err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// processCPU is the user+system CPU time of process pid so far, from
// /proc/pid/stat; 0 when unknown. Clock ticks are assumed at 100 Hz, as on
// every Linux build the bench runs on.
func processCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name may hold spaces; the fields follow its closing ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	// utime and stime are fields 14 and 15 of stat, 12 and 13 after ')'.
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(ut+st) * 10 * time.Millisecond
}
