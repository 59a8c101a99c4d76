package dispatch

import (
	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline/pkg/routeurl"
	"github.com/hookline/hookline/services/sender/internal/deliver"
)

// request builds the attempt from the endpoint's settings: one delivery
// with its own id and body, or a batch (batch.go). It is the one place a
// request is built. The first delivery's trace leaves as traceparent.
//
// The URL is where the subscription says now, not where the delivery was
// matched to: a retry or a replay follows the owner's changes. The items
// of a request share their target (plan). A target that cannot be built
// or is not allowed (routeurl.Resolve, with httpAllowed for plain http)
// leaves the request Refused: it fails without being sent.
func request(ep *endpoint, items []*item, httpAllowed func(host string) bool) deliver.Request {
	target, err := routeurl.Resolve(ep.sub, &items[0].d, httpAllowed)
	req := deliver.Request{
		URL:      target,
		Secrets:  ep.secrets,
		Headers:  ep.sub.Headers,
		AuthType: ep.authType,
		Username: ep.username,
		Password: ep.password,
		Timeout:  ep.timeout,
		Gzip:     ep.sub.Compression == "gzip",
		Client:   ep.client,
	}
	if batching(ep.sub) {
		req.ID, req.Body = batchID(items), batchBody(items)
	} else {
		req.ID, req.Body = items[0].d.ID, []byte(items[0].d.Payload)
	}
	if ctx := items[0].rec.Context; ctx != nil {
		req.Span = trace.SpanContextFromContext(ctx)
	}
	if err != nil {
		req.URL, req.Refused = items[0].d.URL, err.Error()
	}
	return req
}
