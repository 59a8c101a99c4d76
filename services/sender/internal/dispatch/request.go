package dispatch

import (
	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline/pkg/deliver"
)

// request builds the attempt of a job from its endpoint's settings
// (deliver.Endpoint.Request): one delivery with its own id and body, or a
// batch (batch.go) with the batch's. The items of a request share their
// target (plan). The first delivery's trace leaves as traceparent.
func request(ep *endpoint, items []*item, httpAllowed func(host string) bool) deliver.Request {
	req := ep.Request(&items[0].d, httpAllowed)
	if batching(ep.Sub) {
		req.ID, req.Body = batchID(items), batchBody(items)
	}
	if ctx := items[0].rec.Context; ctx != nil {
		req.Span = trace.SpanContextFromContext(ctx)
	}
	return req
}
