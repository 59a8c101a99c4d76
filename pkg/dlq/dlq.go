// Package dlq replays dead-lettered deliveries: it scans hookline.dlq for
// the deliveries an operator picks and puts copies back on
// hookline.deliveries with a fresh attempt count, marked as replays. The
// copies keep their webhook-id, and the sender's idempotency marks skip any
// that were delivered since, so replaying twice delivers once.
package dlq

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
)

// Filter picks dead letters. Tenant is always required; the other fields
// narrow the pick, and an empty Filter beyond the tenant picks nothing.
type Filter struct {
	Tenant         string
	DeliveryIDs    []string  // these deliveries
	SubscriptionID string    // or everything of this subscription...
	Since, Until   time.Time // ...dead-lettered in [Since, Until) (zero: open)
	// Within, when set, confines the pick to these subscriptions whatever
	// else the filter names: a portal session restricted to a few
	// subscriptions replays nothing of the others.
	Within []string
}

// ErrNoSelection is returned for a filter that names neither deliveries
// nor a subscription.
var ErrNoSelection = errors.New("dlq: name delivery ids or a subscription to replay")

func (f Filter) match(d *record.Delivery, at time.Time) bool {
	if d.Tenant != f.Tenant || (f.Within != nil && !slices.Contains(f.Within, d.SubscriptionID)) {
		return false
	}
	if len(f.DeliveryIDs) > 0 {
		for _, id := range f.DeliveryIDs {
			if id == d.ID {
				return true
			}
		}
		return false
	}
	if d.SubscriptionID != f.SubscriptionID {
		return false
	}
	return (f.Since.IsZero() || !at.Before(f.Since)) && (f.Until.IsZero() || at.Before(f.Until))
}

// Replay copies the picked dead letters to the deliveries topic and
// returns the ids it replayed (a delivery dead-lettered twice is replayed
// once). It reads the DLQ up to its end at the time of the call
// (kafka.Reader). A dead
// letter without a body (the matcher could not build one that fits a
// record) is not replayed.
func Replay(ctx context.Context, cfg kafka.Config, codecs *record.Codecs, producer *kgo.Client, f Filter) ([]string, error) {
	if f.Tenant == "" || (len(f.DeliveryIDs) == 0 && f.SubscriptionID == "") {
		return nil, ErrNoSelection
	}
	seen := map[string]bool{}
	var out []*kgo.Record
	var ids []string
	var failed error
	err := kafka.NewReader(cfg.Topics.DLQ).ReadToEnd(ctx, cfg, nopLog, func(r *kgo.Record) bool {
		var d record.Delivery
		if codecs.Delivery.Unmarshal(r.Value, &d) != nil || seen[d.ID] || !f.match(&d, r.Timestamp) {
			return true
		}
		if d.Payload == "" {
			// Dead-lettered by the matcher without a body (it was over
			// the record limit): there is nothing to send again.
			return true
		}
		seen[d.ID] = true
		d.Attempt, d.Replay, d.DueAt, d.LastStatus, d.LastError = 0, true, nil, 0, ""
		value, err := codecs.Delivery.Marshal(&d)
		if err != nil {
			failed = fmt.Errorf("replay %s: %w", d.ID, err)
			return false
		}
		out = append(out, &kgo.Record{Topic: cfg.Topics.Deliveries, Key: []byte(d.SubscriptionID), Value: value})
		ids = append(ids, d.ID)
		return true
	})
	if err = cmp.Or(err, failed); err != nil {
		return nil, fmt.Errorf("read %s: %w", cfg.Topics.DLQ, err)
	}
	if err := producer.ProduceSync(ctx, out...).FirstErr(); err != nil {
		return nil, fmt.Errorf("replay to %s: %w", cfg.Topics.Deliveries, err)
	}
	return ids, nil
}
