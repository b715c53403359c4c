package producer

import (
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

// FieldError is a problem with one EncoderConfig field; Field is its Go name.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return "encoder config: " + e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// MaxSchemaID is the largest id a Confluent frame can carry: a signed
// 32-bit integer.
const MaxSchemaID = math.MaxInt32

// Validate reports the first invalid field as a *FieldError.
func (c EncoderConfig) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
	}
	if c.Topic == "" {
		return bad("Topic", "the output topic is required")
	}
	if c.SchemaID < 0 || c.SchemaID > MaxSchemaID {
		return bad("SchemaID", "must be in [0, %d], got %d", MaxSchemaID, c.SchemaID)
	}
	switch c.Wire {
	case WirePlain:
	case WireConfluent:
		if c.SchemaID == 0 {
			return bad("SchemaID", "must be > 0 with wire format confluent, got %d", c.SchemaID)
		}
	default:
		return bad("Wire", "unknown wire format %d (want plain or confluent)", uint8(c.Wire))
	}
	return nil
}
