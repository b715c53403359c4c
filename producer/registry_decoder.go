package producer

import (
	"context"
	"fmt"
	"sync"

	"github.com/hamba/avro/v2"
	"github.com/linkedin/goavro/v2"

	"github.com/sshlateral/sshlateral/schemas"
)

// resolveConfig bounds what a hostile payload can make the resolving decoder
// allocate: strings up to 1 MiB, arrays up to 64 Ki items.
var resolveConfig = avro.Config{MaxByteSliceSize: 1 << 20, MaxSliceAllocSize: 1 << 16}.Freeze()

// RegistryDecoder decodes Confluent-framed values by the schema id in each
// value's header: the writer schema comes from the registry and the value is
// read into the reader schema by Avro schema resolution, so values written
// under an older or newer compatible version decode into today's shape
// (missing fields take their defaults, unknown fields are dropped). It is safe
// for concurrent use; writer schemas are fetched once per id.
//
// goavro, which the rest of the package uses, cannot resolve a writer schema
// against a reader schema, so values whose writer differs from the reader are
// decoded with hamba/avro's resolution and re-encoded under the reader
// schema, then decoded by the same guarded goavro path as every other value.
// Values written under the reader schema itself take that path directly.
type RegistryDecoder struct {
	reg    *Registry
	reader *Decoder
	schema avro.Schema // the reader schema, for resolution

	mu      sync.Mutex
	writers map[int32]*writerPlan
}

// writerPlan is how values of one writer schema id are read.
type writerPlan struct {
	resolved avro.Schema // nil: the writer schema is the reader schema
	err      error       // the writer schema cannot be read into the reader schema
}

// NewDecoder returns a decoder that reads values into readerSchema, or into
// schemas.RiskRecordSchema when readerSchema is empty. The reader schema must
// use only the constructs of RiskRecord (see schema_model.go).
func (r *Registry) NewDecoder(readerSchema string) (*RegistryDecoder, error) {
	if readerSchema == "" {
		readerSchema = schemas.RiskRecordSchema
	}
	codec, err := goavro.NewCodec(readerSchema)
	if err != nil {
		return nil, fmt.Errorf("registry decoder: reader schema: %w", err)
	}
	model, err := parseRecordModel(readerSchema)
	if err != nil {
		return nil, fmt.Errorf("registry decoder: reader schema: %w", err)
	}
	schema, err := avro.ParseBytesWithCache([]byte(readerSchema), "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("registry decoder: reader schema: %w", err)
	}
	return &RegistryDecoder{
		reg:     r,
		reader:  &Decoder{current: writerSchema{codec: codec, model: model}},
		schema:  schema,
		writers: make(map[int32]*writerPlan),
	}, nil
}

// Decode decodes a Confluent-framed value into the reader schema, in the
// same native form as Decoder.Decode. It blocks while the registry is asked
// for an id not seen before, retrying transient failures until ctx ends.
func (d *RegistryDecoder) Decode(ctx context.Context, value []byte) (map[string]any, error) {
	id, payload, err := SplitConfluent(value)
	if err != nil {
		return nil, fmt.Errorf("producer: decode risk record: %w", err)
	}
	plan, err := d.plan(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("producer: decode risk record with schema id %d: %w", id, err)
	}
	if plan.resolved != nil {
		if payload, err = resolve(plan.resolved, d.schema, payload); err != nil {
			return nil, fmt.Errorf("producer: decode risk record with schema id %d: %w", id, err)
		}
	}
	native, err := d.reader.decodeBinary(payload)
	if err != nil {
		return nil, fmt.Errorf("producer: decode risk record with schema id %d: %w", id, err)
	}
	return native, nil
}

// plan returns the cached plan for id, asking the registry on first use.
// Failed lookups are not cached: the next value asks again.
func (d *RegistryDecoder) plan(ctx context.Context, id int32) (*writerPlan, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p, ok := d.writers[id]; ok {
		return p, p.err
	}
	text, err := d.reg.schemaByID(ctx, id)
	if err != nil {
		return nil, err
	}
	p := planFor(d.schema, text)
	d.writers[id] = p
	return p, p.err
}

// planFor compares the writer schema with the reader schema by their
// canonical-form fingerprints and resolves them when they differ.
func planFor(reader avro.Schema, writerText string) *writerPlan {
	writer, err := avro.ParseBytesWithCache([]byte(writerText), "", &avro.SchemaCache{})
	if err != nil {
		return &writerPlan{err: fmt.Errorf("writer schema: %w", err)}
	}
	if writer.Fingerprint() == reader.Fingerprint() {
		return &writerPlan{}
	}
	resolved, err := avro.NewSchemaCompatibility().Resolve(reader, writer)
	if err != nil {
		return &writerPlan{err: fmt.Errorf("writer schema cannot be read as the reader schema: %w", err)}
	}
	return &writerPlan{resolved: resolved}
}

// resolve reads payload by the resolved writer schema and returns it encoded
// under the reader schema.
func resolve(resolved, reader avro.Schema, payload []byte) ([]byte, error) {
	rd := avro.NewReader(nil, 0, avro.WithReaderConfig(resolveConfig)).Reset(payload)
	var v any
	rd.ReadVal(resolved, &v)
	if rd.Error != nil {
		return nil, fmt.Errorf("resolve writer schema: %w", rd.Error)
	}
	if rd.Peek(); rd.Error == nil {
		return nil, fmt.Errorf("resolve writer schema: trailing bytes after the record")
	}
	out, err := resolveConfig.Marshal(reader, v)
	if err != nil {
		return nil, fmt.Errorf("re-encode under the reader schema: %w", err)
	}
	return out, nil
}
