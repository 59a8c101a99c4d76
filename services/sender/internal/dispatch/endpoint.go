package dispatch

import (
	"sync/atomic"

	"github.com/hookline/hookline/pkg/deliver"
	"github.com/hookline/hookline/pkg/record"
)

// endpoint is a lane's opened subscription (deliver.Endpoint) and what the
// lane's requests learn of it meanwhile.
type endpoint struct {
	*deliver.Endpoint
	// gone is why Hookline disabled the subscription meanwhile (410, health
	// window); nil while it has not. The rest is dead-lettered unsent.
	gone atomic.Pointer[string]
}

// open prepares a subscription's endpoint. When its deliveries cannot be
// sent, Unsendable says why.
func (d *Dispatcher) open(sub *record.Subscription) *endpoint {
	o := deliver.Opener{Box: d.Box, Certs: d.Certs}
	return &endpoint{Endpoint: o.Open(sub, d.now())}
}
