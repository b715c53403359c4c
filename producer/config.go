package producer

import (
	"errors"
	"fmt"
	"math"
)

// EncoderConfig configures an Encoder.
type EncoderConfig struct {
	// Topic is the output topic every record is addressed to. Required; no
	// default.
	Topic string
	// Wire is the value layout. Default WirePlain.
	Wire WireFormat
	// SchemaID is the schema-registry id written into every Confluent frame.
	// Used only when Wire is WireConfluent, where it must be in
	// [1, MaxSchemaID]; with WirePlain in [0, MaxSchemaID]. It is wider than
	// the frame's 4 bytes so that an out-of-range flag value is rejected
	// here rather than wrapped around. Default 1.
	SchemaID int64
}

// DefaultConfig returns the defaults: plain Avro, schema id 1, and no topic
// (the caller must set Topic).
func DefaultConfig() EncoderConfig {
	return EncoderConfig{Wire: WirePlain, SchemaID: 1}
}

// MaxSchemaID is the largest id a Confluent frame can carry: a signed
// 32-bit integer.
const MaxSchemaID = math.MaxInt32

// Validate reports the first invalid field.
func (c EncoderConfig) Validate() error {
	if c.Topic == "" {
		return errors.New("encoder config: Topic (output topic) is required")
	}
	if c.SchemaID < 0 || c.SchemaID > MaxSchemaID {
		return fmt.Errorf("encoder config: SchemaID must be in [0, %d], got %d", MaxSchemaID, c.SchemaID)
	}
	switch c.Wire {
	case WirePlain:
	case WireConfluent:
		if c.SchemaID == 0 {
			return fmt.Errorf("encoder config: SchemaID must be > 0 with wire format confluent, got %d", c.SchemaID)
		}
	default:
		return fmt.Errorf("encoder config: Wire: unknown wire format %d (want plain or confluent)", uint8(c.Wire))
	}
	return nil
}
