package deliver_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/deliver"
	"github.com/hookline/hookline/pkg/selfsigned"
	"github.com/hookline/hookline/pkg/testreceiver"
)

// TestMutualTLS: an endpoint that demands a client certificate refuses the
// shared client and takes the client of the subscription's certificate,
// which keeps its connection for the next request.
func TestMutualTLS(t *testing.T) {
	ca, err := selfsigned.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	rcv := testreceiver.NewMutualTLS(t, ca, nil)
	certPEM, keyPEM, err := ca.ClientCert("acme-sender", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	opts := deliver.ClientOptions{Guard: testreceiver.Guard(t), RootCAs: rcv.Cert.Pool(), MaxConnsPerHost: 4}
	shared, certs := deliver.NewClient(opts), deliver.NewClients(opts, 2)
	t.Cleanup(shared.CloseIdleConnections)
	t.Cleanup(certs.CloseIdleConnections)
	req := deliver.Request{URL: rcv.URL + "/hook", ID: "msg_1", Body: []byte(`{}`), Timeout: 10 * time.Second}

	if res := deliver.Send(t.Context(), shared, req, time.Now()); res.Class != deliver.Retryable || !strings.Contains(res.Err, "connection") {
		t.Errorf("without a certificate: %+v, want a refused (retryable) connection", res)
	}
	loads := 0
	load := func() (tls.Certificate, error) { loads++; return tls.X509KeyPair(certPEM, keyPEM) }
	for range 2 {
		c, err := certs.For("sub_1/cert", load)
		if err != nil {
			t.Fatal(err)
		}
		req.Client = c
		if res := deliver.Send(t.Context(), shared, req, time.Now()); res.Class != deliver.Delivered {
			t.Fatalf("with the certificate: %+v", res)
		}
	}
	got := rcv.Requests()
	if len(got) != 2 || got[0].ClientCN != "acme-sender" || got[1].ClientCN != "acme-sender" {
		t.Fatalf("requests %+v, want two presenting acme-sender", got)
	}
	if loads != 1 {
		t.Errorf("the key was loaded %d times, want once", loads)
	}
	// One connection refused without a certificate, one pooled with it.
	if n := rcv.Conns(); n != 2 {
		t.Errorf("%d connections, want 2: the certificate's client reuses its connection", n)
	}
}

// TestClientsAreBounded: beyond their bound the least recently used
// client is dropped; a failed load stores nothing.
func TestClientsAreBounded(t *testing.T) {
	ca, _ := selfsigned.NewCA()
	certPEM, keyPEM, _ := ca.ClientCert("c", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	load := func() (tls.Certificate, error) { return tls.X509KeyPair(certPEM, keyPEM) }
	certs := deliver.NewClients(deliver.ClientOptions{Guard: testreceiver.Guard(t)}, 2)
	first, _ := certs.For("a", load)
	if _, err := certs.For("b", load); err != nil {
		t.Fatal(err)
	}
	if again, _ := certs.For("a", load); again != first { // a is now the most recent
		t.Error("a held client was built again")
	}
	if _, err := certs.For("c", load); err != nil { // evicts b
		t.Fatal(err)
	}
	if certs.Len() != 2 {
		t.Errorf("%d clients held, want 2", certs.Len())
	}
	if again, _ := certs.For("a", load); again != first {
		t.Error("the most recently used client was evicted")
	}
	if _, err := certs.For("bad", func() (tls.Certificate, error) { return tls.Certificate{}, errors.New("no key") }); err == nil || certs.Len() != 2 {
		t.Errorf("a failed load: err %v, %d held", err, certs.Len())
	}
	for i := range 10 {
		_, _ = certs.For(fmt.Sprint(i), load)
	}
	if certs.Len() != 2 {
		t.Errorf("%d clients held after many certificates, want the bound 2", certs.Len())
	}
}
