package signature_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/signature"
)

// FuzzParseSecret checks that ParseSecret never panics, that every error
// wraps ErrInvalidSecret, and that an accepted secret round-trips through
// String. Seeds: testdata/fuzz/FuzzParseSecret.
func FuzzParseSecret(f *testing.F) {
	f.Add(vectorSecret)
	f.Fuzz(func(t *testing.T, s string) {
		sec, err := signature.ParseSecret(s)
		if err != nil {
			if !errors.Is(err, signature.ErrInvalidSecret) {
				t.Fatalf("ParseSecret(%q) error %v does not wrap ErrInvalidSecret", s, err)
			}
			return
		}
		back, err := signature.ParseSecret(sec.String())
		if err != nil {
			t.Fatalf("ParseSecret(%q).String() = %q does not parse: %v", s, sec.String(), err)
		}
		if back.String() != sec.String() {
			t.Fatalf("round trip of %q: %q != %q", s, back.String(), sec.String())
		}
		body := []byte("body")
		if signature.Sign("id", time.Unix(1, 0), body, sec) != signature.Sign("id", time.Unix(1, 0), body, back) {
			t.Fatalf("round trip of %q signs differently", s)
		}
	})
}

// FuzzVerify feeds arbitrary header values to Verify: it must never panic,
// must fail with one of its sentinels, and may succeed only when a "v1,"
// entry of the signature header is the right signature. Seeds:
// testdata/fuzz/FuzzVerify.
func FuzzVerify(f *testing.F) {
	f.Add(vectorID, "1614265330", vectorSig, []byte(vectorBody))
	sec, err := signature.ParseSecret(vectorSecret)
	if err != nil {
		f.Fatal(err)
	}
	vectorKey, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(vectorSecret, "whsec_"))
	if err != nil {
		f.Fatal(err)
	}
	v := signature.Verifier{
		Secrets: []signature.Secret{sec},
		Now:     func() time.Time { return time.Unix(vectorTS, 0) },
	}
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set(signature.HeaderID, id)
		h.Set(signature.HeaderTimestamp, ts)
		h.Set(signature.HeaderSignature, sig)
		err := v.Verify(h, body)
		if err == nil {
			// Verify signs the timestamp exactly as sent.
			mac := hmac.New(sha256.New, vectorKey)
			fmt.Fprintf(mac, "%s.%s.%s", id, ts, body)
			want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
			if !slices.Contains(strings.Fields(sig), want) {
				t.Fatalf("Verify accepted id %q ts %q sig %q, want an entry %q", id, ts, sig, want)
			}
			return
		}
		if !errors.Is(err, signature.ErrMissingHeaders) && !errors.Is(err, signature.ErrTimestamp) && !errors.Is(err, signature.ErrNoMatch) {
			t.Fatalf("Verify error %v wraps no sentinel", err)
		}
	})
}
