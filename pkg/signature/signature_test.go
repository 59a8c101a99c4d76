package signature_test

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/signature"
)

// The test vector of the Standard Webhooks reference libraries.
const (
	vectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTS     = 1614265330
	vectorBody   = `{"test": 2432232314}`
	vectorSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func mustSecret(t testing.TB, s string) signature.Secret {
	t.Helper()
	sec, err := signature.ParseSecret(s)
	if err != nil {
		t.Fatalf("ParseSecret(%q): %v", s, err)
	}
	return sec
}

func newSecret(t testing.TB) signature.Secret {
	t.Helper()
	sec, _, err := signature.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

// secretOfLen returns a whsec_ string holding a random key of n bytes.
func secretOfLen(n int) (string, []byte) {
	key := make([]byte, n)
	rand.Read(key)
	return "whsec_" + base64.StdEncoding.EncodeToString(key), key
}

func TestSignKnownAnswer(t *testing.T) {
	sec := mustSecret(t, vectorSecret)
	got := signature.Sign(vectorID, time.Unix(vectorTS, 0), []byte(vectorBody), sec)
	if got != vectorSig {
		t.Fatalf("Sign = %q, want %q", got, vectorSig)
	}
	// Sub-second precision is dropped, as the header carries whole seconds.
	got = signature.Sign(vectorID, time.Unix(vectorTS, 999_999_999), []byte(vectorBody), sec)
	if got != vectorSig {
		t.Fatalf("Sign with nanoseconds = %q, want %q", got, vectorSig)
	}
}

// TestSignMatchesHMAC checks the precomputed-pad fast path against
// crypto/hmac for every key size ParseSecret accepts and the zero Secret.
func TestSignMatchesHMAC(t *testing.T) {
	bodies := [][]byte{nil, []byte("{}"), make([]byte, 63), make([]byte, 64), make([]byte, 1000)}
	rand.Read(bodies[4])
	ts := time.Unix(1700000000, 0)
	reference := func(key, msg []byte) []byte {
		h := hmac.New(sha256.New, key)
		h.Write(msg)
		return h.Sum(nil)
	}
	check := func(t *testing.T, sec signature.Secret, key []byte) {
		t.Helper()
		for _, body := range bodies {
			msg := fmt.Appendf(nil, "msg_1.%d.%s", ts.Unix(), body)
			want := "v1," + base64.StdEncoding.EncodeToString(reference(key, msg))
			if got := signature.Sign("msg_1", ts, body, sec); got != want {
				t.Errorf("Sign(len(body)=%d) = %q, want %q", len(body), got, want)
			}
			// GitHub style: keyed with the secret as written, not the key bytes.
			wantGH := "sha256=" + hex.EncodeToString(reference([]byte(sec.String()), body))
			if got := signature.SignGitHub(body, sec); got != wantGH {
				t.Errorf("SignGitHub(len(body)=%d) = %q, want %q", len(body), got, wantGH)
			}
		}
	}
	for n := 24; n <= 64; n++ {
		t.Run(fmt.Sprintf("key%d", n), func(t *testing.T) {
			s, key := secretOfLen(n)
			check(t, mustSecret(t, s), key)
		})
	}
	t.Run("zero", func(t *testing.T) { check(t, signature.Secret{}, nil) })
}

// TestSignGitHubKnownAnswer checks X-Hub-Signature-256 against a value
// computed outside Go (Python's hmac, as GitHub's docs do) with the secret
// string as the key: GitHub-webhook libraries are given the whsec_ string
// as handed out and use its bytes as the HMAC key.
func TestSignGitHubKnownAnswer(t *testing.T) {
	// python3 -c 'import hmac,hashlib; print(hmac.new(b"whsec_SXQncyBhIFNlY3JldCB0byBFdmVyeWJvZHk=",
	//   b"Hello, World!", hashlib.sha256).hexdigest())'
	sec := mustSecret(t, "whsec_SXQncyBhIFNlY3JldCB0byBFdmVyeWJvZHk=")
	want := "sha256=054caf1cbd9928396dba931e3f04a2a765d9bf4a4086510947a1635cc2a73c86"
	if got := signature.SignGitHub([]byte("Hello, World!"), sec); got != want {
		t.Fatalf("SignGitHub = %q, want %q", got, want)
	}
	if err := signature.VerifyGitHub(want, []byte("Hello, World!"), newSecret(t), sec); err != nil {
		t.Errorf("VerifyGitHub of its own signature: %v", err)
	}
	for _, bad := range []string{"", "sha1=" + want[7:], want[:20], strings.Replace(want, "0", "1", 1)} {
		if err := signature.VerifyGitHub(bad, []byte("Hello, World!"), sec); !errors.Is(err, signature.ErrGitHubSignature) {
			t.Errorf("VerifyGitHub(%q) = %v, want ErrGitHubSignature", bad, err)
		}
	}
}

// TestSecretKeepsItsText checks that a secret brought without base64
// padding keeps its own spelling: it is what its owner configured, and so
// the GitHub-style key.
func TestSecretKeepsItsText(t *testing.T) {
	padded := "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 32))
	raw := strings.TrimRight(padded, "=")
	a, b := mustSecret(t, padded), mustSecret(t, raw)
	if a.String() != padded || b.String() != raw {
		t.Fatalf("String() = %q, %q; want %q, %q", a.String(), b.String(), padded, raw)
	}
	ts, body := time.Unix(1700000000, 0), []byte("{}")
	if signature.Sign("id", ts, body, a) != signature.Sign("id", ts, body, b) {
		t.Error("the same key signs differently")
	}
}

func TestSignSecrets(t *testing.T) {
	a, b := newSecret(t), newSecret(t)
	ts := time.Unix(1700000000, 0)
	body := []byte(`{"type":"user.created"}`)
	tests := []struct {
		name    string
		secrets []signature.Secret
		entries int
	}{
		{"none", nil, 0},
		{"one", []signature.Secret{a}, 1},
		{"rotation", []signature.Secret{a, b}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := signature.Sign("msg_1", ts, body, tc.secrets...)
			entries := strings.Fields(got)
			if len(entries) != tc.entries {
				t.Fatalf("Sign = %q: %d entries, want %d", got, len(entries), tc.entries)
			}
			if strings.Join(entries, " ") != got {
				t.Errorf("Sign = %q: want entries separated by single spaces", got)
			}
			for i, e := range entries {
				if want := signature.Sign("msg_1", ts, body, tc.secrets[i]); e != want {
					t.Errorf("entry %d = %q, want %q (order of secrets)", i, e, want)
				}
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	sec, s, err := signature.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if s != sec.String() {
		t.Errorf("NewSecret string %q != String() %q", s, sec.String())
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
	if err != nil || len(key) != 32 {
		t.Fatalf("NewSecret = %q: want whsec_ + base64 of 32 bytes (err %v, %d bytes)", s, err, len(key))
	}
	parsed := mustSecret(t, s)
	body := []byte("x")
	if signature.Sign("id", time.Unix(1, 0), body, parsed) != signature.Sign("id", time.Unix(1, 0), body, sec) {
		t.Error("parsed secret signs differently from the generated one")
	}
	if _, s2, _ := signature.NewSecret(); s2 == s {
		t.Error("two NewSecret calls returned the same secret")
	}
}

func TestParseSecret(t *testing.T) {
	s24, _ := secretOfLen(24)
	s32, _ := secretOfLen(32)
	s64, _ := secretOfLen(64)
	s16, _ := secretOfLen(16)
	s65, _ := secretOfLen(65)
	s23, _ := secretOfLen(23)
	tests := []struct {
		name    string
		in      string
		wantErr string // substring; "" means valid
	}{
		{"vector", vectorSecret, ""},
		{"24 bytes", s24, ""},
		{"32 bytes", s32, ""},
		{"64 bytes", s64, ""},
		{"32 bytes unpadded", strings.TrimRight(s32, "="), ""},
		{"no prefix", strings.TrimPrefix(s32, "whsec_"), "prefix"},
		{"wrong prefix case", "WHSEC_" + strings.TrimPrefix(s32, "whsec_"), "prefix"},
		{"empty", "", "prefix"},
		{"prefix only", "whsec_", "empty key"},
		{"too short", s16, "16 bytes"},
		{"one byte short", s23, "23 bytes"},
		{"one byte long", s65, "65 bytes"},
		{"far too long", "whsec_" + strings.Repeat("A", 4096), "longer than 64"},
		{"url alphabet", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa-_", "base64"},
		{"bad char", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa!w", "base64"},
		{"space", "whsec_MfKQ9r8GKYqrTwjUPD8I LPZIo2LaLaSw", "base64"},
		{"trailing newline", vectorSecret + "\n", "line break"},
		{"bad padding", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS=", "base64"},
		{"noncanonical trailing bits", strings.TrimRight(s32, "=")[:42] + "B", "base64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sec, err := signature.ParseSecret(tc.in)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseSecret(%q): %v", tc.in, err)
				}
				if back, err := signature.ParseSecret(sec.String()); err != nil || back.String() != sec.String() {
					t.Errorf("round trip of %q: %q, %v", tc.in, back.String(), err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseSecret(%q) succeeded, want error containing %q", tc.in, tc.wantErr)
			}
			if !errors.Is(err, signature.ErrInvalidSecret) {
				t.Errorf("error %v does not wrap ErrInvalidSecret", err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not mention %q", err, tc.wantErr)
			}
		})
	}
}

func BenchmarkSign(b *testing.B) {
	body := make([]byte, 1024)
	rand.Read(body)
	ts := time.Unix(1700000000, 0)
	a, c := newSecret(b), newSecret(b)
	for _, bc := range []struct {
		name    string
		secrets []signature.Secret
	}{
		{"1secret", []signature.Secret{a}},
		{"2secrets", []signature.Secret{a, c}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				signature.Sign("msg_2ZfQ8mYkR3dLw0vXcT1pHn", ts, body, bc.secrets...)
			}
		})
	}
}

func BenchmarkSignGitHub(b *testing.B) {
	body := make([]byte, 1024)
	rand.Read(body)
	sec := newSecret(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		signature.SignGitHub(body, sec)
	}
}
