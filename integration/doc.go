// Package integration holds the acceptance suite of sshlateral: the detection
// pipeline is driven end to end against Kafka brokers started by the tests.
//
// Every scenario runs on an in-process kfake cluster
// (github.com/twmb/franz-go/pkg/kfake). With SSHLATERAL_INTEGRATION=1 it also
// runs on a real single-node Apache Kafka (KRaft) broker in a container started
// through testcontainers-go; if Docker or the broker cannot start in that mode,
// the tests fail instead of skipping.
//
// Environment:
//
//   - SSHLATERAL_INTEGRATION=1 enables the real-Kafka runs.
//   - SSHLATERAL_KAFKA_IMAGE selects the broker image; the default is the
//     official apache/kafka image of the Kafka version the suite targets.
//     kafkaimage/build.sh builds an equivalent image from Debian packages and
//     Maven Central for machines without a container registry, and prints its tag.
//   - SSHLATERAL_SCENARIO_REPORT, when set, names a file to which the test binary
//     appends the per-broker scenario counts.
//
// The brokers listen on 127.0.0.1 only: containers use host networking and
// advertise a loopback port chosen by the test.
package integration
