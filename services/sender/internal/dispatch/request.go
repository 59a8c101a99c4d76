package dispatch

import (
	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline/services/sender/internal/deliver"
)

// request builds the attempt from the endpoint's settings: one delivery
// with its own id and body, or a batch (batch.go). It is the one place a
// request is built. The first delivery's trace leaves as traceparent.
func request(ep *endpoint, items []*item) deliver.Request {
	req := deliver.Request{
		URL:      items[0].d.URL,
		Secrets:  ep.secrets,
		Headers:  ep.sub.Headers,
		AuthType: ep.authType,
		Username: ep.username,
		Password: ep.password,
		Timeout:  ep.timeout,
	}
	if batching(ep.sub) {
		req.ID, req.Body = batchID(items), batchBody(items)
	} else {
		req.ID, req.Body = items[0].d.ID, []byte(items[0].d.Payload)
	}
	if ctx := items[0].rec.Context; ctx != nil {
		req.Span = trace.SpanContextFromContext(ctx)
	}
	return req
}
