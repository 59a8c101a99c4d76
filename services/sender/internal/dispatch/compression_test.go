package dispatch_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/signature"
	"github.com/hookline/hookline/pkg/testreceiver"
)

// TestCompressedSubscription: compression "gzip" sends a large body
// gzipped, a small one as it is; a receiver that decompresses reads the
// JSON, and the signatures check against the bytes as sent and against
// the decoded JSON.
func TestCompressedSubscription(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, nil)
	sub, secrets := e.subscribe(rcv.URL, []time.Duration{0}, func(s *record.Subscription) { s.Compression = "gzip" })
	large := e.delivery(sub, `{"items":"`+strings.Repeat("widget ", 400)+`"}`)
	small := e.delivery(sub, `{"n":1}`)
	e.publish(large, small)
	e.run(e.sender(rcv), "sender").waitHandled(t, 2, 30*time.Second)

	v := &signature.Verifier{Secrets: secrets}
	for _, tc := range []struct {
		d        record.Delivery
		encoding string
	}{{large, "gzip"}, {small, ""}} {
		reqs := byID(rcv.Requests())[tc.d.ID]
		if len(reqs) != 1 {
			t.Fatalf("%d requests for %s", len(reqs), tc.d.ID)
		}
		r := reqs[0]
		if r.Header.Get("Content-Encoding") != tc.encoding || string(r.Body) != tc.d.Payload {
			t.Errorf("Content-Encoding %q, body %d bytes; want %q and the payload", r.Header.Get("Content-Encoding"), len(r.Body), tc.encoding)
		}
		if err := v.Verify(r.Header, r.Wire); err != nil {
			t.Errorf("signature over the bytes as sent: %v", err)
		}
		if err := v.Verify(r.Header, r.Body); err != nil {
			t.Errorf("signature over the decoded JSON: %v", err)
		}
		if as := e.attempts()[tc.d.ID]; len(as) != 1 || as[0].RequestBytes != int64(r.WireBytes) {
			t.Errorf("attempts %+v: request_bytes should be the %d bytes sent", as, r.WireBytes)
		}
	}
}
