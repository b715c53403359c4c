package producer

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/linkedin/goavro/v2"

	"github.com/sshlateral/sshlateral/schemas"
)

// Decoder decodes risk record values. It is safe for concurrent use.
type Decoder struct {
	current writerSchema
	v1      writerSchema // zero: no fallback (a registry decoder's resolved values)
}

// writerSchema is one published version of the schema a value may have
// been written with.
type writerSchema struct {
	codec *goavro.Codec
	model *avroType
	// defaults of the current schema's fields this version lacks.
	defaults map[string]any
}

// fieldsSinceV1 are the fields appended, with defaults, to the first
// published schema. Plain values carry no schema id, so Decoder tells the
// versions apart by where the record's bytes end.
var fieldsSinceV1 = []string{"truncated", "sanitized"}

// NewDecoder returns a Decoder for schemas.RiskRecordSchema that also reads
// records written with the first published version, before truncated and
// sanitized existed; it gives them the fields' defaults.
func NewDecoder() (*Decoder, error) {
	current, err := newWriterSchema(schemas.RiskRecordSchema, nil)
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	v1Schema, defaults, err := withoutFields(schemas.RiskRecordSchema, fieldsSinceV1)
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	v1, err := newWriterSchema(v1Schema, defaults)
	if err != nil {
		return nil, fmt.Errorf("producer: schema v1: %w", err)
	}
	return &Decoder{current: current, v1: v1}, nil
}

func newWriterSchema(schema string, defaults map[string]any) (writerSchema, error) {
	codec, err := goavro.NewCodec(schema)
	if err != nil {
		return writerSchema{}, err
	}
	model, err := parseRecordModel(schema)
	if err != nil {
		return writerSchema{}, err
	}
	return writerSchema{codec: codec, model: model, defaults: defaults}, nil
}

// withoutFields returns schema without the named top-level fields, and
// their defaults in goavro's native form.
func withoutFields(schema string, names []string) (string, map[string]any, error) {
	var doc map[string]any
	if err := json.Unmarshal([]byte(schema), &doc); err != nil {
		return "", nil, err
	}
	fields, _ := doc["fields"].([]any)
	kept := fields[:0:0]
	defaults := map[string]any{}
	for _, f := range fields {
		fm, _ := f.(map[string]any)
		name, _ := fm["name"].(string)
		if !slices.Contains(names, name) {
			kept = append(kept, f)
			continue
		}
		def, ok := fm["default"]
		if !ok {
			return "", nil, fmt.Errorf("field %s has no default", name)
		}
		defaults[name] = def // JSON's [] decodes as []any{}, goavro's form
	}
	if len(defaults) != len(names) {
		return "", nil, fmt.Errorf("schema lacks some of the fields %v", names)
	}
	doc["fields"] = kept
	out, err := json.Marshal(doc)
	return string(out), defaults, err
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
	native, err := d.current.decode(payload)
	if err != nil && d.v1.model != nil {
		// A record of the first version ends where the current version's
		// new fields would start; a current record is never a whole v1
		// record, since its new fields take at least one byte each.
		if old, errV1 := d.v1.decode(payload); errV1 == nil {
			return old, nil
		}
	}
	return native, err
}

func (w *writerSchema) decode(payload []byte) (map[string]any, error) {
	rest, err := w.model.skip(payload)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%d trailing bytes after the record", len(rest))
	}
	v, rest, err := w.codec.NativeFromBinary(payload)
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
	for name, def := range w.defaults {
		if a, ok := def.([]any); ok {
			def = slices.Clone(a) // each record its own slice
		}
		native[name] = def
	}
	return native, nil
}
