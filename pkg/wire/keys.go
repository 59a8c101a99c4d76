package wire

// Keys names Hookline's Redis keys. Every key starts with the
// installation's namespace, hookline: under the default topic prefix
// (the prefix without its trailing dot, then a colon), so two
// installations that share a Redis never touch each other's keys. Each
// method returns the prefix of one kind of key; the part after it is the
// owner's (a subscription id, an event id...).
type Keys struct{ ns string }

// Keys returns the Redis key names of the installation t names.
func (t Topics) Keys() Keys { return Keys{ns: t.stem() + ":"} }

// Namespace starts every key: hookline: under the default prefix.
func (k Keys) Namespace() string { return k.ns }

// EventIDs prefixes the event ids ingest has accepted (dedupe by id).
func (k Keys) EventIDs() string { return k.ns + "event:" }

// Delivered prefixes the deliveries the sender has delivered (idempotency).
func (k Keys) Delivered() string { return k.ns + "delivered:" }

// Claims prefixes ingest's claims on the deliveries it attempts in
// immediate mode, which the sender honours (pkg/claim).
func (k Keys) Claims() string { return k.ns + "claim:" }

// Parked prefixes the parked tail of an ordered subscription's lane.
func (k Keys) Parked() string { return k.ns + "parked:" }

// Rate prefixes the rate-limit state (GCRA) of each endpoint.
func (k Keys) Rate() string { return k.ns + "rate:" }

// Health prefixes each endpoint's failure streak.
func (k Keys) Health() string { return k.ns + "health:" }

// Notify prefixes notify's outbox of alert emails.
func (k Keys) Notify() string { return k.ns + "notify:" }

// Crash prefixes the crash guard's counts per consumer group and partition.
func (k Keys) Crash() string { return k.ns + "crash:" }

// EventRedeliveries prefixes the old events the history API has sent again
// to a subscription (one redelivery per event and subscription unless a new
// attempt is asked for).
func (k Keys) EventRedeliveries() string { return k.ns + "event-redelivery:" }
