package main

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sshlateral/sshlateral/processor"
)

// TestDeploymentFitsDefaults: the shipped Deployment's memory settings agree
// with the service's byte bound: the state bound is the default, the Go
// heap limit leaves room below the container limit, and the state bound
// leaves room in the heap for Kafka buffers and the runtime.
func TestDeploymentFitsDefaults(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Env []struct {
							Name, Value string
						} `yaml:"env"`
						Resources struct {
							Limits map[string]string `yaml:"limits"`
						} `yaml:"resources"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	limit := quantity(t, c.Resources.Limits["memory"])
	goMem := quantity(t, env["GOMEMLIMIT"])
	state, err := strconv.ParseInt(env["SSHLATERAL_MAX_STATE_BYTES"], 10, 64)
	if err != nil {
		t.Fatalf("SSHLATERAL_MAX_STATE_BYTES: %v", err)
	}
	if def := processor.DefaultConfig().MaxStateBytes; state != def {
		t.Errorf("manifest state bound %d, default %d", state, def)
	}
	if goMem > limit*85/100 {
		t.Errorf("GOMEMLIMIT %d is over 85%% of the container limit %d", goMem, limit)
	}
	if state > goMem/2 {
		t.Errorf("state bound %d is over half of GOMEMLIMIT %d: no room for Kafka buffers", state, goMem)
	}
}

// quantity parses the Mi/Gi/MiB/GiB sizes the manifest uses.
func quantity(t *testing.T, s string) int64 {
	t.Helper()
	for suffix, mult := range map[string]int64{"MiB": 1 << 20, "GiB": 1 << 30, "Mi": 1 << 20, "Gi": 1 << 30} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				t.Fatalf("size %q: %v", s, err)
			}
			return v * mult
		}
	}
	t.Fatalf("size %q: unknown unit", s)
	return 0
}
