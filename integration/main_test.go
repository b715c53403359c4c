package integration

import (
	"fmt"
	"os"
	"testing"
)

// envScenarioReport names a file that receives the scenario counts line;
// `go test ./...` hides the output of passing packages, so .ci/run reads it from
// there.
const envScenarioReport = "SSHLATERAL_SCENARIO_REPORT"

func TestMain(m *testing.M) {
	// Inside a container (/.dockerenv exists) testcontainers-go would look for
	// the engine behind a gateway address; the brokers here use host networking
	// on 127.0.0.1. Ryuk, the reaper container, would need a registry pull:
	// containers are terminated by t.Cleanup and .ci/run removes leftovers by label.
	for name, value := range map[string]string{
		"TESTCONTAINERS_HOST_OVERRIDE": "127.0.0.1",
		"TESTCONTAINERS_RYUK_DISABLED": "true",
	} {
		if _, set := os.LookupEnv(name); !set {
			if err := os.Setenv(name, value); err != nil {
				fmt.Fprintf(os.Stderr, "set %s: %v\n", name, err)
				os.Exit(2)
			}
		}
	}

	code := m.Run()

	report := fmt.Sprintf("scenarios run: %s=%d %s=%d",
		brokerKfake, scenarioCounts[brokerKfake].Load(),
		brokerKafka, scenarioCounts[brokerKafka].Load())
	fmt.Println(report)
	if path := os.Getenv(envScenarioReport); path != "" {
		if err := appendLine(path, report); err != nil {
			fmt.Fprintf(os.Stderr, "write scenario report to %s: %v\n", path, err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f, line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
