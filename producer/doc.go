// Package producer turns processor results into Avro risk records
// (schemas/risk_record.avsc) and back: Kafka records for the output topic,
// Avro object container files, and a deterministic JSON rendering.
//
// Every processor.Result becomes two risk records with the same alert_id:
// risk object dest (type system) first, then risk object user (type user),
// both with threat object process_name, as ESCU's risk action configures.
//
// String fields are written as valid UTF-8 (each invalid byte becomes
// U+FFFD) and within documented maximum lengths (MaxCommandLineBytes,
// MaxValueBytes); the record's truncated and sanitized fields name what was
// changed. See docs/risk-record.md.
package producer
