package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// alerts and replay against a broker nobody listens on, or with a wrong
// password, end with exit 1 and a message naming the brokers, within
// --connect-timeout, instead of waiting (replay) or printing nothing and
// exiting 0 (alerts).
func TestKafkaCommandsFailFast(t *testing.T) {
	sasl, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "svc", "right"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sasl.Close)
	saslBrokers := strings.Join(sasl.ListenAddrs(), ",")
	wrongPassword := []string{"--brokers", saslBrokers, "--sasl-mechanism", "scram-sha-256", "--sasl-username", "svc", "--sasl-password", "wrong"}
	unreachable := []string{"--brokers", "127.0.0.1:9"}
	cases := []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"alerts unreachable", append([]string{"alerts"}, unreachable...), "", "connect to brokers 127.0.0.1:9"},
		{"replay unreachable", append(append([]string{"replay"}, unreachable...), "-"), "a line\n", "connect to brokers 127.0.0.1:9"},
		{"alerts wrong password", append([]string{"alerts"}, wrongPassword...), "", "connect to brokers " + saslBrokers},
		{"replay wrong password", append(append([]string{"replay"}, wrongPassword...), "-"), "a line\n", "connect to brokers " + saslBrokers},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			code, stdout, stderr := runCLI(t, tc.stdin, append(tc.args, "--connect-timeout", "2s")...)
			if took := time.Since(start); took > 20*time.Second {
				t.Errorf("took %s with --connect-timeout 2s", took)
			}
			if code != 1 || stdout != "" || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1 and %q", code, stdout, stderr, tc.want)
			}
		})
	}
}

// demo runs the whole pipeline on its embedded cluster and prints the
// sample's risk records, two per result, through the shared printer.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a pipeline on kfake")
	}
	code, stdout, stderr := runCLI(t, "", "demo", "--timeout", "60s")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Count(stdout, "\n")
	if lines == 0 || lines%2 != 0 || strings.Count(stdout, `"risk_object_type":"system"`) != lines/2 {
		t.Fatalf("%d risk records, want a positive even number, half of them system records:\n%s", lines, stdout)
	}
	if !strings.Contains(stderr, "summary: ") || !strings.Contains(stderr, "dead-lettered 1") {
		t.Errorf("summary missing or the malformed sample line not dead-lettered: %s", stderr)
	}
}

// A broker that accepts the connection but never answers: the commands give
// up after --connect-timeout.
func TestKafkaCommandsTimeOutOnSilentBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() }) // held open, never answered
		}
	}()
	start := time.Now()
	code, _, stderr := runCLI(t, "", "alerts", "--brokers", ln.Addr().String(), "--connect-timeout", "1s")
	took := time.Since(start)
	if code != 1 || !strings.Contains(stderr, "no answer within --connect-timeout 1s") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if took < time.Second || took > 15*time.Second {
		t.Errorf("gave up after %s, want about --connect-timeout 1s", took)
	}
}

// alerts reads fetch errors: a user without read access to the topic gets
// exit 1 and the broker's reason, not silence.
func TestAlertsReportsFetchErrors(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser("SCRAM-SHA-256", "admin", "admin"),
		// The user may see the topic (metadata) but not read it (fetch).
		kfake.User("SCRAM-SHA-256", "reader", "pw", kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: "sshlateral.risk",
			Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationDescribe, Allow: true}),
		kfake.SeedTopics(1, "sshlateral.risk"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	done := make(chan struct{})
	var code int
	var stderr string
	go func() {
		defer close(done)
		code, _, stderr = runCLI(t, "", "alerts", "--brokers", strings.Join(c.ListenAddrs(), ","),
			"--sasl-mechanism", "scram-sha-256", "--sasl-username", "reader", "--sasl-password", "pw")
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("alerts kept running without access to its topic")
	}
	if code != 1 || !strings.Contains(stderr, "fetch topic sshlateral.risk") || !strings.Contains(stderr, "TOPIC_AUTHORIZATION_FAILED") {
		t.Fatalf("exit %d, stderr %q; want exit 1 and an authorization error naming the topic", code, stderr)
	}
}

// alerts on a topic that does not exist says so instead of waiting in
// silence.
func TestAlertsSaysTopicIsMissing(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	code, stdout, stderr := runCLI(t, "", "alerts", "--brokers", strings.Join(c.ListenAddrs(), ","), "--topic", "nope", "--idle-exit", "500ms")
	if code != 0 || stdout != "" || !strings.Contains(stderr, "topic nope does not exist (yet)") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
