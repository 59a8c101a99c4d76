package dispatch

import (
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/signature"
	"github.com/hookline/hookline/pkg/subscription"
)

// endpoint is a subscription's settings opened for sending: its active
// secrets and its credential unsealed, the client of its certificate. A
// lane opens one per version of its subscription and shares it with the
// requests it starts.
type endpoint struct {
	sub        *record.Subscription
	unsendable string             // why none of its deliveries can be sent; "" when they can
	secrets    []signature.Secret // active ones, newest first
	authType   string
	username   string
	password   string
	timeout    time.Duration
	// expires is when the next active secret expires: the endpoint must be
	// opened again then. Zero for never.
	expires time.Time
	// client presents the subscription's client certificate (mutual TLS);
	// nil: the shared client.
	client *http.Client
	// gone is why Hookline disabled the subscription meanwhile (410, health
	// window); nil while it has not. The rest is dead-lettered unsent.
	gone atomic.Pointer[string]
}

// stale reports whether a secret it signs with has expired since it was
// opened.
func (ep *endpoint) stale(now time.Time) bool {
	return !ep.expires.IsZero() && !now.Before(ep.expires)
}

// open prepares a subscription's endpoint. When its deliveries cannot be
// sent, unsendable says why.
func (d *Dispatcher) open(sub *record.Subscription) *endpoint {
	ep := &endpoint{sub: sub}
	if !sub.Enabled {
		ep.unsendable = subscription.DisabledError(sub.DisabledReason)
		return ep
	}
	ep.unsendable = d.unseal(ep)
	return ep
}

// unseal fills in the endpoint's secrets, credential, timeout and client,
// and says what it could not open.
func (d *Dispatcher) unseal(ep *endpoint) string {
	sub := ep.sub
	ep.timeout = subscription.Timeout(sub)
	now := d.now()
	active := slices.DeleteFunc(slices.Clone(sub.Secrets), func(sec record.Secret) bool {
		return sec.ExpiresAt != nil && !sec.ExpiresAt.After(now)
	})
	// Newest first: the GitHub-style signature uses the first one.
	slices.SortStableFunc(active, func(a, b record.Secret) int { return b.CreatedAt.Compare(a.CreatedAt) })
	for _, sec := range active {
		if sec.ExpiresAt != nil && (ep.expires.IsZero() || sec.ExpiresAt.Before(ep.expires)) {
			ep.expires = *sec.ExpiresAt
		}
		raw, err := d.Box.Open(sec.Sealed, []byte(sub.ID))
		if err != nil {
			return fmt.Sprintf("signing secret of %s cannot be opened: %v", sub.ID, err)
		}
		parsed, err := signature.ParseSecret(string(raw))
		if err != nil {
			return fmt.Sprintf("signing secret of %s: %v", sub.ID, err)
		}
		ep.secrets = append(ep.secrets, parsed)
	}
	if sub.Auth != nil {
		cred, err := d.Box.Open(sub.Auth.SealedCredential, []byte(sub.ID))
		if err != nil {
			return fmt.Sprintf("credential of %s cannot be opened: %v", sub.ID, err)
		}
		ep.authType, ep.username, ep.password = sub.Auth.Type, sub.Auth.Username, string(cred)
	}
	if sub.ClientTLS != nil {
		client, err := d.certClient(sub)
		if err != nil {
			return fmt.Sprintf("client certificate of %s: %v", sub.ID, err)
		}
		ep.client = client
	}
	return ""
}
