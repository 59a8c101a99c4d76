// Package signature signs and verifies webhooks the Standard Webhooks way
// (https://www.standardwebhooks.com/), so that any Standard Webhooks library
// can check what Hookline sends, and so that Go receivers can check it with
// this package alone.
//
// A request carries three headers: webhook-id, webhook-timestamp (unix
// seconds) and webhook-signature, a space-separated list of
// "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>", one entry per active
// secret while a secret rotates. Secrets are written "whsec_<base64 key>",
// and the Standard Webhooks signature is keyed with the decoded key bytes.
// A GitHub-style X-Hub-Signature-256 ("sha256=<hex HMAC-SHA256(secret,
// body)>") is offered for receivers that only speak that dialect; it is
// keyed with the secret string itself, "whsec_" and all, because that is
// what GitHub-webhook libraries (@octokit/webhooks-methods, ...) take as
// the key: the text a user pastes into their configuration.
//
// Senders call [Sign]; receivers use a [Verifier], directly or as HTTP
// middleware.
package signature

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Header names of a signed webhook request. They are written in the
// Standard Webhooks spelling; http.Header canonicalises them on Set and Get.
const (
	// HeaderID carries the message id, the same on every retry; receivers
	// dedupe on it.
	HeaderID = "webhook-id"
	// HeaderTimestamp carries the signing time in unix seconds.
	HeaderTimestamp = "webhook-timestamp"
	// HeaderSignature carries the space-separated "v1,<base64>" signatures.
	HeaderSignature = "webhook-signature"
	// HeaderGitHub carries the optional GitHub-style "sha256=<hex>" signature
	// of the body alone.
	HeaderGitHub = "X-Hub-Signature-256"
)

const (
	secretPrefix = "whsec_"
	// Key sizes accepted by ParseSecret. The lower bound is the spec's
	// minimum; the upper bound is one SHA-256 block, beyond which HMAC would
	// hash the key down anyway.
	minKeyLen = 24
	maxKeyLen = 64
	// newKeyLen is the size of keys made by NewSecret.
	newKeyLen = 32
	// sigLen is the length of a base64-encoded HMAC-SHA256.
	sigLen = 44
)

// ErrInvalidSecret is wrapped by every error ParseSecret returns.
var ErrInvalidSecret = errors.New("signature: invalid secret")

// Secret is an HMAC-SHA256 signing key. Make one with NewSecret or
// ParseSecret; the zero Secret holds an empty key and signs nothing anyone
// should trust. A Secret is immutable and safe for concurrent use; copies
// share their (read-only) state.
type Secret struct {
	key []byte
	// text is the secret as written, "whsec_<base64>": what the owner was
	// handed and the key of the GitHub-style signature.
	text string
	// std and github are the precomputed HMAC states of the two keys.
	std, github pads
}

// pads are the marshalled SHA-256 states after absorbing key^ipad and
// key^opad. Starting each HMAC from them skips the two key-block
// compressions and the allocations of hmac.New on every signature. Nil
// (the zero Secret) falls back to crypto/hmac.
type pads struct {
	key          []byte
	inner, outer []byte
}

// NewSecret returns a fresh random 32-byte secret and its "whsec_" form.
func NewSecret() (Secret, string, error) {
	key := make([]byte, newKeyLen)
	if _, err := rand.Read(key); err != nil {
		return Secret{}, "", fmt.Errorf("signature: generate secret: %w", err)
	}
	s := newSecret(key, secretPrefix+base64.StdEncoding.EncodeToString(key))
	return s, s.String(), nil
}

// ParseSecret parses a secret written "whsec_<base64>", the form NewSecret
// and String produce. The key must decode (standard alphabet, padded or not)
// to between 24 and 64 bytes. The prefix is required so that a value pasted
// from the wrong place fails loudly instead of signing with a wrong key.
// The text is kept as given: String returns it, and the GitHub-style
// signature is keyed with it.
func ParseSecret(s string) (Secret, error) {
	enc, ok := strings.CutPrefix(s, secretPrefix)
	if !ok {
		return Secret{}, fmt.Errorf("%w: want prefix %q", ErrInvalidSecret, secretPrefix)
	}
	if enc == "" {
		return Secret{}, fmt.Errorf("%w: empty key after %q", ErrInvalidSecret, secretPrefix)
	}
	// Bound the input before decoding: a key longer than maxKeyLen is
	// refused anyway, and this keeps the decode buffer small.
	if len(enc) > base64.StdEncoding.EncodedLen(maxKeyLen) {
		return Secret{}, fmt.Errorf("%w: key longer than %d bytes", ErrInvalidSecret, maxKeyLen)
	}
	// The decoder skips CR and LF; refuse them so that what was parsed is
	// exactly what String gives back.
	if strings.ContainsAny(enc, "\r\n") {
		return Secret{}, fmt.Errorf("%w: key contains a line break", ErrInvalidSecret)
	}
	codec := base64.StdEncoding.Strict()
	if !strings.HasSuffix(enc, "=") {
		codec = base64.RawStdEncoding.Strict()
	}
	key, err := codec.DecodeString(enc)
	if err != nil {
		return Secret{}, fmt.Errorf("%w: key is not standard base64: %v", ErrInvalidSecret, err)
	}
	if len(key) < minKeyLen || len(key) > maxKeyLen {
		return Secret{}, fmt.Errorf("%w: key is %d bytes, want %d to %d", ErrInvalidSecret, len(key), minKeyLen, maxKeyLen)
	}
	return newSecret(key, s), nil
}

