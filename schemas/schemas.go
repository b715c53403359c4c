// Package schemas holds the Avro schemas sshlateral writes, embedded so that
// the binary, the tests and external verifiers share one source of truth.
package schemas

import (
	_ "embed"
	"fmt"

	"github.com/linkedin/goavro/v2"
)

// RiskRecordSchema is the Avro schema of the risk records on the output
// topic (record io.sshlateral.v1.RiskRecord).
//
//go:embed risk_record.avsc
var RiskRecordSchema string

// RiskRecordFullName is the fully qualified Avro name of RiskRecordSchema.
const RiskRecordFullName = "io.sshlateral.v1.RiskRecord"

// NewRiskRecordCodec returns a codec for RiskRecordSchema. A codec is
// stateless and safe for concurrent use, so one per process is enough.
func NewRiskRecordCodec() (*goavro.Codec, error) {
	codec, err := goavro.NewCodec(RiskRecordSchema)
	if err != nil {
		return nil, fmt.Errorf("schemas: parse risk_record.avsc: %w", err)
	}
	return codec, nil
}
