// Package secretbox seals subscription secrets and endpoint credentials
// with AES-256-GCM under an operator key before they are written to Kafka,
// so that the subscriptions topic never holds them in the clear.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// version prefixes every sealed value so the format can change later.
const version = 1

// ErrOpen is returned for a value that was not sealed with this key or was
// altered.
var ErrOpen = errors.New("secretbox: cannot open sealed value")

// Box seals and opens values with one key. It is safe for concurrent use.
type Box struct {
	aead cipher.AEAD
	key  []byte // kept only to derive purpose-bound keys (Derive)
}

// New takes a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secretbox: key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead, key: append([]byte(nil), key...)}, nil
}

// ParseKey decodes a base64 (standard or URL, padded or not) 32-byte key,
// the form of HOOKLINE_SECRET_KEY.
func ParseKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != 32 {
				return nil, fmt.Errorf("secretbox: key must decode to 32 bytes, got %d", len(k))
			}
			return k, nil
		}
	}
	return nil, errors.New("secretbox: key is not base64")
}

// Seal encrypts plaintext; ad binds it to its owner (e.g. the subscription
// id) so a sealed value cannot be moved to another subscription.
func (b *Box) Seal(plaintext, ad []byte) []byte {
	out := make([]byte, 1+b.aead.NonceSize(), 1+b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		panic("secretbox: no randomness: " + err.Error())
	}
	return b.aead.Seal(out, out[1:], plaintext, ad)
}

// Open decrypts a value from Seal with the same ad.
func (b *Box) Open(sealed, ad []byte) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < 1+n+b.aead.Overhead() || sealed[0] != version {
		return nil, ErrOpen
	}
	pt, err := b.aead.Open(nil, sealed[1:1+n], sealed[1+n:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// Derive returns a 32-byte key for one purpose (e.g. "hookline portal
// v1"), derived from the operator key with HKDF-SHA256, so that one
// operator secret serves several uses without any two sharing a key: a
// leaked derived key neither opens sealed values nor forges another
// purpose's MACs.
func (b *Box) Derive(purpose string) []byte {
	k, err := hkdf.Key(sha256.New, b.key, nil, purpose, 32)
	if err != nil { // only for lengths HKDF cannot produce; 32 always fits
		panic("secretbox: derive: " + err.Error())
	}
	return k
}
