package producer

import (
	"fmt"
	"strconv"
	"time"

	"github.com/sshlateral/sshlateral/schemas"
)

// riskRecordModel is the parsed schemas.RiskRecordSchema; it fixes JSON
// field order.
var riskRecordModel, riskRecordModelErr = parseRecordModel(schemas.RiskRecordSchema)

// JSON renders a native risk record (from Decoder or RiskRecords) as one
// compact JSON object: field names and order exactly as in the schema,
// ["null","string"] as null or the bare string, timestamp-millis as integer
// milliseconds since the epoch, enums as their symbols. The same record
// always renders to the same bytes.
func JSON(native map[string]any) ([]byte, error) {
	if riskRecordModelErr != nil {
		return nil, fmt.Errorf("producer: %w", riskRecordModelErr)
	}
	w := newJSONWriter()
	if err := w.record(riskRecordModel, native); err != nil {
		return nil, fmt.Errorf("producer: render risk record as json: %w", err)
	}
	return w.out, nil
}

type jsonWriter struct {
	out []byte
}

func newJSONWriter() *jsonWriter {
	return &jsonWriter{out: make([]byte, 0, 2048)}
}

// str writes s as encoding/json does with HTML escaping off: command lines
// keep their & < >.
func (w *jsonWriter) str(s string) {
	w.out = appendJSONString(w.out, s)
}

func (w *jsonWriter) record(t *avroType, native map[string]any) error {
	w.out = append(w.out, '{')
	for i, f := range t.fields {
		if i > 0 {
			w.out = append(w.out, ',')
		}
		w.str(f.name)
		w.out = append(w.out, ':')
		v, ok := native[f.name]
		if !ok {
			return fmt.Errorf("field %s is missing", f.name)
		}
		if err := w.value(f.typ, v); err != nil {
			return fmt.Errorf("field %s: %w", f.name, err)
		}
	}
	w.out = append(w.out, '}')
	return nil
}

func (w *jsonWriter) value(t *avroType, v any) error {
	switch t.kind {
	case kindString, kindEnum:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("got %T, want string", v)
		}
		w.str(s)
	case kindInt, kindLong:
		n, ok := integer(v)
		if !ok {
			return fmt.Errorf("got %T, want an integer", v)
		}
		w.out = strconv.AppendInt(w.out, n, 10)
	case kindTimestampMillis:
		if tm, ok := v.(time.Time); ok {
			w.out = strconv.AppendInt(w.out, tm.UnixMilli(), 10)
			return nil
		}
		n, ok := integer(v)
		if !ok {
			return fmt.Errorf("got %T, want time.Time or integer milliseconds", v)
		}
		w.out = strconv.AppendInt(w.out, n, 10)
	case kindNullableString:
		switch u := v.(type) {
		case nil:
			w.out = append(w.out, "null"...)
		case string:
			w.str(u)
		case map[string]any:
			s, ok := u["string"].(string)
			if !ok || len(u) != 1 {
				return fmt.Errorf("union value %v is not {\"string\": s}", u)
			}
			w.str(s)
		default:
			return fmt.Errorf("got %T, want nil or a string union", v)
		}
	case kindStringArray:
		w.out = append(w.out, '[')
		switch a := v.(type) {
		case []any:
			for i, item := range a {
				s, ok := item.(string)
				if !ok {
					return fmt.Errorf("item %d: got %T, want string", i, item)
				}
				if i > 0 {
					w.out = append(w.out, ',')
				}
				w.str(s)
			}
		case []string:
			for i, s := range a {
				if i > 0 {
					w.out = append(w.out, ',')
				}
				w.str(s)
			}
		default:
			return fmt.Errorf("got %T, want an array of strings", v)
		}
		w.out = append(w.out, ']')
	case kindRecord:
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("got %T, want a record", v)
		}
		return w.record(t, m)
	default:
		return fmt.Errorf("unsupported kind %d", t.kind)
	}
	return nil
}

func integer(v any) (int64, bool) {
	switch n := v.(type) {
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case int:
		return int64(n), true
	}
	return 0, false
}
