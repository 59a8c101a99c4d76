package deliver

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"

	"github.com/hookline/hookline/pkg/record"
)

// certClient returns the client presenting sub's client certificate. The
// key is opened, and the key pair parsed, only when the certificate's
// client is not held yet: a new certificate or key gets a new client
// (its digest differs), never a connection made with the old one.
func (o *Opener) certClient(sub *record.Subscription) (*http.Client, error) {
	if o.Certs == nil {
		return nil, errors.New("this sender cannot present client certificates")
	}
	c := sub.ClientTLS
	h := sha256.New()
	for _, part := range [][]byte{[]byte(sub.ID), []byte(c.Certificate), c.SealedKey} {
		h.Write(part)
		h.Write([]byte{0})
	}
	return o.Certs.For(hex.EncodeToString(h.Sum(nil)), func() (tls.Certificate, error) {
		key, err := o.Box.Open(c.SealedKey, []byte(sub.ID))
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("key cannot be opened: %w", err)
		}
		pair, err := tls.X509KeyPair([]byte(c.Certificate), key)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("key pair: %w", err)
		}
		return pair, nil
	})
}
