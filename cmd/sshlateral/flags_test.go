package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sshlateral/sshlateral/cmd/internal/cli"
	"github.com/sshlateral/sshlateral/cmd/internal/clitest"
	"github.com/sshlateral/sshlateral/cmd/internal/kafkaclient"
	"github.com/sshlateral/sshlateral/cmd/sshlateral/internal/allowlist"
	"github.com/sshlateral/sshlateral/processor"
)

// cmdRun rejects invalid values before it connects anywhere, naming each
// flag, whichever layer the value came from.
func TestRunRejectsInvalidValues(t *testing.T) {
	badFilter := filepath.Join(t.TempDir(), "allow.yaml")
	if err := os.WriteFile(badFilter, []byte("rules:\n  - name: empty\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"config file values", []string{"run", "--config", clitest.WriteFile(t, "sshlateral.yaml", "brokers: 127.0.0.1:1\nsession-timeout: 1s\ntls-cert: c.pem\nready-max-lag: -1\n")}, nil,
			[]string{"--session-timeout", "--tls-cert", "--ready-max-lag"}},
		{"environment values", []string{"run"}, map[string]string{"SSHLATERAL_BROKERS": "127.0.0.1:1", "SSHLATERAL_SASL_MECHANISM": "gssapi", "SSHLATERAL_FILTER_POLL_INTERVAL": "-1s"},
			[]string{"--sasl-mechanism", `"gssapi"`, "--filter-poll-interval"}},
		{"flag values", []string{"run", "--brokers", "127.0.0.1:1", "--sasl-mechanism", "plain", "--sasl-username", "u", "--pprof", "--http-addr", ""}, nil,
			[]string{"--sasl-password", "--sasl-mechanism plain", "--pprof"}},
		{"missing brokers", []string{"run", "--http-addr", "nonsense"}, nil, []string{"--brokers", "--http-addr"}},
		{"invalid allowlist", []string{"run", "--brokers", "127.0.0.1:1", "--filter", badFilter}, nil, []string{"--filter " + badFilter, "no condition"}},
		{"unknown config key", []string{"run", "--config", clitest.WriteFile(t, "sshlateral.yaml", "brokerz: x\n")}, nil, []string{"--config", `"brokerz"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(context.Background(), tc.args, clitest.Getenv(tc.env), strings.NewReader(""), io.Discard, &stderr)
			if code != 1 {
				t.Fatalf("exit code %d, want 1; stderr:\n%s", code, stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr does not contain %q:\n%s", w, stderr.String())
				}
			}
		})
	}
}

// yamlBlock returns the first ```yaml block of a document that starts with
// prefix.
func yamlBlock(t *testing.T, doc, prefix string) string {
	t.Helper()
	for _, block := range strings.Split(doc, "```yaml\n")[1:] {
		body, _, ok := strings.Cut(block, "```")
		if ok && strings.HasPrefix(body, prefix) {
			return body
		}
	}
	t.Fatalf("no yaml block starting with %q", prefix)
	return ""
}

// The examples in docs/operations.md must load.
func TestOperationsDocExamples(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	t.Run("config file", func(t *testing.T) {
		// Every key must be a flag of run, with a value it accepts.
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		kafkaclient.AddFlags(fs)
		addPipelineFlags(fs, processor.EmitEarly)
		addOpsFlags(fs)
		var config string
		fs.StringVar(&config, cli.ConfigFlagName, "", "")
		path := clitest.WriteFile(t, "sshlateral.yaml", yamlBlock(t, doc, "# /etc/sshlateral/config.yaml"))
		if err := cli.ParseFlagsWithConfig(fs, cli.Env{Getenv: clitest.Getenv(nil), Stderr: io.Discard}, []string{"--config", path}, &config); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("allowlist", func(t *testing.T) {
		f, err := allowlist.Parse("filter.yaml", []byte(yamlBlock(t, doc, "rules:")))
		if err != nil {
			t.Fatal(err)
		}
		if f.Len() < 4 {
			t.Fatalf("%d rules", f.Len())
		}
	})
}

// addPipelineFlags registers --emit with the default it is given, and
// --no-prefilter turns the consumer's prefilter off.
func TestPipelineFlags(t *testing.T) {
	cases := []struct {
		name          string
		defaultEmit   processor.EmitMode
		args          []string
		wantEmit      processor.EmitMode
		wantPrefilter bool
	}{
		{"early default", processor.EmitEarly, nil, processor.EmitEarly, true},
		{"final default", processor.EmitFinal, nil, processor.EmitFinal, true},
		{"flag wins over the default", processor.EmitFinal, []string{"--emit", "early"}, processor.EmitEarly, true},
		{"no prefilter", processor.EmitEarly, []string{"--no-prefilter"}, processor.EmitEarly, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("run", flag.ContinueOnError)
			pf := addPipelineFlags(fs, tc.defaultEmit)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			cfg, err := pf.config([]string{"127.0.0.1:9092"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Processor.Emit != tc.wantEmit || cfg.Prefilter != tc.wantPrefilter {
				t.Fatalf("emit %v prefilter %v, want %v %v", cfg.Processor.Emit, cfg.Prefilter, tc.wantEmit, tc.wantPrefilter)
			}
			if got := fs.Lookup("emit").DefValue; got != tc.defaultEmit.String() {
				t.Errorf("--emit shows default %q, want %q", got, tc.defaultEmit)
			}
		})
	}
}

// Invalid values are reported under the flag the user typed, not the Go
// field the library checks.
func TestConfigErrorsNameFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want []string
		not  []string
	}{
		{"window", []string{"--window", "0s"}, []string{"--window: must be positive"}, []string{"Processor.Window"}},
		{"window offset", []string{"--window-offset", "2h"}, []string{"--window-offset: must be less than"}, []string{"--offset:"}},
		{"session timeout", []string{"--session-timeout", "1s"}, []string{"--session-timeout: must be at least 6s"}, []string{"SessionTimeout:"}},
		{"heartbeat interval", []string{"--heartbeat-interval", "50s"}, []string{"--heartbeat-interval: must be positive and below SessionTimeout"}, []string{"HeartbeatInterval:"}},
		{"same topics", []string{"--dlq-topic", "endpoint.processes"}, []string{"--dlq-topic: topic"}, nil},
		{"several", []string{"--grace", "-1m", "--max-open-groups", "0"}, []string{"--grace:", "--max-open-groups:"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("run", flag.ContinueOnError)
			pf := addPipelineFlags(fs, processor.EmitEarly)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			_, err := pf.config([]string{"127.0.0.1:9092"}, nil)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(err.Error(), n) {
					t.Errorf("error %q contains %q", err, n)
				}
			}
		})
	}
}

// Every field the map names is a flag of run.
func TestFlagNamesExist(t *testing.T) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	kafkaclient.AddFlags(fs)
	addPipelineFlags(fs, processor.EmitEarly)
	for field, name := range flagNames {
		if fs.Lookup(name) == nil {
			t.Errorf("field %s maps to --%s, which run does not have", field, name)
		}
	}
}

// --schema-id is a signed 32-bit registry id: values beyond are rejected,
// not wrapped (4294967297 used to be written as 1).
func TestSchemaIDRange(t *testing.T) {
	for _, v := range []string{"4294967297", "2147483648", "-1"} {
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		of := addOutputFlags(fs)
		if err := fs.Parse([]string{"--wire-format", "confluent", "--schema-id", v}); err != nil {
			t.Fatal(err)
		}
		if _, err := of.encoder("risk"); err == nil || !strings.Contains(err.Error(), "--schema-id") {
			t.Errorf("--schema-id %s: error %v, want one naming --schema-id", v, err)
		}
	}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	of := addOutputFlags(fs)
	if err := fs.Parse([]string{"--wire-format", "confluent", "--schema-id", "2147483647"}); err != nil {
		t.Fatal(err)
	}
	if _, err := of.encoder("risk"); err != nil {
		t.Errorf("largest id rejected: %v", err)
	}
}