// String returns the secret in its "whsec_<base64>" form, as it was made
// or parsed. It reveals the key: show it to the subscription's owner,
// never to a log.
func (s Secret) String() string {
	return s.text
}

// newSecret precomputes the HMAC states of both keys: the decoded key
// bytes and the text.
func newSecret(key []byte, text string) Secret {
	return Secret{key: key, text: text, std: newPads(key), github: newPads([]byte(text))}
}

// newPads precomputes the HMAC pad states of key.
func newPads(key []byte) pads {
	p := pads{key: key}
	if len(key) > sha256.BlockSize {
		k := sha256.Sum256(key)
		key = k[:]
	}
	var pad [sha256.BlockSize]byte
	copy(pad[:], key)
	for i := range pad {
		pad[i] ^= 0x36
	}
	h := sha256.New()
	m, ok := h.(encoding.BinaryMarshaler)
	if !ok {
		return p
	}
	h.Write(pad[:])
	inner, err := m.MarshalBinary()
	if err != nil {
		return p
	}
	for i := range pad {
		pad[i] ^= 0x36 ^ 0x5c
	}
	h.Reset()
	h.Write(pad[:])
	outer, err := m.MarshalBinary()
	if err != nil {
		return p
	}
	p.inner, p.outer = inner, outer
	return p
}

// macer computes HMAC-SHA256 from a Secret's precomputed states. Pooled:
// one per concurrent signer, shared by all secrets.
type macer struct {
	h   hash.Hash
	u   encoding.BinaryUnmarshaler
	buf []byte // the "id.timestamp." prefix
	sum [sha256.Size]byte
}

var macers = sync.Pool{New: func() any {
	h := sha256.New()
	u, _ := h.(encoding.BinaryUnmarshaler)
	return &macer{h: h, u: u, buf: make([]byte, 0, 128)}
}}

// maxPooledBuf keeps a pathological id from pinning a large buffer in the
// pool.
const maxPooledBuf = 4 << 10

func getMacer() *macer { return macers.Get().(*macer) }

func putMacer(m *macer) {
	if cap(m.buf) <= maxPooledBuf {
		macers.Put(m)
	}
}

// mac returns HMAC-SHA256(key, prefix || body) in m.sum, valid until the
// next call.
func (m *macer) mac(s pads, prefix, body []byte) []byte {
	if s.inner != nil && m.u != nil && m.u.UnmarshalBinary(s.inner) == nil {
		m.h.Write(prefix)
		m.h.Write(body)
		inner := m.h.Sum(m.sum[:0])
		if m.u.UnmarshalBinary(s.outer) == nil {
			m.h.Write(inner)
			return m.h.Sum(m.sum[:0])
		}
	}
	// The zero Secret, or a hash whose state cannot be restored: the
	// plain, allocating way.
	h := hmac.New(sha256.New, s.key)
	h.Write(prefix)
	h.Write(body)
	return h.Sum(m.sum[:0])
}

// appendPrefix appends the signed-content prefix "id.timestamp.".
func appendPrefix(dst []byte, id, ts string) []byte {
	dst = append(dst, id...)
	dst = append(dst, '.')
	dst = append(dst, ts...)
	return append(dst, '.')
}

// Sign returns the value of the webhook-signature header for a message:
// "v1,<base64>" for each secret, space-separated, in the order given. ts is
// sent and signed in whole unix seconds. With no secrets it returns "".
func Sign(id string, ts time.Time, body []byte, secrets ...Secret) string {
	if len(secrets) == 0 {
		return ""
	}
	m := getMacer()
	m.buf = append(append(m.buf[:0], id...), '.')
	m.buf = append(strconv.AppendInt(m.buf, ts.Unix(), 10), '.')

	var b strings.Builder
	b.Grow(len(secrets)*(len("v1,")+sigLen) + len(secrets) - 1)
	var enc [sigLen]byte
	for i, s := range secrets {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("v1,")
		base64.StdEncoding.Encode(enc[:], m.mac(s.std, m.buf, body))
		b.Write(enc[:])
	}
	putMacer(m)
	return b.String()
}

// SignGitHub returns the value of the X-Hub-Signature-256 header:
// "sha256=<hex HMAC-SHA256(secret, body)>", keyed with the secret's text
// ("whsec_..." as String returns it), as GitHub keys it with the secret a
// user configured. It signs the body only, so unlike Sign it does not
// protect against replays.
func SignGitHub(body []byte, s Secret) string {
	m := getMacer()
	var out [len(githubPrefix) + 2*sha256.Size]byte
	copy(out[:], githubPrefix)
	hex.Encode(out[len(githubPrefix):], m.mac(s.github, nil, body))
	putMacer(m)
	return string(out[:])
}

// githubPrefix starts the value of X-Hub-Signature-256.
const githubPrefix = "sha256="
