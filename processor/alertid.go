package processor

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// windowAlertID is the alert id of a group in a window, shared by its EARLY
// and FINAL (the revision tells them apart): the first 128 bits, in hex, of
// SHA-256 over the detection id, the window bounds in unix milliseconds and
// the seven GroupKey fields, every string length-prefixed so that no two
// different inputs encode alike.
func windowAlertID(start, end int64, k *GroupKey) string {
	return hashAlertID(alertIDInput(start, end, k))
}

// lateAlertID extends the window's input with the emission and the event
// time in nanoseconds, so a LATE record never overwrites the window's record
// downstream and a redelivered late event keeps its id.
func lateAlertID(start, end int64, k *GroupKey, eventTime int64) string {
	b := alertIDInput(start, end, k)
	b = appendString(b, EmissionLate.String())
	b = binary.BigEndian.AppendUint64(b, uint64(eventTime))
	return hashAlertID(b)
}

func alertIDInput(start, end int64, k *GroupKey) []byte {
	n := len(DetectionID) + 16 + 7*binary.MaxVarintLen64 + len(k.Dest) + len(k.User) +
		len(k.ParentProcessName) + len(k.ProcessName) + len(k.Process) + len(k.ProcessID) +
		len(k.ParentProcessID) + 32
	b := make([]byte, 0, n)
	b = appendString(b, DetectionID)
	b = binary.BigEndian.AppendUint64(b, uint64(floorDiv(start, 1e6)))
	b = binary.BigEndian.AppendUint64(b, uint64(floorDiv(end, 1e6)))
	for _, s := range [...]string{k.Dest, k.User, k.ParentProcessName, k.ProcessName, k.Process, k.ProcessID, k.ParentProcessID} {
		b = appendString(b, s)
	}
	return b
}

func hashAlertID(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}
