package processor

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
		want   []string // substrings of the error; none means valid
	}{
		{"default", func(*Config) {}, nil},
		{"zero window", func(c *Config) { c.Window = 0 }, []string{"Window: must be positive, got 0s"}},
		{"negative window", func(c *Config) { c.Window = -time.Minute }, []string{"Window: must be positive, got -1m0s"}},
		{"huge window", func(c *Config) { c.Window = 400 * 24 * time.Hour; c.Offset = 0 }, []string{"Window: must be at most 8784h0m0s"}},
		{"sub-millisecond window", func(c *Config) { c.Window = time.Hour + time.Microsecond }, []string{"Window: must be a whole number of milliseconds"}},
		{"offset equal to window", func(c *Config) { c.Offset = time.Hour }, []string{"Offset: must be less than Window (1h0m0s), got 1h0m0s"}},
		{"negative offset", func(c *Config) { c.Offset = -time.Second }, []string{"Offset: must not be negative, got -1s"}},
		{"sub-millisecond offset", func(c *Config) { c.Offset = time.Microsecond }, []string{"Offset: must be a whole number of milliseconds"}},
		{"zero offset", func(c *Config) { c.Offset = 0 }, nil},
		{"negative grace", func(c *Config) { c.Grace = -time.Minute }, []string{"Grace: must not be negative, got -1m0s"}},
		{"zero grace", func(c *Config) { c.Grace = 0 }, nil},
		{"huge grace", func(c *Config) { c.Grace = 400 * 24 * time.Hour }, []string{"Grace: must be at most"}},
		{"negative idle close", func(c *Config) { c.IdleClose = -1 }, []string{"IdleClose: must not be negative"}},
		{"idle close disabled", func(c *Config) { c.IdleClose = 0 }, nil},
		{"bad emit", func(c *Config) { c.Emit = 9 }, []string{"Emit: must be early or final, got EmitMode(9)"}},
		{"bad match", func(c *Config) { c.Match = 9 }, []string{"Match: must be escu or robust, got MatchMode(9)"}},
		{"zero max open groups", func(c *Config) { c.MaxOpenGroups = 0 }, []string{"MaxOpenGroups: must be positive, got 0"}},
		{"every error at once", func(c *Config) { c.Window = 0; c.Grace = -1; c.MaxOpenGroups = -1 },
			[]string{"Window: must be positive", "Grace: must not be negative", "MaxOpenGroups: must be positive"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			c.mutate(&cfg)
			err := cfg.Validate()
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				if _, err := NewPartition(cfg); err != nil {
					t.Fatalf("NewPartition: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
			if _, perr := NewPartition(cfg); perr == nil {
				t.Error("NewPartition accepted an invalid config")
			}
		})
	}
}

func TestDefaultConfigIsESCUSchedule(t *testing.T) {
	c := DefaultConfig()
	if c.Window != time.Hour || c.Offset != 50*time.Minute || c.Grace != 10*time.Minute ||
		c.IdleClose != time.Minute || c.Emit != EmitEarly || c.Match != MatchESCU || c.MaxOpenGroups != 100000 {
		t.Errorf("DefaultConfig() = %+v", c)
	}
}
