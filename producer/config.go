package producer

import (
	"errors"
	"fmt"
)

// EncoderConfig configures an Encoder.
type EncoderConfig struct {
	// Topic is the output topic every record is addressed to. Required; no
	// default.
	Topic string
	// Wire is the value layout. Default WirePlain.
	Wire WireFormat
	// SchemaID is the schema-registry id written into every Confluent frame.
	// Used only when Wire is WireConfluent, where it must be > 0. Default 1.
	SchemaID int32
}

// DefaultConfig returns the defaults: plain Avro, schema id 1, and no topic
// (the caller must set Topic).
func DefaultConfig() EncoderConfig {
	return EncoderConfig{Wire: WirePlain, SchemaID: 1}
}

// Validate reports the first invalid field.
func (c EncoderConfig) Validate() error {
	if c.Topic == "" {
		return errors.New("encoder config: Topic (output topic) is required")
	}
	switch c.Wire {
	case WirePlain:
		if c.SchemaID < 0 {
			return fmt.Errorf("encoder config: SchemaID must not be negative, got %d", c.SchemaID)
		}
	case WireConfluent:
		if c.SchemaID <= 0 {
			return fmt.Errorf("encoder config: SchemaID must be > 0 with wire format confluent, got %d", c.SchemaID)
		}
	default:
		return fmt.Errorf("encoder config: Wire: unknown wire format %d (want plain or confluent)", uint8(c.Wire))
	}
	return nil
}
