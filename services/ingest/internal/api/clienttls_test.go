package api

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/selfsigned"
)

// TestClientTLSValidation: client_tls is checked when written (the chain
// parses, the key is the leaf's, the leaf is valid now and for client
// authentication), the key is sealed, and no answer ever shows it.
func TestClientTLSValidation(t *testing.T) {
	s := offlineServer(t)
	s.Now = time.Now
	ca, err := selfsigned.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cert, key, _ := ca.ClientCert("good", now.Add(-time.Hour), now.Add(24*time.Hour))
	_, otherKey, _ := ca.ClientCert("other", now.Add(-time.Hour), now.Add(24*time.Hour))
	expired, expiredKey, _ := ca.ClientCert("old", now.Add(-48*time.Hour), now.Add(-time.Hour))
	early, earlyKey, _ := ca.ClientCert("early", now.Add(time.Hour), now.Add(48*time.Hour))
	server, _ := selfsigned.New() // for servers only (serverAuth)
	serverKey, _ := x509.MarshalPKCS8PrivateKey(server.TLS.PrivateKey.(*ecdsa.PrivateKey))
	body := func(certPEM, keyPEM []byte) string {
		b, _ := json.Marshal(map[string]any{"client_tls": map[string]string{"certificate": string(certPEM), "key": string(keyPEM)}})
		return string(b)
	}
	tests := []struct {
		name, body, field, detail string
	}{
		{"valid", body(cert, key), "", ""},
		{"a key that is not the certificate's", body(cert, otherKey), "client_tls.key", "private key of the certificate"},
		{"expired", body(expired, expiredKey), "client_tls.certificate", "expired"},
		{"not valid yet", body(early, earlyKey), "client_tls.certificate", "not valid before"},
		{"a server certificate", body(server.PEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: serverKey})), "client_tls.certificate", "client authentication"},
		{"not PEM", body([]byte("hello"), key), "client_tls.certificate", "PEM CERTIFICATE"},
		{"a key where the certificate goes", body(key, key), "client_tls.certificate", "PEM CERTIFICATE"},
		{"no key with a new certificate", `{"client_tls":{"certificate":` + jsonString(cert) + `}}`, "client_tls.key", "required"},
		{"no certificate", `{"client_tls":{"key":` + jsonString(key) + `}}`, "client_tls.certificate", "required"},
		{"an unknown member", `{"client_tls":{"certificate":"x","pass":"y"}}`, "client_tls.pass", ""},
		{"too large", body([]byte(strings.Repeat("x", certificateLength.Max+1)), key), "client_tls.certificate", "at most"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var in subscriptionInput
			if errs := decodeStrict([]byte(tc.body), &in); errs != nil {
				t.Fatal(errs)
			}
			sub := newSubscription("sub_1", "acme", now)
			errs := s.apply(&in, sub, false)
			if tc.field == "" {
				if len(errs) > 0 {
					t.Fatalf("refused: %+v", errs)
				}
				opened, err := s.Box.Open(sub.ClientTLS.SealedKey, []byte("sub_1"))
				if err != nil || string(opened) != string(key) || sub.ClientTLS.Certificate != string(cert) {
					t.Fatalf("stored %+v: the key must be sealed to the subscription (%v)", sub.ClientTLS, err)
				}
				shown, _ := json.Marshal(viewOf(sub))
				if strings.Contains(string(shown), "PRIVATE KEY") || strings.Contains(string(shown), `"key"`) || !strings.Contains(string(shown), `"not_after"`) {
					t.Errorf("the view shows %s: want the certificate and its expiry, never the key", shown)
				}
				return
			}
			if len(errs) != 1 || errs[0].Field != tc.field || !strings.Contains(errs[0].Detail, tc.detail) {
				t.Fatalf("errors %+v, want %s: %q", errs, tc.field, tc.detail)
			}
		})
	}

	t.Run("a GET answer sent back keeps the key; null removes it", func(t *testing.T) {
		sub := newSubscription("sub_1", "acme", now)
		var in subscriptionInput
		_ = decodeStrict([]byte(body(cert, key)), &in)
		if errs := s.apply(&in, sub, false); len(errs) > 0 {
			t.Fatal(errs)
		}
		sealed := sub.ClientTLS.SealedKey
		shown, _ := json.Marshal(map[string]any{"client_tls": viewOf(sub).ClientTLS})
		in = subscriptionInput{}
		if errs := decodeStrict(shown, &in); errs != nil {
			t.Fatal(errs)
		}
		if errs := s.apply(&in, sub, false); len(errs) > 0 || string(sub.ClientTLS.SealedKey) != string(sealed) {
			t.Fatalf("sent back as shown: %+v; key kept %v", errs, string(sub.ClientTLS.SealedKey) == string(sealed))
		}
		in = subscriptionInput{}
		_ = decodeStrict([]byte(`{"client_tls":null}`), &in)
		if errs := s.apply(&in, sub, false); len(errs) > 0 || sub.ClientTLS != nil {
			t.Fatalf("null: %+v, client_tls %+v", errs, sub.ClientTLS)
		}
	})
}

func jsonString(b []byte) string {
	q, _ := json.Marshal(string(b))
	return string(q)
}
