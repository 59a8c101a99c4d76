package alert

import (
	"context"
	"errors"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookline/hookline/pkg/health"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/services/notify/internal/email"
)

// scripted is a mailer that answers each message with the next error of
// its script (nil: accepted), and counts what it was given.
type scripted struct {
	mu     sync.Mutex
	errs   []error
	sent   []email.Message
	rounds int
}

func (m *scripted) Send(_ context.Context, msgs []email.Message) []error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rounds++
	out := make([]error, len(msgs))
	for i, msg := range msgs {
		if len(m.errs) > 0 {
			out[i], m.errs = m.errs[0], m.errs[1:]
		}
		if out[i] == nil {
			m.sent = append(m.sent, msg)
		}
	}
	return out
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

func testDispatcher(t *testing.T, m email.Mailer, now *clock) (*Dispatcher, *[]record.Notification) {
	t.Helper()
	var recorded []record.Notification
	d := &Dispatcher{
		Outbox: testOutbox(t), Mailer: m, From: &mail.Address{Address: "alerts@hookline.example"}, Renderer: &Renderer{},
		Subs:    &subs{m: map[string]*record.Subscription{"sub_1": subscription("sub_1", "acme", "Shop", "owner@example.com")}},
		Metrics: NewMetrics(prometheus.NewRegistry()), Log: testinfra.Logger(), Now: now.Now,
		HourlyCap: 10, RetryMin: time.Second, RetryMax: time.Minute, GiveUpAfter: time.Hour, Batch: 10, Lease: time.Minute,
		Record: func(_ context.Context, n *record.Notification) error {
			recorded = append(recorded, *n)
			return nil
		},
	}
	return d, &recorded
}

func queue(t *testing.T, o *Outbox, at time.Time) *Job {
	t.Helper()
	j := alertJob(KindFailing, health.EndpointAlert{SubscriptionID: "sub_1", ConsecutiveFailures: 5})
	if _, err := o.EnqueueAlert(context.Background(), j, at); err != nil {
		t.Fatal(err)
	}
	return j
}

// TestRecipientsOfASubscriptionTheViewHasNotReadYet: an endpoint event
// about a subscription created moments ago can reach notify before its
// view has read the subscription (on a loaded machine, seconds before);
// its alert_emails are then read after catching the view up, not dropped
// as "no recipients". A subscription the view knows costs no catch-up.
func TestRecipientsOfASubscriptionTheViewHasNotReadYet(t *testing.T) {
	now := &clock{t: t0}
	m := &scripted{}
	d, recorded := testDispatcher(t, m, now)
	s := d.Subs.(*subs)
	s.late = map[string]*record.Subscription{"sub_2": subscription("sub_2", "acme", "New", "new-owner@example.com")}
	j := alertJob(KindFailing, health.EndpointAlert{SubscriptionID: "sub_2", ConsecutiveFailures: 5})
	j.ID, j.SubscriptionID, j.Alert.Trigger = "ntf_2", "sub_2", "evt_2"
	if _, err := d.Outbox.EnqueueAlert(context.Background(), j, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(m.sent) != 1 || m.sent[0].To != "new-owner@example.com" {
		t.Fatalf("sent %+v, want one email to the new subscription's owner", m.sent)
	}
	if len(*recorded) != 1 || s.syncs != 1 {
		t.Errorf("%d notifications recorded, %d view catch-ups; want 1 and 1", len(*recorded), s.syncs)
	}
	queue(t, d.Outbox, t0) // sub_1, known
	if _, err := d.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(m.sent) != 2 || s.syncs != 1 {
		t.Errorf("%d emails, %d view catch-ups; want 2 and still 1", len(m.sent), s.syncs)
	}
}

func TestGivesUpAfterTheGiveUpAge(t *testing.T) {
	now := &clock{t: t0}
	m := &scripted{errs: []error{&email.Error{Err: errors.New("451 4.3.0 try later")}, &email.Error{Err: errors.New("dial tcp: connection refused")}}}
	d, recorded := testDispatcher(t, m, now)
	queue(t, d.Outbox, t0)
	ctx := context.Background()
	if _, err := d.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if len(*recorded) != 0 {
		t.Fatalf("recorded after a temporary failure: %+v", *recorded)
	}
	now.Set(t0.Add(time.Hour + time.Minute))
	if _, err := d.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if len(*recorded) != 1 {
		t.Fatalf("%d records, want 1", len(*recorded))
	}
	r := (*recorded)[0].Recipients
	if len(r) != 1 || r[0].Outcome != record.OutcomeFailed || !strings.Contains(r[0].Error, "gave up after 1h0m0s: dial tcp: connection refused") {
		t.Fatalf("recipients %+v", r)
	}
	if (*recorded)[0].Attempts != 2 {
		t.Errorf("attempts %d, want 2", (*recorded)[0].Attempts)
	}
	if n, _ := d.Outbox.Len(ctx); n != 0 {
		t.Errorf("%d left in the outbox", n)
	}
}

func TestARecordThatFailsIsRetriedWithoutSendingAgain(t *testing.T) {
	now := &clock{t: t0}
	m := &scripted{}
	d, recorded := testDispatcher(t, m, now)
	failRecord := true
	write := d.Record
	d.Record = func(ctx context.Context, n *record.Notification) error {
		if failRecord {
			failRecord = false
			return errors.New("kafka: not enough replicas")
		}
		return write(ctx, n)
	}
	queue(t, d.Outbox, t0)
	ctx := context.Background()
	if _, err := d.Round(ctx); err == nil || !strings.Contains(err.Error(), "not enough replicas") {
		t.Fatalf("round: %v, want the record's error", err)
	}
	now.Set(t0.Add(time.Minute)) // past the retry delay
	if _, err := d.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if len(m.sent) != 1 || m.rounds != 1 {
		t.Fatalf("sent %d messages in %d rounds, want 1 in 1", len(m.sent), m.rounds)
	}
	if len(*recorded) != 1 || (*recorded)[0].Recipients[0].Outcome != "sent" {
		t.Fatalf("recorded %+v", *recorded)
	}
}

func TestRetryDelay(t *testing.T) {
	d := &Dispatcher{RetryMin: 10 * time.Second, RetryMax: 10 * time.Minute}
	for attempts, bounds := range map[int][2]time.Duration{
		0:  {5 * time.Second, 10 * time.Second},
		1:  {10 * time.Second, 20 * time.Second},
		3:  {40 * time.Second, 80 * time.Second},
		10: {5 * time.Minute, 10 * time.Minute},
		60: {5 * time.Minute, 10 * time.Minute},
	} {
		for range 50 {
			if got := d.retryDelay(attempts); got < bounds[0] || got > bounds[1] {
				t.Fatalf("retryDelay(%d) = %v, want within %v", attempts, got, bounds)
			}
		}
	}
}
