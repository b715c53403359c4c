package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/sshlateral/sshlateral/cmd/internal/clitest"
)

// --input-keying takes host or any; with any, the repartition topic must
// be a topic of its own. Both are rejected before anything connects.
func TestRunInputKeyingFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown keying", []string{"--input-keying", "dest"}, 2, `-input-keying: unknown input keying "dest" (want host or any)`},
		{"repartition topic is the input", []string{"--input-keying", "any", "--repartition-topic", "endpoint.processes"}, 1,
			"--repartition-topic: topic \"endpoint.processes\" is also InputTopic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			args := append([]string{"run", "--brokers", "127.0.0.1:1"}, tc.args...)
			code := run(context.Background(), args, clitest.Getenv(nil), strings.NewReader(""), io.Discard, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tc.code, tc.want)
			}
		})
	}
}
