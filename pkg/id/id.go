// Package id makes Hookline's identifiers: a type prefix and a time-ordered
// random part for new things (evt_, sub_), and a deterministic hash for
// deliveries, so that reprocessing an event yields the same delivery ids.
package id

import (
	"crypto/sha256"
	"encoding/base32"

	"github.com/google/uuid"
)

var enc = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// New returns prefix_ followed by 26 characters of a UUIDv7 (time-ordered).
func New(prefix string) string {
	u := uuid.Must(uuid.NewV7())
	return prefix + "_" + enc.EncodeToString(u[:])
}

// Delivery is the id of the delivery of event eventID to subscription
// subID: the same inputs always give the same id.
func Delivery(eventID, subID string) string {
	h := sha256.New()
	h.Write([]byte(eventID))
	h.Write([]byte{0})
	h.Write([]byte(subID))
	var sum [sha256.Size]byte
	return "dlv_" + enc.EncodeToString(h.Sum(sum[:0])[:16])
}
