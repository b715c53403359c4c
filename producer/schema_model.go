package producer

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// avroKind is one of the Avro constructs RiskRecord uses. The model is
// deliberately limited to them: parsing fails on anything else, so a schema
// change that needs new rendering or validation code cannot slip through.
type avroKind uint8

const (
	kindString avroKind = iota
	kindInt
	kindLong
	kindTimestampMillis
	kindEnum
	kindNullableString // ["null","string"]
	kindStringArray
	kindRecord
)

type avroType struct {
	kind    avroKind
	symbols []string    // kindEnum
	fields  []avroField // kindRecord
}

type avroField struct {
	name string
	typ  *avroType
}

// parseRecordModel parses an Avro record schema into the model.
func parseRecordModel(schema string) (*avroType, error) {
	var raw any
	if err := json.Unmarshal([]byte(schema), &raw); err != nil {
		return nil, fmt.Errorf("parse schema: %w", err)
	}
	t, err := modelOf(raw)
	if err != nil {
		return nil, fmt.Errorf("parse schema: %w", err)
	}
	if t.kind != kindRecord {
		return nil, errors.New("parse schema: top level is not a record")
	}
	return t, nil
}

func modelOf(raw any) (*avroType, error) {
	switch v := raw.(type) {
	case string:
		switch v {
		case "string":
			return &avroType{kind: kindString}, nil
		case "int":
			return &avroType{kind: kindInt}, nil
		case "long":
			return &avroType{kind: kindLong}, nil
		}
		return nil, fmt.Errorf("unsupported type %q", v)
	case []any:
		if len(v) == 2 && v[0] == "null" && v[1] == "string" {
			return &avroType{kind: kindNullableString}, nil
		}
		return nil, fmt.Errorf("unsupported union %v", v)
	case map[string]any:
		return modelOfMap(v)
	}
	return nil, fmt.Errorf("unsupported schema node %T", raw)
}

func modelOfMap(v map[string]any) (*avroType, error) {
	switch v["type"] {
	case "long":
		if v["logicalType"] == "timestamp-millis" {
			return &avroType{kind: kindTimestampMillis}, nil
		}
		return &avroType{kind: kindLong}, nil
	case "enum":
		raw, _ := v["symbols"].([]any)
		syms := make([]string, 0, len(raw))
		for _, s := range raw {
			str, ok := s.(string)
			if !ok {
				return nil, fmt.Errorf("enum %v: symbol %v is not a string", v["name"], s)
			}
			syms = append(syms, str)
		}
		if len(syms) == 0 {
			return nil, fmt.Errorf("enum %v has no symbols", v["name"])
		}
		return &avroType{kind: kindEnum, symbols: syms}, nil
	case "array":
		if v["items"] != "string" {
			return nil, fmt.Errorf("unsupported array items %v", v["items"])
		}
		return &avroType{kind: kindStringArray}, nil
	case "record":
		raw, _ := v["fields"].([]any)
		t := &avroType{kind: kindRecord}
		for _, f := range raw {
			fm, ok := f.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("record %v: field %v is not an object", v["name"], f)
			}
			name, _ := fm["name"].(string)
			ft, err := modelOf(fm["type"])
			if err != nil {
				return nil, fmt.Errorf("record %v field %q: %w", v["name"], name, err)
			}
			t.fields = append(t.fields, avroField{name: name, typ: ft})
		}
		return t, nil
	}
	return nil, fmt.Errorf("unsupported type %v", v["type"])
}

var errTruncated = errors.New("truncated value")

// skip checks that buf starts with a well-formed binary datum of t and
// returns the bytes after it. It runs before goavro decodes untrusted
// bytes: goavro preallocates arrays from the encoded block count, so a few
// hostile bytes could demand gigabytes. Every string item takes at least
// one byte, which bounds a genuine block count by the bytes left.
func (t *avroType) skip(buf []byte) ([]byte, error) {
	switch t.kind {
	case kindString:
		return skipString(buf)
	case kindInt:
		v, rest, err := readLong(buf)
		if err == nil && (v < math.MinInt32 || v > math.MaxInt32) {
			err = fmt.Errorf("int out of range: %d", v)
		}
		return rest, err
	case kindLong, kindTimestampMillis:
		_, rest, err := readLong(buf)
		return rest, err
	case kindEnum:
		v, rest, err := readLong(buf)
		if err == nil && (v < 0 || v >= int64(len(t.symbols))) {
			err = fmt.Errorf("enum index %d out of range", v)
		}
		return rest, err
	case kindNullableString:
		v, rest, err := readLong(buf)
		if err != nil {
			return nil, err
		}
		switch v {
		case 0:
			return rest, nil
		case 1:
			return skipString(rest)
		}
		return nil, fmt.Errorf("union index %d out of range", v)
	case kindStringArray:
		return skipStringArray(buf)
	case kindRecord:
		var err error
		for _, f := range t.fields {
			if buf, err = f.typ.skip(buf); err != nil {
				return nil, fmt.Errorf("field %s: %w", f.name, err)
			}
		}
		return buf, nil
	}
	return nil, fmt.Errorf("unsupported kind %d", t.kind)
}

func readLong(buf []byte) (int64, []byte, error) {
	// Avro's long is a zig-zag varint, the encoding of binary.Varint.
	v, n := binary.Varint(buf)
	if n == 0 {
		return 0, nil, errTruncated
	}
	if n < 0 {
		return 0, nil, errors.New("varint overflows 64 bits")
	}
	return v, buf[n:], nil
}

func skipString(buf []byte) ([]byte, error) {
	n, rest, err := readLong(buf)
	if err != nil {
		return nil, err
	}
	if n < 0 || n > int64(len(rest)) {
		return nil, fmt.Errorf("string length %d exceeds %d remaining bytes", n, len(rest))
	}
	return rest[n:], nil
}

func skipStringArray(buf []byte) ([]byte, error) {
	for {
		count, rest, err := readLong(buf)
		if err != nil {
			return nil, err
		}
		if count == 0 {
			return rest, nil
		}
		if count < 0 {
			if count == math.MinInt64 {
				return nil, errors.New("array block count overflows")
			}
			count = -count
			// A negative count is followed by the block's byte size.
			if _, rest, err = readLong(rest); err != nil {
				return nil, err
			}
		}
		if count > int64(len(rest)) {
			return nil, fmt.Errorf("array block count %d exceeds %d remaining bytes", count, len(rest))
		}
		for i := int64(0); i < count; i++ {
			if rest, err = skipString(rest); err != nil {
				return nil, fmt.Errorf("array item %d: %w", i, err)
			}
		}
		buf = rest
	}
}
