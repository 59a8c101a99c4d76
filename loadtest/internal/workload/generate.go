package workload

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/id"
	"github.com/hookline/hookline/pkg/record"
)

// Event is one generated event.
type Event struct {
	ID      string
	Tenant  int
	Bucket  int
	Type    string
	Subject string
	At      time.Time // occurred_at: end-to-end latency starts here
	Data    string
}

// Load is how many events to send, how fast and which way.
type Load struct {
	Subs        *Subs
	Count       int           // events at most
	Rate        float64       // events per second; 0 is as fast as possible
	MaxDuration time.Duration // stop sending after this even if Count is not reached
	// Stop, when not nil, ends sending early once closed; unlike ending
	// ctx, it lets the events already sent be acknowledged.
	Stop <-chan struct{}
	Seed uint64
	// Owed, when set, says which subscriptions' deliveries are owed: the
	// others go to endpoints that never take them (timing out, refusing
	// connections) and count neither as expected nor as lost.
	Owed func(subscription string) bool
}

// Producer writes events: straight to Kafka, or through the API.
type Producer interface {
	// Send writes evs, calling done for each once it is acknowledged or
	// has failed. Send may block for backpressure.
	Send(ctx context.Context, evs []Event, done func(ev Event, err error))
	// Flush waits until every sent event has been acknowledged or failed.
	Flush(ctx context.Context)
	// Batch is how many events Send takes at once.
	Batch() int
}

// Progress counts what a Load has sent so far; safe to read while it runs.
type Progress struct {
	Sent     atomic.Int64 // events acknowledged
	Failed   atomic.Int64 // events that could not be written
	Expected atomic.Int64 // deliveries the acknowledged events owe

	mu    sync.Mutex
	ids   map[string]struct{}
	subOf map[string]string // delivery id -> subscription id
}

// ExpectedIDs returns the delivery ids owed; call it once Run returned.
func (p *Progress) ExpectedIDs() map[string]struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ids
}

// ExpectedOf returns the delivery ids owed to the subscriptions keep
// accepts; call it once Run returned.
func (p *Progress) ExpectedOf(keep func(subscription string) bool) map[string]struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]struct{}{}
	for id, sub := range p.subOf {
		if keep(sub) {
			out[id] = struct{}{}
		}
	}
	return out
}

