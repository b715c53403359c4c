package consumer

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.Brokers = []string{"127.0.0.1:9092"}
		return c
	}
	cases := []struct {
		name    string
		mutate  func(*Config)
		wantErr []string // substrings; empty means valid
	}{
		{"defaults with brokers", func(*Config) {}, nil},
		{"no brokers", func(c *Config) { c.Brokers = nil }, []string{"--brokers"}},
		{"blank broker", func(c *Config) { c.Brokers = []string{"a:1", " "} }, []string{"--brokers: empty broker"}},
		{"no group", func(c *Config) { c.Group = "" }, []string{"--group"}},
		{"output equals input", func(c *Config) { c.OutputTopic = c.InputTopic }, []string{"--output-topic", "also --input-topic"}},
		{"dlq equals output", func(c *Config) { c.DLQTopic = c.OutputTopic }, []string{"--dlq-topic"}},
		{"session timeout too small", func(c *Config) { c.SessionTimeout = time.Second }, []string{"--session-timeout"}},
		{"transaction timeout above session", func(c *Config) {
			c.Guarantee, c.TransactionTimeout = ExactlyOnce, time.Minute
		}, []string{"--transaction-timeout"}},
		{"exactly-once without changelog", func(c *Config) {
			c.Guarantee, c.DisableChangelog = ExactlyOnce, true
		}, []string{"needs the changelog"}},
		{"several problems at once", func(c *Config) {
			c.MaxPollRecords, c.TickInterval = 0, 0
		}, []string{"--max-poll-records", "--tick-interval"}},
		{"processor config checked", func(c *Config) { c.Processor.Window = 0 }, []string{"window"}},
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
				if c.ChangelogTopic != c.Group+".state-changelog" {
					t.Errorf("changelog topic default %q", c.ChangelogTopic)
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
	if _, err := ParseGuarantee("maybe"); err == nil || !strings.Contains(err.Error(), "--guarantee") {
		t.Errorf("bad value: %v", err)
	}
}
