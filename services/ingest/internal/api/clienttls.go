package api

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"slices"
	"time"

	"github.com/hookline/hookline/pkg/problem"
	"github.com/hookline/hookline/pkg/record"
)

// clientTLSInput is the client certificate the sender presents to an
// endpoint that requires mutual TLS. NotAfter is accepted and ignored, so
// that a subscription as GET shows it can be sent back.
type clientTLSInput struct {
	Certificate string          `json:"certificate"`
	Key         *string         `json:"key"`
	NotAfter    json.RawMessage `json:"not_after"`
}

// clientTLSView shows the certificate and when it expires; the key never.
type clientTLSView struct {
	Certificate string    `json:"certificate"`
	NotAfter    time.Time `json:"not_after"`
}

func clientTLSViewOf(c *record.ClientTLS) *clientTLSView {
	if c == nil {
		return nil
	}
	v := &clientTLSView{Certificate: c.Certificate}
	if leaf, err := leafOf([]byte(c.Certificate)); err == nil {
		v.NotAfter = leaf.NotAfter.UTC()
	}
	return v
}

// clientTLSOf validates a client_tls object and seals its key, bound to
// the subscription's id: the certificate chain must parse, the key must be
// an unencrypted PEM private key of the first certificate, and that
// certificate must be valid now and usable for client authentication. An
// object without key keeps the stored key if the certificate is the same.
// JSON null removes the certificate.
func (s *Server) clientTLSOf(raw json.RawMessage, sub *record.Subscription) (*record.ClientTLS, []problem.FieldError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var in clientTLSInput
	if fe := decodeStrict(raw, &in); fe != nil {
		fe[0].Field = joinField("client_tls", fe[0].Field)
		return sub.ClientTLS, fe
	}
	bad := func(field, format string, args ...any) (*record.ClientTLS, []problem.FieldError) {
		return sub.ClientTLS, []problem.FieldError{{Field: "client_tls." + field, Detail: fmt.Sprintf(format, args...)}}
	}
	switch {
	case in.Certificate == "":
		return bad("certificate", "is required: the PEM certificate (chain) to present")
	case len(in.Certificate) > certificateLength.Max:
		return bad("certificate", "must be at most %d bytes", certificateLength.Max)
	case in.Key != nil && !keyLength.holds(len(*in.Key)):
		return bad("key", "must be at most %d bytes", keyLength.Max)
	}
	leaf, err := leafOf([]byte(in.Certificate))
	if err != nil {
		return bad("certificate", "%v", err)
	}
	now := s.Now()
	switch {
	case !now.Before(leaf.NotAfter):
		return bad("certificate", "expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return bad("certificate", "is not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	case len(leaf.ExtKeyUsage) > 0 && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny):
		return bad("certificate", "is not for client authentication (its extended key usage lacks clientAuth)")
	}
	var sealed []byte
	switch {
	case in.Key != nil:
		if _, err := tls.X509KeyPair([]byte(in.Certificate), []byte(*in.Key)); err != nil {
			return bad("key", "must be the unencrypted PEM private key of the certificate: %v", err)
		}
		sealed = s.Box.Seal([]byte(*in.Key), []byte(sub.ID))
	case sub.ClientTLS != nil && sub.ClientTLS.Certificate == in.Certificate:
		sealed = sub.ClientTLS.SealedKey
	default:
		return bad("key", "is required with a new certificate")
	}
	return &record.ClientTLS{Certificate: in.Certificate, SealedKey: sealed}, nil
}

// leafOf parses a PEM chain and returns its first certificate.
func leafOf(chain []byte) (*x509.Certificate, error) {
	var leaf *x509.Certificate
	rest := bytes.TrimSpace(chain)
	for len(rest) > 0 {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil || block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("must hold only PEM CERTIFICATE blocks")
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("does not parse: %v", err)
		}
		if leaf == nil {
			leaf = c
		}
		rest = bytes.TrimSpace(rest)
	}
	if leaf == nil {
		return nil, fmt.Errorf("holds no certificate")
	}
	return leaf, nil
}
