package deliver

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/routeurl"
	"github.com/hookline/hookline/pkg/secretbox"
	"github.com/hookline/hookline/pkg/signature"
	"github.com/hookline/hookline/pkg/subscription"
)

// Endpoint is a subscription's settings opened for sending: its active
// secrets and its credential unsealed, the client of its certificate. The
// sender's lanes open one per version of their subscription and share it
// with the requests they start; ingest's immediate mode opens one per
// request.
type Endpoint struct {
	Sub        *record.Subscription
	Unsendable string             // why none of its deliveries can be sent; "" when they can
	Secrets    []signature.Secret // active ones, newest first
	AuthType   string
	Username   string
	Password   string
	Timeout    time.Duration
	// Expires is when the next active secret expires: the endpoint must be
	// opened again then. Zero for never.
	Expires time.Time
	// Client presents the subscription's client certificate (mutual TLS);
	// nil: the shared client.
	Client *http.Client
}

// Stale reports whether a secret it signs with has expired since it was
// opened.
func (ep *Endpoint) Stale(now time.Time) bool {
	return !ep.Expires.IsZero() && !now.Before(ep.Expires)
}

// Opener opens endpoints: Box unseals their secrets, credentials and
// certificate keys, Certs holds the clients of their certificates (nil:
// subscriptions with one cannot be sent to).
type Opener struct {
	Box   *secretbox.Box
	Certs *Clients
}

// Open prepares a subscription's endpoint as of now. When its deliveries
// cannot be sent, Unsendable says why.
func (o *Opener) Open(sub *record.Subscription, now time.Time) *Endpoint {
	ep := &Endpoint{Sub: sub}
	if !sub.Enabled {
		ep.Unsendable = subscription.DisabledError(sub.DisabledReason)
		return ep
	}
	ep.Unsendable = o.unseal(ep, now)
	return ep
}

// unseal fills in the endpoint's secrets, credential, timeout and client,
// and says what it could not open.
func (o *Opener) unseal(ep *Endpoint, now time.Time) string {
	sub := ep.Sub
	ep.Timeout = subscription.Timeout(sub)
	active := slices.DeleteFunc(slices.Clone(sub.Secrets), func(sec record.Secret) bool {
		return sec.ExpiresAt != nil && !sec.ExpiresAt.After(now)
	})
	// Newest first: the GitHub-style signature uses the first one.
	slices.SortStableFunc(active, func(a, b record.Secret) int { return b.CreatedAt.Compare(a.CreatedAt) })
	for _, sec := range active {
		if sec.ExpiresAt != nil && (ep.Expires.IsZero() || sec.ExpiresAt.Before(ep.Expires)) {
			ep.Expires = *sec.ExpiresAt
		}
		raw, err := o.Box.Open(sec.Sealed, []byte(sub.ID))
		if err != nil {
			return fmt.Sprintf("signing secret of %s cannot be opened: %v", sub.ID, err)
		}
		parsed, err := signature.ParseSecret(string(raw))
		if err != nil {
			return fmt.Sprintf("signing secret of %s: %v", sub.ID, err)
		}
		ep.Secrets = append(ep.Secrets, parsed)
	}
	if sub.Auth != nil {
		cred, err := o.Box.Open(sub.Auth.SealedCredential, []byte(sub.ID))
		if err != nil {
			return fmt.Sprintf("credential of %s cannot be opened: %v", sub.ID, err)
		}
		ep.AuthType, ep.Username, ep.Password = sub.Auth.Type, sub.Auth.Username, string(cred)
	}
	if sub.ClientTLS != nil {
		client, err := o.certClient(sub)
		if err != nil {
			return fmt.Sprintf("client certificate of %s: %v", sub.ID, err)
		}
		ep.Client = client
	}
	return ""
}

// Request builds the attempt of one delivery from the endpoint's
// settings, the one place a request is built (the sender's batches
// replace its id and body). The URL is where the subscription says now,
// not where the delivery was matched to: a retry or a replay follows the
// owner's changes. A target that cannot be built or is not allowed
// (routeurl.Resolve, with httpAllowed for plain http) leaves the request
// Refused: it fails without being sent.
func (ep *Endpoint) Request(d *record.Delivery, httpAllowed func(host string) bool) Request {
	target, err := routeurl.Resolve(ep.Sub, d, httpAllowed)
	req := Request{
		URL:      target,
		ID:       d.ID,
		Body:     []byte(d.Payload),
		Secrets:  ep.Secrets,
		Headers:  ep.Sub.Headers,
		AuthType: ep.AuthType,
		Username: ep.Username,
		Password: ep.Password,
		Timeout:  ep.Timeout,
		Gzip:     ep.Sub.Compression == "gzip",
		Client:   ep.Client,
	}
	if err != nil {
		req.URL, req.Refused = d.URL, err.Error()
	}
	return req
}
