// Package kafkaimage holds what a program needs to start the single-node
// KRaft test broker this directory's recipe builds (and the official image,
// which reads the same variables): the acceptance suite and the benchmark
// binary both start it.
package kafkaimage

// Env returns the container environment of a single-node KRaft broker
// listening for clients on seed and for its controller on controller (both
// host:port on the host network). The names are the official image's
// (KIP-975); entrypoint.sh reads the same ones.
func Env(seed, controller string) map[string]string {
	return map[string]string{
		"KAFKA_NODE_ID":                                          "1",
		"KAFKA_PROCESS_ROLES":                                    "broker,controller",
		"KAFKA_LISTENERS":                                        "PLAINTEXT://" + seed + ",CONTROLLER://" + controller,
		"KAFKA_ADVERTISED_LISTENERS":                             "PLAINTEXT://" + seed,
		"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":                   "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
		"KAFKA_CONTROLLER_LISTENER_NAMES":                        "CONTROLLER",
		"KAFKA_INTER_BROKER_LISTENER_NAME":                       "PLAINTEXT",
		"KAFKA_CONTROLLER_QUORUM_VOTERS":                         "1@" + controller,
		"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":                 "1",
		"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR":         "1",
		"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":                    "1",
		"KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
		"KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR":            "1",
		"KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS":                 "0",
		"KAFKA_NUM_PARTITIONS":                                   "1",
		// Topics are created explicitly; one forgotten fails on kfake and
		// Kafka alike.
		"KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
	}
}
