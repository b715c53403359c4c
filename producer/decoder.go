package producer

import (
	"errors"
	"fmt"

	"github.com/linkedin/goavro/v2"

	"github.com/sshlateral/sshlateral/schemas"
)

// Decoder decodes risk record values. It is safe for concurrent use.
type Decoder struct {
	codec *goavro.Codec
	model *avroType
}

// NewDecoder returns a Decoder for schemas.RiskRecordSchema.
func NewDecoder() (*Decoder, error) {
	codec, err := schemas.NewRiskRecordCodec()
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	model, err := parseRecordModel(schemas.RiskRecordSchema)
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	return &Decoder{codec: codec, model: model}, nil
}

// Decode decodes a plain or Confluent-framed value, telling them apart by
// the first byte: 0x00 means a Confluent frame, anything else plain Avro.
//
// This is unambiguous for every value an Encoder writes. A plain record
// starts with the zig-zag length of its first field, alert_id, and that
// byte is 0x00 only for an empty alert_id, which Encoder refuses to write.
// A plain record with an empty alert_id from another writer is read as a
// frame and fails to decode; use DecodeWire for such input.
//
// The result is goavro's native form: unions as nil or
// map[string]any{"string": s}, timestamps as UTC time.Time, enums as
// symbol strings, int as int32, long as int64.
func (d *Decoder) Decode(value []byte) (map[string]any, error) {
	if len(value) > 0 && value[0] == confluentMagic {
		return d.DecodeWire(value, WireConfluent)
	}
	return d.DecodeWire(value, WirePlain)
}

// DecodeWire decodes a value in the given wire format. Confluent frames
// are accepted with any schema id; use SplitConfluent to read it.
func (d *Decoder) DecodeWire(value []byte, wire WireFormat) (map[string]any, error) {
	payload := value
	switch wire {
	case WirePlain:
	case WireConfluent:
		var err error
		if _, payload, err = SplitConfluent(value); err != nil {
			return nil, fmt.Errorf("producer: decode risk record: %w", err)
		}
	default:
		return nil, fmt.Errorf("producer: decode risk record: unknown wire format %d", uint8(wire))
	}
	native, err := d.decodeBinary(payload)
	if err != nil {
		return nil, fmt.Errorf("producer: decode risk record (%s): %w", wire, err)
	}
	return native, nil
}

func (d *Decoder) decodeBinary(payload []byte) (map[string]any, error) {
	if len(payload) == 0 {
		return nil, errors.New("empty value")
	}
	rest, err := d.model.skip(payload)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%d trailing bytes after the record", len(rest))
	}
	v, rest, err := d.codec.NativeFromBinary(payload)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%d trailing bytes after the record", len(rest))
	}
	native, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("decoded %T, want a record", v)
	}
	return native, nil
}
