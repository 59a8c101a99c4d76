package alert

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"net/mail"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/hookline/hookline/pkg/emailaddr"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/services/notify/internal/email"
)

// Subscriptions looks subscriptions up (the subscription view).
type Subscriptions interface {
	Get(id string) (*record.Subscription, bool)
	// Sync returns once the view has read every subscription written
	// before the call.
	Sync(ctx context.Context) error
}

// syncWithin bounds catching the view up before a notification's
// recipients are decided.
const syncWithin = 10 * time.Second

// Dispatcher sends the outbox's due notifications.
type Dispatcher struct {
	Outbox   *Outbox
	Mailer   email.Mailer
	From     *mail.Address
	Renderer *Renderer
	Subs     Subscriptions
	Defaults Defaults
	// Record writes a finished notification to hookline.notifications;
	// the job is forgotten only once it returns nil.
	Record  func(context.Context, *record.Notification) error
	Metrics *Metrics
	Log     zerolog.Logger
	Now     func() time.Time

	// HourlyCap is how many emails one recipient gets per hour from one
	// tenant; the rest of the hour's notifications skip them.
	HourlyCap int
	// Poll is how often the outbox is checked when nothing woke the
	// dispatcher (retries, digests, other instances' jobs).
	Poll time.Duration
	// RetryMin and RetryMax bound the backoff after a temporary failure.
	RetryMin, RetryMax time.Duration
	// GiveUpAfter is how long a notification may wait for a working SMTP
	// server before the recipients left are recorded as failed.
	GiveUpAfter time.Duration
	// Batch is how many notifications one round takes, sent over one
	// SMTP connection; Lease is how long they are this instance's.
	Batch int
	Lease time.Duration

	wake chan struct{}
}

// roundTimeout bounds one round once shutdown began: what was taken is
// sent and settled rather than left for the lease to run out. It stays
// inside the 60 s a Kubernetes pod is given to stop.
const roundTimeout = 45 * time.Second

// Wake makes the dispatcher look at the outbox now.
func (d *Dispatcher) Wake() {
	select {
	case d.wakeChan() <- struct{}{}:
	default:
	}
}

func (d *Dispatcher) wakeChan() chan struct{} {
	if d.wake == nil {
		d.wake = make(chan struct{}, 1)
	}
	return d.wake
}

// Run sends due notifications until ctx ends. A failing round (Redis down)
// is retried at the next poll.
func (d *Dispatcher) Run(ctx context.Context) error {
	wake := d.wakeChan()
	for {
		// A round finishes what it took even when ctx ends meanwhile.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), roundTimeout)
		n, err := d.Round(rctx)
		cancel()
		if err != nil {
			d.Log.Error().Err(err).Msg("notification round")
		}
		if n == d.Batch && err == nil && ctx.Err() == nil {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-time.After(d.Poll):
		}
	}
}

