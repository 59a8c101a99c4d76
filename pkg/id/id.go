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
func Delivery(eventID, subID string) string { return Derived("dlv", eventID, subID) }

// Derived is prefix_ followed by 26 characters of a hash of parts (each
// ended by a zero byte, so that parts cannot run into each other): the same
// parts always give the same id. It names what is made from something that
// already has an id (a delivery of an event, a notification of an event).
func Derived(prefix string, parts ...string) string {
	h := sha256.New()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(p))
	}
	var sum [sha256.Size]byte
	return prefix + "_" + enc.EncodeToString(h.Sum(sum[:0])[:16])
}
