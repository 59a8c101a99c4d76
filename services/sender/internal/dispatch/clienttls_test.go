package dispatch_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/selfsigned"
	"github.com/hookline/hookline/pkg/testreceiver"
)

// TestClientCertificate: a subscription's client certificate, its key
// sealed like its secrets, is presented to an endpoint that demands one;
// a subscription without one cannot connect there, and one whose key
// cannot be opened is dead-lettered with the reason.
func TestClientCertificate(t *testing.T) {
	e := newEnv(t)
	ca, err := selfsigned.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	rcv := testreceiver.NewMutualTLS(t, ca, nil)
	certPEM, keyPEM, err := ca.ClientCert("erp-client", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	withCert, _ := e.subscribe(rcv.URL, []time.Duration{0}, func(s *record.Subscription) {
		s.ClientTLS = &record.ClientTLS{Certificate: string(certPEM), SealedKey: e.box.Seal(keyPEM, []byte(s.ID))}
	})
	without, _ := e.subscribe(rcv.URL, []time.Duration{0})
	broken, _ := e.subscribe(rcv.URL, []time.Duration{0}, func(s *record.Subscription) {
		s.ClientTLS = &record.ClientTLS{Certificate: string(certPEM), SealedKey: e.box.Seal(keyPEM, []byte("another subscription"))}
	})
	ok, refused, unopened := e.delivery(withCert, `{"n":1}`), e.delivery(without, `{"n":2}`), e.delivery(broken, `{"n":3}`)
	e.publish(ok, refused, unopened)
	e.run(e.sender(rcv), "sender").waitHandled(t, 3, 30*time.Second)

	reqs := byID(rcv.Requests())
	if got := reqs[ok.ID]; len(got) != 1 || got[0].ClientCN != "erp-client" {
		t.Errorf("requests of the subscription with a certificate: %+v, want one presenting erp-client", got)
	}
	log := e.attempts()
	if as := log[ok.ID]; len(as) != 1 || as[0].Outcome != record.OutcomeDelivered {
		t.Errorf("attempts %+v, want delivered", as)
	}
	if as := log[refused.ID]; len(as) != 1 || as[0].Outcome != record.OutcomeRetrying || as[0].StatusCode != 0 {
		t.Errorf("without a certificate: attempts %+v, want a refused connection, retried", as)
	}
	if dead := e.deliveries(e.kafka.Topics.DLQ)[unopened.ID]; len(dead) != 1 || !strings.Contains(dead[0].LastError, "client certificate of "+broken.ID) {
		t.Errorf("dead letters %+v, want one saying the client certificate cannot be used", dead)
	}
}
