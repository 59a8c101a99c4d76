// Package deadletters keeps an index of hookline.dlq in memory so that the
// API can list a tenant's dead letters page by page, newest first, without
// reading the topic for every page. It holds each letter's summary (ids,
// type, reason, where it is in the topic), never its payload: a letter's
// payload is read from its own offset when one is opened.
package deadletters

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
)

// DefaultPerTenant is how many dead letters are listed per tenant, the
// newest; older ones stay in the topic (and replayable by subscription and
// window) but are not listed. It bounds the index's memory: at about 400
// bytes a letter, 4 MB per tenant.
const DefaultPerTenant = 10000

// maxErrorLen bounds the reason kept per letter.
const maxErrorLen = 1024

// ErrNotReady is returned while the index is still reading the topic.
var ErrNotReady = errors.New("the dead letters are still being read")

// ErrNotFound is returned for a letter the index does not hold.
var ErrNotFound = errors.New("no such dead letter")

// ErrBusy is returned by Payload when too many reads run at once.
var ErrBusy = errors.New("too many dead letters being opened at once")

// Bounds of Payload reads, each a short-lived Kafka client: per instance,
// and per tenant so that one tenant opening letters in a loop leaves room
// for the others.
const (
	maxPayloadReads       = 16
	maxPayloadReadsTenant = 4
)

// Letter is one dead-lettered delivery.
type Letter struct {
	DeliveryID     string    `json:"delivery_id"`
	SubscriptionID string    `json:"subscription_id"`
	EventID        string    `json:"event_id"`
	EventType      string    `json:"event_type"`
	URL            string    `json:"url"`
	Attempts       int32     `json:"attempts"`
	LastStatus     int32     `json:"last_status"`
	LastError      string    `json:"last_error"`
	Replayed       bool      `json:"replayed"` // it was a replay that failed again
	CreatedAt      time.Time `json:"created_at"`
	DeadAt         time.Time `json:"dead_lettered_at"`

	partition int32
	offset    int64
}

// before orders letters by when they were dead-lettered, then id.
func (l *Letter) before(at time.Time, id string) bool {
	if !l.DeadAt.Equal(at) {
		return l.DeadAt.Before(at)
	}
	return l.DeliveryID < id
}

// Index is the dead letters of every tenant, kept in order.
type Index struct {
	cfg       kafka.Config
	codecs    *record.Codecs
	log       zerolog.Logger
	perTenant int

	readsMu sync.Mutex
	reads   map[string]int // Payload reads running, by tenant
	total   int

	reader *kafka.Reader

	mu      sync.RWMutex
	tenants map[string][]Letter // oldest first; a delivery appears once, at its last dead-lettering
}

// New returns an empty index of cfg's DLQ keeping perTenant letters per
// tenant (0: DefaultPerTenant); Run fills it.
func New(cfg kafka.Config, codecs *record.Codecs, log zerolog.Logger, perTenant int) *Index {
	if perTenant <= 0 {
		perTenant = DefaultPerTenant
	}
	return &Index{cfg: cfg, codecs: codecs, log: log, perTenant: perTenant, reader: kafka.NewReader(cfg.Topics.DLQ),
		tenants: map[string][]Letter{}, reads: map[string]int{}}
}

// Run reads the DLQ from its start and follows it until ctx ends.
func (x *Index) Run(ctx context.Context) error {
	return x.reader.Run(ctx, x.cfg, x.log, x.add)
}

