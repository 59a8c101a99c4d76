package secretbox

import (
	"bytes"
	"errors"
	"testing"
)

func newBox(t *testing.T, fill byte) *Box {
	t.Helper()
	b, err := New(bytes.Repeat([]byte{fill}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealOpen(t *testing.T) {
	b := newBox(t, 1)
	sealed := b.Seal([]byte("whsec_abc"), []byte("sub_1"))
	if bytes.Contains(sealed, []byte("whsec_abc")) {
		t.Fatal("sealed value contains the plaintext")
	}
	got, err := b.Open(sealed, []byte("sub_1"))
	if err != nil || string(got) != "whsec_abc" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if bytes.Equal(sealed, b.Seal([]byte("whsec_abc"), []byte("sub_1"))) {
		t.Fatal("two seals of the same value are equal: nonce reused")
	}
}

func TestOpenRefuses(t *testing.T) {
	b := newBox(t, 1)
	sealed := b.Seal([]byte("secret"), []byte("sub_1"))
	flipped := append([]byte(nil), sealed...)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name   string
		box    *Box
		sealed []byte
		ad     string
	}{
		{"other subscription", b, sealed, "sub_2"},
		{"other key", newBox(t, 2), sealed, "sub_1"},
		{"tampered", b, flipped, "sub_1"},
		{"truncated", b, sealed[:10], "sub_1"},
		{"empty", b, nil, "sub_1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.box.Open(tc.sealed, []byte(tc.ad)); !errors.Is(err, ErrOpen) {
				t.Fatalf("err = %v, want ErrOpen", err)
			}
		})
	}
}

func TestParseKey(t *testing.T) {
	if _, err := ParseKey("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="); err != nil {
		t.Fatalf("valid key: %v", err)
	}
	for _, bad := range []string{"", "short", "AAAA", "!!!!"} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}

func TestDeriveIsPerPurposeAndPerKey(t *testing.T) {
	k1, k2 := make([]byte, 32), make([]byte, 32)
	k2[0] = 1
	b1, _ := New(k1)
	b2, _ := New(k2)
	a, again, other := b1.Derive("portal"), b1.Derive("portal"), b1.Derive("other")
	if len(a) != 32 || string(a) != string(again) {
		t.Fatalf("Derive is not a stable 32-byte key: %x %x", a, again)
	}
	if string(a) == string(other) || string(a) == string(b2.Derive("portal")) || string(a) == string(k1) {
		t.Error("derived keys of different purposes or operator keys collide, or equal the operator key")
	}
}