// Run sends the load through prod and records the deliveries each
// acknowledged event owes. It stops at Count events, at MaxDuration, or
// when ctx ends, and returns after prod has flushed.
func (l *Load) Run(ctx context.Context, prod Producer, prog *Progress) {
	prog.mu.Lock()
	if prog.ids == nil {
		prog.ids, prog.subOf = map[string]struct{}{}, map[string]string{}
	}
	prog.mu.Unlock()
	p := l.Subs.Plan
	rng := rand.New(rand.NewPCG(l.Seed, 1))
	pad := strings.Repeat("x", max(0, p.PayloadBytes-len(`{"id":"s-0000000","bucket":00,"region":"eu","pad":""}`)))
	chunk := prod.Batch()
	if l.Rate > 0 && chunk == 1 {
		chunk = max(1, int(l.Rate/200)) // paced every 5 ms or slower
	}
	done := func(ev Event, err error) {
		if err != nil {
			prog.Failed.Add(1)
			return
		}
		owed := l.Subs.Matching(nil, ev.Tenant, ev.Bucket)
		if l.Owed != nil {
			owed = slices.DeleteFunc(owed, func(sub string) bool { return !l.Owed(sub) })
		}
		prog.mu.Lock()
		for _, sub := range owed {
			dl := id.Delivery(ev.ID, sub)
			prog.ids[dl], prog.subOf[dl] = struct{}{}, sub
		}
		prog.mu.Unlock()
		prog.Expected.Add(int64(len(owed)))
		prog.Sent.Add(1)
	}

	start := time.Now()
	stop := start.Add(l.MaxDuration)
	regions := []string{"eu", "us", "ap"}
	for i := 0; i < l.Count; {
		now := time.Now()
		if ctx.Err() != nil || now.After(stop) || closed(l.Stop) {
			break
		}
		if l.Rate > 0 {
			due := start.Add(time.Duration(float64(i) / l.Rate * float64(time.Second)))
			if due.After(stop) {
				break
			}
			time.Sleep(due.Sub(now))
		}
		n := min(chunk, l.Count-i)
		evs := make([]Event, n)
		for k := range evs {
			seq := i + k
			ev := Event{
				Tenant:  (seq / chunk) % p.Tenants, // one tenant per chunk: one API request
				Bucket:  rng.IntN(p.Buckets()),
				Type:    fmt.Sprintf("bench.t%d", seq%p.EventTypes),
				Subject: fmt.Sprintf("s-%07d", seq),
				At:      time.Now(),
				ID:      id.New("evt"),
			}
			ev.Data = fmt.Sprintf(`{"id":%q,"bucket":%d,"region":%q,"pad":%q}`, ev.Subject, ev.Bucket, regions[seq%3], pad)
			evs[k] = ev
		}
		prod.Send(ctx, evs, done)
		i += n
	}
	prod.Flush(ctx)
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// KafkaProducer writes Avro events straight to the events topic, keyed by
// subject, as a producer application with its own Kafka client would.
type KafkaProducer struct {
	Client *kgo.Client
	Topic  string
	Codecs *record.Codecs
	Tenant func(i int) string
}

// Batch is 1: records are produced one by one and batched by the client.
func (k *KafkaProducer) Batch() int { return 1 }

// Send produces each event asynchronously; the client blocks when its
// buffer is full.
func (k *KafkaProducer) Send(ctx context.Context, evs []Event, done func(Event, error)) {
	for _, ev := range evs {
		rec := record.Event{
			ID: ev.ID, Tenant: k.Tenant(ev.Tenant), Type: ev.Type, Subject: ev.Subject, Source: "hookload",
			OccurredAt: ev.At, ReceivedAt: ev.At, Data: ev.Data, Changed: []string{},
		}
		value, err := k.Codecs.Event.Marshal(&rec)
		if err != nil {
			done(ev, err)
			continue
		}
		k.Client.Produce(ctx, &kgo.Record{Topic: k.Topic, Key: []byte(ev.Subject), Value: value}, func(_ *kgo.Record, err error) {
			done(ev, err)
		})
	}
}

// Flush waits for every produced record's acknowledgement.
func (k *KafkaProducer) Flush(ctx context.Context) { _ = k.Client.Flush(ctx) }

// HTTPProducer posts events in batches to POST /v1/events, Concurrency
// requests at a time, as an application using the API would. Events carry
// their ids, so that a retried request is deduplicated by ingest.
type HTTPProducer struct {
	API         *API
	Tenant      func(i int) string
	Events      int // per request, at most 500
	Concurrency int
	// Single sends one event per request as an object, not an array.
	Single bool
	// Immediate posts each (single) event with ?mode=immediate and keeps
	// what each answer said (Answers).
	Immediate bool

	once sync.Once
	mu   sync.Mutex
	took []time.Duration // each request's answer time
	// answers of immediate requests, in the order they came back
	answers []ImmediateAnswer
	work    chan httpBatch
	wg      sync.WaitGroup
}

type httpBatch struct {
	ctx  context.Context
	evs  []Event
	done func(Event, error)
}

// Batch is the events per request.
func (h *HTTPProducer) Batch() int { return h.Events }

// Send hands one request's events to a worker; it blocks while every
// worker is busy.
func (h *HTTPProducer) Send(ctx context.Context, evs []Event, done func(Event, error)) {
	h.once.Do(func() {
		h.work = make(chan httpBatch)
		for range max(1, h.Concurrency) {
			h.wg.Go(h.worker)
		}
	})
	// A request holds events of one tenant, so split by tenant; a single
	// producer's, one event each (Load paces a high rate in chunks).
	byTenant := map[int][]Event{}
	for i, ev := range evs {
		key := ev.Tenant
		if h.Single {
			key = i
		}
		byTenant[key] = append(byTenant[key], ev)
	}
	for _, group := range byTenant {
		select {
		case h.work <- httpBatch{ctx, group, done}:
		case <-ctx.Done():
			for _, ev := range group {
				done(ev, ctx.Err())
			}
		}
	}
}

func (h *HTTPProducer) worker() {
	type in struct {
		ID         string    `json:"id"`
		Type       string    `json:"type"`
		Subject    string    `json:"subject"`
		Source     string    `json:"source"`
		OccurredAt time.Time `json:"occurred_at"`
		Data       rawJSON   `json:"data"`
	}
	for b := range h.work {
		body := make([]in, len(b.evs))
		for i, ev := range b.evs {
			body[i] = in{ID: ev.ID, Type: ev.Type, Subject: ev.Subject, Source: "hookload", OccurredAt: ev.At, Data: rawJSON(ev.Data)}
		}
		var out struct {
			Events []struct{ ID string } `json:"events"`
		}
		t0 := time.Now()
		var err error
		var imm immediateBody
		if h.Single && len(body) == 1 {
			var one struct{ ID string }
			if h.Immediate {
				err = h.API.Post(b.ctx, h.Tenant(b.evs[0].Tenant), "/v1/events?mode=immediate", body[0], &imm)
				one.ID = imm.ID
			} else {
				err = h.API.Post(b.ctx, h.Tenant(b.evs[0].Tenant), "/v1/events", body[0], &one)
			}
			out.Events = append(out.Events, one)
		} else {
			err = h.API.Post(b.ctx, h.Tenant(b.evs[0].Tenant), "/v1/events", body, &out)
		}
		took := time.Since(t0)
		h.mu.Lock()
		h.took = append(h.took, took)
		if h.Immediate && err == nil {
			h.answers = append(h.answers, imm.answer(took))
		}
		h.mu.Unlock()
		if err == nil && len(out.Events) != len(b.evs) {
			err = fmt.Errorf("sent %d events, %d ids came back", len(b.evs), len(out.Events))
		}
		for i, ev := range b.evs {
			if err == nil && out.Events[i].ID != ev.ID {
				err = fmt.Errorf("sent event %s, ingest answered %s", ev.ID, out.Events[i].ID)
			}
			b.done(ev, err)
		}
	}
}

// ImmediateAnswer is what one immediate request got: its answer time,
// and its delivery's outcome and attempt time (duration_ms, whole
// milliseconds) when it has one delivery.
type ImmediateAnswer struct {
	Took    time.Duration
	Outcome string // "" when the event had no delivery or several
	Attempt time.Duration
}

// immediateBody is POST /v1/events?mode=immediate's answer.
type immediateBody struct {
	ID         string `json:"id"`
	Deliveries []struct {
		Outcome    string `json:"outcome"`
		DurationMS int64  `json:"duration_ms"`
	} `json:"deliveries"`
}

func (b immediateBody) answer(took time.Duration) ImmediateAnswer {
	a := ImmediateAnswer{Took: took}
	if len(b.Deliveries) == 1 {
		a.Outcome, a.Attempt = b.Deliveries[0].Outcome, time.Duration(b.Deliveries[0].DurationMS)*time.Millisecond
	}
	return a
}

// Answers returns a copy of the immediate requests' answers so far.
func (h *HTTPProducer) Answers() []ImmediateAnswer {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]ImmediateAnswer(nil), h.answers...)
}

// Took returns a copy of every request's answer time so far.
func (h *HTTPProducer) Took() []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Duration(nil), h.took...)
}

// Flush waits for the requests in flight; the producer cannot be used
// afterwards.
func (h *HTTPProducer) Flush(context.Context) {
	if h.work != nil {
		close(h.work)
		h.wg.Wait()
	}
}

// rawJSON is JSON text that marshals as itself.
type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(r), nil }
