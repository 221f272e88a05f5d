package store

import (
	"encoding/binary"
	"strings"
)

// Key joins the parts of a key with "/". Parts that are ids must not hold
// "/" themselves (every id superapp makes is hex, a UUID or a slug).
func Key(parts ...string) string { return strings.Join(parts, "/") }

// Seq encodes n so that keys sort in its order: 8 bytes, big-endian.
func Seq(n uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return string(b[:])
}

// ParseSeq decodes what Seq encoded (0 if s is not 8 bytes).
func ParseSeq(s string) uint64 {
	if len(s) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64([]byte(s))
}