// add indexes one record of the DLQ.
func (x *Index) add(r *kgo.Record) bool {
	var d record.Delivery
	if err := x.codecs.Delivery.Unmarshal(r.Value, &d); err != nil {
		x.log.Error().Err(err).Int32("partition", r.Partition).Int64("offset", r.Offset).Msg("undecodable dead letter skipped")
		return true
	}
	if d.Tenant == "" {
		return true
	}
	l := Letter{
		DeliveryID: d.ID, SubscriptionID: d.SubscriptionID, EventID: d.EventID, EventType: d.EventType,
		URL: d.URL, Attempts: d.Attempt, LastStatus: d.LastStatus, LastError: truncate(d.LastError, maxErrorLen),
		Replayed: d.Replay, CreatedAt: d.CreatedAt.UTC(), DeadAt: r.Timestamp.UTC(), partition: r.Partition, offset: r.Offset,
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	list := slices.DeleteFunc(x.tenants[d.Tenant], func(o Letter) bool { return o.DeliveryID == l.DeliveryID })
	// Records of several partitions arrive nearly in time order: the
	// place is almost always the end.
	i := sort.Search(len(list), func(i int) bool { return !list[i].before(l.DeadAt, l.DeliveryID) })
	list = slices.Insert(list, i, l)
	if len(list) > x.perTenant {
		list = slices.Delete(list, 0, len(list)-x.perTenant)
	}
	x.tenants[d.Tenant] = list
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 { // not inside a UTF-8 sequence
		n--
	}
	return s[:n] + "…"
}

// Ready reports whether the index has read what the topic held when Run
// began.
func (x *Index) Ready() error {
	if x.reader.Ready() != nil {
		return ErrNotReady
	}
	return nil
}

// Query picks letters of one tenant.
type Query struct {
	Tenant         string
	SubscriptionID string    // "": every subscription
	Within         []string  // nil: no restriction; else only these subscriptions
	Since, Until   time.Time // dead-lettered in [Since, Until); zero: open
	Limit          int
	After          *Cursor // the last letter of the previous page
}

// Cursor is a position in the newest-first order.
type Cursor struct {
	At time.Time
	ID string
}

// List returns a page of letters, newest first, and the cursor of the
// next page (nil on the last).
func (x *Index) List(q Query) ([]Letter, *Cursor, error) {
	if x.reader.Ready() != nil {
		return nil, nil, ErrNotReady
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	list := x.tenants[q.Tenant]
	end := len(list)
	if q.After != nil {
		end = sort.Search(len(list), func(i int) bool { return !list[i].before(q.After.At, q.After.ID) })
	}
	out := []Letter{}
	for i := end - 1; i >= 0; i-- {
		l := list[i]
		if !q.Since.IsZero() && l.DeadAt.Before(q.Since) {
			break // the rest are older still
		}
		switch {
		case !q.Until.IsZero() && !l.DeadAt.Before(q.Until),
			q.SubscriptionID != "" && l.SubscriptionID != q.SubscriptionID,
			q.Within != nil && !slices.Contains(q.Within, l.SubscriptionID):
			continue
		}
		if len(out) == q.Limit {
			last := out[len(out)-1]
			return out, &Cursor{At: last.DeadAt, ID: last.DeliveryID}, nil
		}
		out = append(out, l)
	}
	return out, nil, nil
}

// Get returns one letter of tenant.
func (x *Index) Get(tenant, deliveryID string) (Letter, error) {
	if x.reader.Ready() != nil {
		return Letter{}, ErrNotReady
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, l := range x.tenants[tenant] {
		if l.DeliveryID == deliveryID {
			return l, nil
		}
	}
	return Letter{}, ErrNotFound
}

// Payload reads the body of tenant's letter l as it was to be sent, from
// its own offset; ErrBusy when too many reads run.
func (x *Index) Payload(ctx context.Context, tenant string, l Letter) (string, error) {
	x.readsMu.Lock()
	busy := x.total >= maxPayloadReads || x.reads[tenant] >= maxPayloadReadsTenant
	if !busy {
		x.total++
		x.reads[tenant]++
	}
	x.readsMu.Unlock()
	if busy {
		return "", ErrBusy
	}
	defer func() {
		x.readsMu.Lock()
		x.total--
		if x.reads[tenant]--; x.reads[tenant] == 0 {
			delete(x.reads, tenant)
		}
		x.readsMu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cl, err := kafka.NewClient(x.cfg, x.log, kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{x.cfg.Topics.DLQ: {l.partition: kgo.NewOffset().At(l.offset)}}))
	if err != nil {
		return "", err
	}
	defer cl.Close()
	for {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("dead letter %s: %w", l.DeliveryID, err)
		}
		if err := fetches.Err(); err != nil {
			return "", fmt.Errorf("dead letter %s: %w", l.DeliveryID, err)
		}
		var payload string
		found := false
		fetches.EachRecord(func(r *kgo.Record) {
			if found || r.Offset != l.offset {
				return
			}
			var d record.Delivery
			if x.codecs.Delivery.Unmarshal(r.Value, &d) == nil && d.ID == l.DeliveryID {
				payload, found = d.Payload, true
			}
		})
		if found {
			return payload, nil
		}
		if fetches.NumRecords() > 0 {
			return "", fmt.Errorf("dead letter %s: no longer at offset %d (retention)", l.DeliveryID, l.offset)
		}
	}
}
