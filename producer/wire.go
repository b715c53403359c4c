package producer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// WireFormat is how an Avro record is laid out in a Kafka record value.
type WireFormat uint8

const (
	// WirePlain is the bare Avro binary encoding of one record.
	WirePlain WireFormat = iota
	// WireConfluent is Confluent's schema-registry framing: magic byte 0x00,
	// the schema id as a 4-byte big-endian integer, then the Avro binary.
	WireConfluent
)

// confluentHeaderLen is the magic byte plus the 4-byte schema id.
const confluentHeaderLen = 5

// confluentMagic is the first byte of every Confluent-framed value.
const confluentMagic = 0x00

// String returns the flag spelling: "plain" or "confluent".
func (w WireFormat) String() string {
	switch w {
	case WirePlain:
		return "plain"
	case WireConfluent:
		return "confluent"
	}
	return fmt.Sprintf("WireFormat(%d)", uint8(w))
}

// ParseWireFormat parses "plain" or "confluent" (any case).
func ParseWireFormat(s string) (WireFormat, error) {
	switch strings.ToLower(s) {
	case "plain":
		return WirePlain, nil
	case "confluent":
		return WireConfluent, nil
	}
	return 0, fmt.Errorf("unknown wire format %q (want plain or confluent)", s)
}

// Set parses s into w, so that *WireFormat is a flag.Value.
func (w *WireFormat) Set(s string) error {
	v, err := ParseWireFormat(s)
	if err != nil {
		return err
	}
	*w = v
	return nil
}

// AppendConfluentHeader appends the 5-byte Confluent frame header for
// schemaID to dst.
func AppendConfluentHeader(dst []byte, schemaID int32) []byte {
	dst = append(dst, confluentMagic)
	return binary.BigEndian.AppendUint32(dst, uint32(schemaID))
}

// errNotFramed is returned for values that lack the Confluent header.
var errNotFramed = errors.New("value is not confluent-framed: want magic byte 0x00 and a 4-byte schema id")

// SplitConfluent splits a Confluent-framed value into its schema id and the
// Avro binary that follows the header.
func SplitConfluent(value []byte) (schemaID int32, payload []byte, err error) {
	if len(value) < confluentHeaderLen || value[0] != confluentMagic {
		return 0, nil, errNotFramed
	}
	return int32(binary.BigEndian.Uint32(value[1:confluentHeaderLen])), value[confluentHeaderLen:], nil
}
