package subscription

import "strings"

// reservedHeaders are set by Hookline itself or by HTTP, by their
// normalized name (see ReservedHeader).
var reservedHeaders = map[string]bool{
	"authorization": true, "traceparent": true, "tracestate": true, "content-type": true, "content-length": true,
	"content-encoding": true, "host": true, "connection": true, "keep-alive": true, "proxy-authorization": true,
	"proxy-authenticate": true, "proxy-connection": true, "te": true, "trailer": true, "transfer-encoding": true,
	"upgrade": true, "user-agent": true,
}

// NormalHeader is the name a receiver may read a header under: case
// folded, and '_' as '-', since CGI and WSGI servers turn both into the
// same HTTP_ variable (a custom Webhook_Id would reach a WSGI app beside
// the real webhook-id as one HTTP_WEBHOOK_ID holding both values).
func NormalHeader(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// ReservedHeader reports whether a subscription's custom header name is
// one Hookline or HTTP sets, in any case and with '_' for '-': the
// Standard Webhooks headers (webhook-*), GitHub's signatures
// (x-hub-signature*), credentials, content, tracing and hop-by-hop
// headers. Ingest refuses such names; the sender skips any an older
// version of ingest let through.
func ReservedHeader(name string) bool {
	n := NormalHeader(name)
	return reservedHeaders[n] || strings.HasPrefix(n, "webhook-") || strings.HasPrefix(n, "x-hub-signature")
}