// Round sends what is due now, one SMTP connection for all of it, and
// returns how many notifications it took.
func (d *Dispatcher) Round(ctx context.Context) (int, error) {
	now := d.Now()
	ids, err := d.Outbox.Claim(ctx, now, d.Lease, d.Batch)
	if err != nil {
		return 0, err
	}
	if pending, err := d.Outbox.Len(ctx); err == nil {
		d.Metrics.Pending.Set(float64(pending))
	}
	type work struct {
		job   *Job
		sub   *record.Subscription
		msgs  []int // indexes into msgs
		subj  string
		error string
	}
	var (
		jobs []*work
		msgs []email.Message
		errs []error
	)
	for _, id := range ids {
		j, err := d.prepare(ctx, id, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if j == nil {
			continue
		}
		w := &work{job: j, sub: d.subscription(j)}
		subject, text, html, err := d.Renderer.Render(j, w.sub)
		if err != nil {
			// A job that cannot be written will not be fixed by waiting:
			// record its recipients as failed.
			w.error = "render: " + err.Error()
		}
		w.subj = subject
		for _, to := range j.Pending {
			if w.error != "" {
				break
			}
			w.msgs = append(w.msgs, len(msgs))
			msgs = append(msgs, email.Message{
				ID: j.ID + "." + messageTag(to) + "@hookline", From: d.From, To: to,
				Subject: subject, Text: text, HTML: html, Date: now,
				Headers: map[string]string{"X-Hookline-Notification": j.ID, "X-Hookline-Subscription": j.SubscriptionID, "X-Hookline-Kind": j.Kind},
			})
		}
		jobs = append(jobs, w)
	}
	var sent []error
	if len(msgs) > 0 {
		sent = d.Mailer.Send(ctx, msgs)
	}
	outcome := record.OutcomeSent
	if _, ok := d.Mailer.(*email.Log); ok {
		outcome = record.OutcomeLogged
	}
	for _, w := range jobs {
		j := w.job
		done := map[string]Result{}
		lastErr := ""
		for k, mi := range w.msgs {
			to := j.Pending[k]
			switch err := sent[mi]; {
			case err == nil:
				done[to] = Result{Outcome: outcome}
				d.Metrics.Sent.WithLabelValues(j.Kind).Inc()
			case email.IsPermanent(err):
				done[to] = Result{Outcome: record.OutcomeFailed, Error: err.Error()}
				d.Metrics.Failed.WithLabelValues(j.Kind, FailPermanent).Inc()
				d.Log.Warn().Err(err).Str("notification", j.ID).Str("to", to).Msg("email refused")
			default:
				lastErr = err.Error()
				d.Metrics.Failed.WithLabelValues(j.Kind, FailTemporary).Inc()
			}
		}
		if w.error != "" {
			for _, to := range j.Pending {
				done[to] = Result{Outcome: record.OutcomeFailed, Error: w.error}
				d.Metrics.Failed.WithLabelValues(j.Kind, FailPermanent).Inc()
			}
		}
		left := len(j.Pending) - len(done)
		giveUp := left > 0 && now.Sub(j.QueuedAt) >= d.GiveUpAfter
		if giveUp {
			for _, to := range j.Pending {
				if _, ok := done[to]; !ok {
					done[to] = Result{Outcome: record.OutcomeFailed, Error: fmt.Sprintf("gave up after %s: %s", d.GiveUpAfter, lastErr)}
					d.Metrics.Failed.WithLabelValues(j.Kind, FailGaveUp).Inc()
				}
			}
			d.Log.Error().Str("notification", j.ID).Str("error", lastErr).Msg("gave up on an alert email")
			left = 0
		}
		next := now.Add(d.retryDelay(j.Attempts))
		if left > 0 {
			d.Log.Warn().Str("notification", j.ID).Str("error", lastErr).Time("retry_at", next).Msg("alert email not sent; will retry")
		}
		kept, err := d.Outbox.Settle(ctx, j, done, next, lastErr)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if left > 0 || !kept {
			continue
		}
		for to, r := range done {
			j.Results[to] = r
		}
		if err := d.finish(ctx, j, w.subj, now); err != nil {
			errs = append(errs, err)
		}
	}
	return len(ids), errors.Join(errs...)
}

// prepare loads a claimed job and settles its recipients on its first
// round. It returns nil for a job with nothing left to send, after
// finishing it.
func (d *Dispatcher) prepare(ctx context.Context, id string, now time.Time) (*Job, error) {
	j, err := d.Outbox.Load(ctx, id)
	if err != nil || j == nil {
		return nil, err
	}
	if !j.Admitted {
		if _, known := d.Subs.Get(j.SubscriptionID); !known {
			// An endpoint event can name a subscription created moments
			// ago that this instance's view has not read yet (it follows
			// the topic on its own): its alert_emails would be missed
			// for good. Catch the view up before deciding it is gone.
			sctx, cancel := context.WithTimeout(ctx, syncWithin)
			if err := d.Subs.Sync(sctx); err != nil {
				d.Log.Warn().Err(err).Str("notification", j.ID).Str("subscription", j.SubscriptionID).
					Msg("subscriptions view not caught up; recipients from what it has")
			}
			cancel()
		}
		rcpts, invalid := d.Defaults.recipients(j.Tenant, d.subscription(j))
		if invalid > 0 {
			d.Metrics.Suppressed.WithLabelValues(ReasonInvalidAddr).Add(float64(invalid))
		}
		if len(rcpts) == 0 {
			d.Metrics.Suppressed.WithLabelValues(ReasonNoRecipients).Inc()
		}
		again, capped, err := d.Outbox.Admit(ctx, j, rcpts, d.HourlyCap, now)
		if err != nil {
			return nil, err
		}
		if again == nil {
			return nil, nil
		}
		d.Metrics.Suppressed.WithLabelValues(ReasonCap).Add(float64(capped))
		j = again
	}
	if len(j.Pending) > 0 {
		return j, nil
	}
	// Every recipient is done (or there were none): a crash after the last
	// one was settled, or a suppressed or empty list.
	subject, _, _, _ := d.Renderer.Render(j, d.subscription(j))
	return nil, d.finish(ctx, j, subject, now)
}

// subscription is j's subscription, nil when it is gone or belongs to
// another tenant than the event (which only a producer writing
// hookline.events around the API could cause): its addresses are never
// told of another tenant's endpoint.
func (d *Dispatcher) subscription(j *Job) *record.Subscription {
	sub, ok := d.Subs.Get(j.SubscriptionID)
	if !ok || sub.Tenant != j.Tenant {
		return nil
	}
	return sub
}

// finish records j in hookline.notifications and forgets it. When the
// record cannot be written, the job stays for the next round: nothing is
// sent again, only the record is retried.
func (d *Dispatcher) finish(ctx context.Context, j *Job, subject string, now time.Time) error {
	n := &record.Notification{
		ID: j.ID, Tenant: j.Tenant, SubscriptionID: j.SubscriptionID, Kind: j.Kind,
		EventIDs: j.Triggers(), Subject: subject, Recipients: []record.NotificationRecipient{},
		Attempts: int32(j.Attempts + 1), QueuedAt: j.QueuedAt, FinishedAt: now,
	}
	for _, to := range slices.Sorted(maps.Keys(j.Results)) {
		r := j.Results[to]
		n.Recipients = append(n.Recipients, record.NotificationRecipient{Address: to, Outcome: r.Outcome, Error: r.Error})
	}
	if err := d.Record(ctx, n); err != nil {
		return fmt.Errorf("record notification %s: %w", j.ID, err)
	}
	d.Metrics.Recorded.Inc()
	d.Log.Info().Str("notification", j.ID).Str("kind", j.Kind).Str("subscription", j.SubscriptionID).
		Int("recipients", len(n.Recipients)).Msg("notification done")
	return d.Outbox.Finish(ctx, j.ID)
}

// retryDelay is the wait after the attempts-th failed round: doubling from
// RetryMin up to RetryMax, with jitter so that notifications that failed
// together (an SMTP outage) do not all come back at once.
func (d *Dispatcher) retryDelay(attempts int) time.Duration {
	delay := d.RetryMin
	for i := 0; i < attempts && delay < d.RetryMax; i++ {
		delay *= 2
	}
	delay = min(delay, d.RetryMax)
	return delay/2 + time.Duration(rand.Int64N(int64(delay/2)+1))
}

// messageTag distinguishes the Message-IDs of one notification's
// recipients without writing the address into them.
func messageTag(addr string) string {
	h := fnv.New32a()
	h.Write([]byte(emailaddr.Normal(addr)))
	return fmt.Sprintf("%08x", h.Sum32())
}
