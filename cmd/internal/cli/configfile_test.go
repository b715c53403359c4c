package cli

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sshlateral/sshlateral/cmd/internal/clitest"
)

// configTestFlags is a small flag set with the kinds of flags run has.
type configTestFlags struct {
	fs                *flag.FlagSet
	group, brokers    string
	config            string
	session           time.Duration
	partitions        int
	tls, createTopics bool
}

func newConfigTestFlags() *configTestFlags {
	c := &configTestFlags{fs: flag.NewFlagSet("run", flag.ContinueOnError)}
	c.fs.StringVar(&c.group, "group", "sshlateral", "")
	c.fs.StringVar(&c.brokers, "brokers", "", "")
	c.fs.DurationVar(&c.session, "session-timeout", 45*time.Second, "")
	c.fs.IntVar(&c.partitions, "partitions", 12, "")
	c.fs.BoolVar(&c.tls, "tls", false, "")
	c.fs.BoolVar(&c.createTopics, "create-topics", false, "")
	c.fs.StringVar(&c.config, ConfigFlagName, "", "")
	return c
}

func TestConfigPrecedence(t *testing.T) {
	file := clitest.WriteFile(t, "sshlateral.yaml", `
group: from-file
brokers: [k1:9092, "k2:9092"]
session-timeout: 30s
partitions: 24
tls: true
create-topics: ~   # null leaves the default
`)
	cases := []struct {
		name        string
		args        []string
		env         map[string]string
		wantGroup   string
		wantBrokers string
		wantSession time.Duration
		wantParts   int
		wantTLS     bool
	}{
		{"defaults without file", nil, nil, "sshlateral", "", 45 * time.Second, 12, false},
		{"file beats defaults", []string{"--config", file}, nil, "from-file", "k1:9092,k2:9092", 30 * time.Second, 24, true},
		{"file named by environment", nil, map[string]string{"SSHLATERAL_CONFIG": file}, "from-file", "k1:9092,k2:9092", 30 * time.Second, 24, true},
		{"environment beats file", []string{"--config", file},
			map[string]string{"SSHLATERAL_GROUP": "from-env", "SSHLATERAL_SESSION_TIMEOUT": "20s", "SSHLATERAL_TLS": "false"},
			"from-env", "k1:9092,k2:9092", 20 * time.Second, 24, false},
		{"flag beats environment and file", []string{"--config", file, "--group", "from-flag", "--partitions=6"},
			map[string]string{"SSHLATERAL_GROUP": "from-env", "SSHLATERAL_PARTITIONS": "8"},
			"from-flag", "k1:9092,k2:9092", 30 * time.Second, 6, true},
		{"flag beats default when the file is silent", []string{"--config", clitest.WriteFile(t, "sshlateral.yaml", "group: g\n"), "--session-timeout", "10s"}, nil,
			"g", "", 10 * time.Second, 12, false},
		{"empty file", []string{"--config", clitest.WriteFile(t, "sshlateral.yaml", "")}, nil, "sshlateral", "", 45 * time.Second, 12, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newConfigTestFlags()
			e := Env{Getenv: clitest.Getenv(tc.env), Stderr: io.Discard}
			if err := ParseFlagsWithConfig(c.fs, e, tc.args, &c.config); err != nil {
				t.Fatal(err)
			}
			if c.group != tc.wantGroup || c.brokers != tc.wantBrokers || c.session != tc.wantSession || c.partitions != tc.wantParts || c.tls != tc.wantTLS || c.createTopics {
				t.Fatalf("group %q brokers %q session %s partitions %d tls %v create-topics %v; want %q %q %s %d %v false",
					c.group, c.brokers, c.session, c.partitions, c.tls, c.createTopics,
					tc.wantGroup, tc.wantBrokers, tc.wantSession, tc.wantParts, tc.wantTLS)
			}
		})
	}
}

func TestConfigFileErrors(t *testing.T) {
	cases := []struct {
		name, content string
		want          []string
	}{
		{"unknown key", "group: g\nbrokres: k:9092\n", []string{"line 2", `unknown key "brokres"`}},
		{"bad duration", "session-timeout: soon\n", []string{"--session-timeout", "line 1", `"soon"`}},
		{"bad int", "partitions: many\n", []string{"--partitions", `"many"`}},
		{"bad bool", "tls: maybe\n", []string{"--tls", `"maybe"`}},
		{"nested config", "config: other.yaml\n", []string{"cannot name another"}},
		{"not a mapping", "- group\n", []string{"want a mapping"}},
		{"mapping value", "group:\n  name: g\n", []string{`key "group"`, "scalar or a list"}},
		{"duplicate key", "group: a\ngroup: b\n", []string{`key "group" already given on line 1`}},
		{"invalid yaml", "group: [\n", []string{"parse YAML"}},
		{"every error reported", "partitions: x\ntls: y\n", []string{"--partitions", "--tls"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newConfigTestFlags()
			path := clitest.WriteFile(t, "sshlateral.yaml", tc.content)
			err := ParseFlagsWithConfig(c.fs, Env{Getenv: clitest.Getenv(nil), Stderr: io.Discard}, []string{"--config", path}, &c.config)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		c := newConfigTestFlags()
		err := ParseFlagsWithConfig(c.fs, Env{Getenv: clitest.Getenv(nil), Stderr: io.Discard}, []string{"--config", "/nonexistent/x.yaml"}, &c.config)
		if err == nil || !strings.HasPrefix(err.Error(), "--config") {
			t.Fatalf("error %v, want one starting with --config", err)
		}
	})
}
