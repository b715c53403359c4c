package consumer

import (
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/sshlateral/sshlateral/consumer/decode"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.Brokers = []string{"127.0.0.1:9092"}
		return c.WithDefaults()
	}
	cases := []struct {
		name    string
		mutate  func(*Config)
		wantErr []string // substrings; empty means valid
	}{
		{"defaults with brokers", func(*Config) {}, nil},
		{"no brokers", func(c *Config) { c.Brokers = nil }, []string{"Brokers: at least one"}},
		{"blank broker", func(c *Config) { c.Brokers = []string{"a:1", " "} }, []string{"Brokers: empty broker"}},
		{"no group", func(c *Config) { c.Group = "" }, []string{"Group: required"}},
		{"output equals input", func(c *Config) { c.OutputTopic = c.InputTopic }, []string{"OutputTopic: topic", "also InputTopic"}},
		{"dlq equals output", func(c *Config) { c.DLQTopic = c.OutputTopic }, []string{"DLQTopic: topic"}},
		{"session timeout too small", func(c *Config) { c.SessionTimeout = time.Second }, []string{"SessionTimeout: must be at least 6s"}},
		{"heartbeat not below session", func(c *Config) { c.HeartbeatInterval = c.SessionTimeout }, []string{"HeartbeatInterval: must be positive and below SessionTimeout"}},
		{"bad envelope field", func(c *Config) { c.EnvelopeField = "a..b" }, []string{"EnvelopeField: invalid envelope field path"}},
		{"auditd with any keying", func(c *Config) {
			c.Format, c.InputKeying = decode.FormatAuditd, KeyingAny
		}, []string{"InputKeying: raw auditd input must be keyed by node"}},
		{"rebalance timeout zero", func(c *Config) { c.RebalanceTimeout = 0 }, []string{"RebalanceTimeout: must be positive"}},
		{"transaction timeout above session", func(c *Config) {
			c.Guarantee, c.TransactionTimeout = ExactlyOnce, time.Minute
		}, []string{"TransactionTimeout: must be positive"}},
		{"exactly-once without changelog", func(c *Config) {
			c.Guarantee, c.DisableChangelog = ExactlyOnce, true
		}, []string{"DisableChangelog: exactly-once needs the changelog"}},
		{"several problems at once", func(c *Config) {
			c.MaxPollRecords, c.TickInterval = 0, 0
		}, []string{"MaxPollRecords: must be positive", "TickInterval: must be positive"}},
		{"processor config checked", func(c *Config) { c.Processor.Window = 0 }, []string{"Processor.Window: must be positive"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mutate(&c)
			err := c.Validate()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error naming %v", tc.wantErr)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestParseGuarantee(t *testing.T) {
	for in, want := range map[string]Guarantee{"at-least-once": AtLeastOnce, "EXACTLY-ONCE": ExactlyOnce, "eos": ExactlyOnce} {
		if got, err := ParseGuarantee(in); err != nil || got != want {
			t.Errorf("ParseGuarantee(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseGuarantee("maybe"); err == nil || !strings.Contains(err.Error(), "unknown guarantee") {
		t.Errorf("bad value: %v", err)
	}
}

// Validate changes nothing; the derived defaults come from WithDefaults, and
// a config without them is reported, not repaired.
func TestValidateHasNoSideEffects(t *testing.T) {
	c := DefaultConfig()
	c.Brokers = []string{"127.0.0.1:9092"}
	err := c.Validate()
	if c.ChangelogTopic != "" || c.Logger != nil {
		t.Fatalf("Validate changed the config: changelog %q, logger %v", c.ChangelogTopic, c.Logger)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "ChangelogTopic" {
		t.Fatalf("Validate() = %v, want a FieldError for ChangelogTopic", err)
	}
	d := c.WithDefaults()
	if d.ChangelogTopic != "sshlateral.state-changelog" || d.Logger == nil {
		t.Fatalf("WithDefaults: changelog %q, logger %v", d.ChangelogTopic, d.Logger)
	}
	if err := d.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	c.DisableChangelog = true
	if c.WithDefaults().ChangelogTopic != "" {
		t.Error("a changelog topic was named with the changelog disabled")
	}
}

func TestGuaranteeFlagValue(t *testing.T) {
	var g Guarantee
	var v flag.Value = &g
	if err := v.Set("exactly-once"); err != nil || g != ExactlyOnce || v.String() != "exactly-once" {
		t.Fatalf("Set(exactly-once): %v, %v", g, err)
	}
	if err := v.Set("maybe"); err == nil || g != ExactlyOnce {
		t.Fatalf("Set(maybe) = %v, left %v", err, g)
	}
}
