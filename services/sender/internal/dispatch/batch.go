package dispatch

import (
	"crypto/sha256"
	"encoding/base32"
	"maps"
	"slices"
	"time"

	"github.com/hookline/hookline/pkg/record"
)

// A subscription with batch settings gets its deliveries in requests whose
// body is a JSON array of the deliveries' bodies, up to max_events per
// request, each request to one URL. A batch that is not full waits until
// max_wait_ms after its oldest delivery reached Kafka; the deliveries of
// the subscription that arrive meanwhile join it, in its lane's window.

// batching reports whether sub sends batches.
func batching(sub *record.Subscription) bool {
	return sub != nil && sub.Batch != nil && sub.Batch.MaxEvents > 0
}

// plan splits a subscription's items into requests, in batch order: one
// item each, or for a batching subscription batches of up to max_events
// items with the same target.
func plan(items []*item, sub *record.Subscription) [][]*item {
	reqs := make([][]*item, 0, len(items))
	if !batching(sub) {
		for _, it := range items {
			reqs = append(reqs, []*item{it})
		}
		return reqs
	}
	filling := map[string]int{} // target -> its batch being filled
	for _, it := range items {
		key := target(&it.d)
		i, ok := filling[key]
		if !ok || len(reqs[i]) == int(sub.Batch.MaxEvents) {
			i = len(reqs)
			filling[key] = i
			reqs = append(reqs, nil)
		}
		reqs[i] = append(reqs[i], it)
	}
	return reqs
}

// target names where a delivery goes, so that the deliveries of a batch
// resolve to one URL (routeurl.Resolve): the subscription's url, or a
// route with the values of its placeholders, or for a delivery written
// before Delivery v2 the URL it was matched with.
func target(d *record.Delivery) string {
	switch {
	case !d.ResolveURL:
		return "url " + d.URL
	case d.Route == nil:
		return ""
	}
	key := "route " + d.Route.Condition
	for _, k := range slices.Sorted(maps.Keys(d.Route.Values)) {
		key += "\x00" + k + "\x00" + d.Route.Values[k]
	}
	return key
}

// windowEnd is when a batch that is not full may go: max_wait_ms after its
// oldest delivery reached Kafka (and no later than max_wait_ms from now,
// should the record's clock be ahead). It is the zero time for a full
// batch and for a subscription that does not batch.
func windowEnd(sub *record.Subscription, items []*item, now time.Time) time.Time {
	if !batching(sub) || len(items) >= int(sub.Batch.MaxEvents) || sub.Batch.MaxWaitMS <= 0 {
		return time.Time{}
	}
	oldest := now
	for _, it := range items {
		if ts := it.rec.Timestamp; !ts.IsZero() && ts.Before(oldest) {
			oldest = ts
		}
	}
	return oldest.Add(time.Duration(sub.Batch.MaxWaitMS) * time.Millisecond)
}

// batchBody is the request body of a batch: a JSON array of the
// deliveries' bodies, in batch order.
func batchBody(items []*item) []byte {
	n := 2
	for _, it := range items {
		n += len(it.d.Payload) + 1
	}
	body := make([]byte, 0, n)
	body = append(body, '[')
	for i, it := range items {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, it.d.Payload...)
	}
	return append(body, ']')
}

// idEncoding spells batch ids like pkg/id spells delivery ids.
var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// batchID is the webhook-id of a batch: "bat_" and a hash of its
// deliveries' ids, so the same set of deliveries always gets the same id,
// whatever their order.
func batchID(items []*item) string {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.d.ID
	}
	slices.Sort(ids)
	h := sha256.New()
	for _, id := range ids {
		h.Write([]byte(id))
		h.Write([]byte{0})
	}
	return "bat_" + idEncoding.EncodeToString(h.Sum(nil)[:16])
}
