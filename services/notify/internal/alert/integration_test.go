package alert

import (
	"context"
	"encoding/json"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/health"
	"github.com/hookline/hookline/pkg/id"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/services/notify/internal/email"
)

// subs is the subscriptions a test's dispatcher sees. Those in late are
// written but not read yet, as by a view behind its topic: Sync reads
// them.
type subs struct {
	mu    sync.Mutex
	m     map[string]*record.Subscription
	late  map[string]*record.Subscription
	syncs int
}

func (s *subs) Get(id string) (*record.Subscription, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.m[id]
	return sub, ok
}

func (s *subs) Sync(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.syncs++
	for id, sub := range s.late {
		s.m[id] = sub
	}
	s.late = nil
	return nil
}

func (s *subs) put(sub *record.Subscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[sub.ID] = sub
}

// stack is notify's handler and dispatcher on a real Kafka topic, a real
// Redis and a real SMTP server (mailpit).
type stack struct {
	t        *testing.T
	cfg      kafka.Config
	codecs   *record.Codecs
	producer *kgo.Client
	outbox   *Outbox
	subs     *subs
	mp       *testinfra.Mailpit
	metrics  *Metrics
	handler  *Handler
	disp     *Dispatcher
}

func newStack(t *testing.T, mp *testinfra.Mailpit) *stack {
	t.Helper()
	cfg := testinfra.Kafka(t)
	codecs, err := record.LoadCodecs()
	if err != nil {
		t.Fatal(err)
	}
	producer, err := kafka.NewClient(cfg, testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	smtp, err := email.ParseURL(mp.SMTPURL())
	if err != nil {
		t.Fatal(err)
	}
	smtp.Timeout = 3 * time.Second
	s := &stack{t: t, cfg: cfg, codecs: codecs, producer: producer, outbox: testOutbox(t), mp: mp,
		subs: &subs{m: map[string]*record.Subscription{}}, metrics: NewMetrics(prometheus.NewRegistry())}
	log := testinfra.Logger()
	s.disp = &Dispatcher{
		Outbox: s.outbox, Mailer: email.NewSMTP(smtp), From: &mail.Address{Name: "Hookline", Address: "alerts@hookline.example"},
		Renderer: &Renderer{ConsoleURL: console}, Subs: s.subs, Defaults: Defaults{}, Metrics: s.metrics, Log: log, Now: time.Now,
		HourlyCap: 100, Poll: 100 * time.Millisecond, RetryMin: 200 * time.Millisecond, RetryMax: time.Second,
		GiveUpAfter: time.Hour, Batch: 20, Lease: time.Minute,
		Record: func(ctx context.Context, n *record.Notification) error {
			v, err := codecs.Notification.Marshal(n)
			if err != nil {
				return err
			}
			return producer.ProduceSync(ctx, &kgo.Record{Topic: cfg.Topics.Notifications, Key: []byte(n.SubscriptionID), Value: v}).FirstErr()
		},
	}
	s.handler = &Handler{Codecs: codecs, Outbox: s.outbox, Metrics: s.metrics, Log: log, Now: time.Now,
		DigestWindow: time.Second, MaxAge: 24 * time.Hour, Queued: s.disp.Wake}
	return s
}

// start runs the consumer (in group) and the dispatcher until the
// returned stop is called (or the test ends).
func (s *stack) start(group string) (stop func()) {
	s.t.Helper()
	c, err := kafka.NewConsumer(s.cfg, s.cfg.Topics.Prefix+group, []string{s.cfg.Topics.Events}, s.handler.Handle, testinfra.Logger())
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = c.Run(ctx) }()
	go func() { defer wg.Done(); _ = s.disp.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	s.t.Cleanup(stop)
	return stop
}

// event publishes a Hookline event about sub, as the sender does.
func (s *stack) event(tenant, typ string, sub string, data any, occurred time.Time) record.Event {
	s.t.Helper()
	body, _ := json.Marshal(data)
	ev := record.Event{ID: id.New("evt"), Tenant: tenant, Type: typ, Subject: sub, Source: "hookline",
		OccurredAt: occurred, ReceivedAt: occurred, Data: string(body), Changed: []string{}}
	s.publish(ev)
	return ev
}

func (s *stack) publish(ev record.Event) {
	s.t.Helper()
	v, err := s.codecs.Event.Marshal(&ev)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.producer.ProduceSync(context.Background(), &kgo.Record{Topic: s.cfg.Topics.Events, Key: []byte(ev.Subject), Value: v}).FirstErr(); err != nil {
		s.t.Fatal(err)
	}
}

func (s *stack) alert(tenant, typ, sub string, failures int64) record.Event {
	s.t.Helper()
	a := health.EndpointAlert{SubscriptionID: sub, URL: "https://shop.example.com/hooks", ConsecutiveFailures: failures,
		FailingSince: time.Now().Add(-time.Hour), LastStatus: 503, LastError: "503 Service Unavailable"}
	if typ == health.Recovered {
		now := time.Now()
		a.RecoveredAt, a.LastStatus, a.LastError = &now, 0, ""
	}
	return s.event(tenant, typ, sub, a, time.Now())
}

// notifications reads hookline.notifications until it holds n records
// (failing after timeout), keyed by notification id.
func (s *stack) notifications(n int, timeout time.Duration) map[string]record.Notification {
	s.t.Helper()
	out := map[string]record.Notification{}
	deadline := time.Now().Add(timeout)
	for {
		out = map[string]record.Notification{}
		for _, r := range testinfra.Records(s.t, s.cfg, s.cfg.Topics.Notifications) {
			var nt record.Notification
			if err := s.codecs.Notification.Unmarshal(r.Value, &nt); err != nil {
				s.t.Fatalf("notification record: %v", err)
			}
			out[nt.ID] = nt
		}
		if len(out) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(out) != n {
		s.t.Fatalf("%d notifications recorded, want %d: %+v", len(out), n, out)
	}
	return out
}

func subscription(id, tenant, name string, emails ...string) *record.Subscription {
	return &record.Subscription{ID: id, Tenant: tenant, Name: name, URL: "https://shop.example.com/hooks", AlertEmails: emails}
}

// settle waits a little for anything more to arrive, then checks that
// exactly n messages reached addr.
func exactly(t *testing.T, mp *testinfra.Mailpit, addr string, n int) []testinfra.MailSummary {
	t.Helper()
	got := mp.WaitTo(t, addr, n, 20*time.Second)
	time.Sleep(700 * time.Millisecond)
	if got = mp.To(t, addr); len(got) != n {
		var subjects []string
		for _, m := range got {
			subjects = append(subjects, m.Subject)
		}
		t.Fatalf("%d messages to %s, want %d: %q", len(got), addr, n, subjects)
	}
	return got
}

func subjects(msgs []testinfra.MailSummary) map[string]bool {
	out := map[string]bool{}
	for _, m := range msgs {
		out[m.Subject] = true
	}
	return out
}

// TestOneEmailPerStreakLevel: failing, critical, disabled and recovered
// each reach the subscription's alert_emails and the tenant's default
// once, as separate messages, and each is recorded.
func TestOneEmailPerStreakLevel(t *testing.T) {
	mp := testinfra.MailpitServer(t)
	s := newStack(t, mp)
	owner, ops, everyone := testinfra.Address("owner"), testinfra.Address("ops"), testinfra.Address("noc")
	s.disp.Defaults = Defaults{"acme": {ops}, AllTenants: {everyone}}
	s.subs.put(subscription("sub_shop", "acme", "Shop orders", owner))
	s.start("notify")
	evs := []record.Event{
		s.alert("acme", health.Failing, "sub_shop", 5),
		s.alert("acme", health.Critical, "sub_shop", 20),
		s.alert("acme", health.Disabled, "sub_shop", 1234),
		s.alert("acme", health.Recovered, "sub_shop", 1234),
	}
	s.event("acme", "order.created", "ord_1", map[string]any{"id": "ord_1"}, time.Now())         // not notify's
	s.event("acme", "hookline.endpoint.renamed", "sub_shop", map[string]any{"x": 1}, time.Now()) // unknown kind
	want := map[string]bool{
		"[Hookline] Webhook endpoint failing: Shop orders (5 failures in a row)":                  true,
		"[Hookline] CRITICAL: webhook endpoint still failing: Shop orders (20 failures in a row)": true,
		"[Hookline] Webhook endpoint disabled: Shop orders":                                       true,
		"[Hookline] Webhook endpoint recovered: Shop orders":                                      true,
	}
	for _, addr := range []string{owner, ops, everyone} {
		got := exactly(t, mp, addr, 4)
		if s := subjects(got); len(s) != 4 || !equalSets(s, want) {
			t.Errorf("subjects to %s: %v", addr, s)
		}
		for _, m := range got {
			if len(m.To) != 1 || m.To[0].Address != addr || len(m.Cc)+len(m.Bcc) != 0 {
				t.Errorf("a message to %s also names %v %v %v", addr, m.To, m.Cc, m.Bcc)
			}
		}
	}
	found := false
	for _, m := range mp.To(t, owner) {
		if !strings.HasPrefix(m.Subject, "[Hookline] Webhook endpoint failing") {
			continue
		}
		found = true
		body := mp.Message(t, m.ID)
		for _, w := range []string{"failed 5 times in a row", "HTTP 503: 503 Service Unavailable", "https://hooks.example.com/console/#/subscriptions/sub_shop/logs", "sub_shop"} {
			if !strings.Contains(body.Text, w) || !strings.Contains(body.HTML, w) {
				t.Errorf("the failing email lacks %q", w)
			}
		}
		if h := mp.Headers(t, m.ID); h["X-Hookline-Notification"][0] != id.Derived("ntf", "acme", evs[0].ID) {
			t.Errorf("X-Hookline-Notification %v", h["X-Hookline-Notification"])
		}
	}
	if !found {
		t.Error("no failing email to the owner")
	}
	recs := s.notifications(4, 10*time.Second)
	for _, ev := range evs {
		n, ok := recs[id.Derived("ntf", "acme", ev.ID)]
		if !ok {
			t.Fatalf("no record of the %s notification", ev.Type)
		}
		if n.Tenant != "acme" || n.SubscriptionID != "sub_shop" || len(n.EventIDs) != 1 || n.EventIDs[0] != ev.ID ||
			len(n.Recipients) != 3 || !strings.HasPrefix(n.Subject, "[Hookline] ") {
			t.Errorf("record %+v", n)
		}
		for _, r := range n.Recipients {
			if r.Outcome != record.OutcomeSent {
				t.Errorf("recipient %+v not sent", r)
			}
		}
	}
	if got := testutil.ToFloat64(s.metrics.Sent.WithLabelValues(KindFailing)); got != 3 {
		t.Errorf("sent{failing} = %v, want 3", got)
	}
}

func equalSets(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// TestExhaustedDeliveriesMakeOneDigest: given-up deliveries of one
// subscription within the window share one email.
func TestExhaustedDeliveriesMakeOneDigest(t *testing.T) {
	mp := testinfra.MailpitServer(t)
	s := newStack(t, mp)
	s.handler.DigestWindow = 2 * time.Second
	owner1, owner2 := testinfra.Address("shop"), testinfra.Address("billing")
	s.subs.put(subscription("sub_shop", "acme", "Shop", owner1))
	s.subs.put(subscription("sub_bill", "acme", "Billing", owner2))
	s.start("notify")
	exhausted := func(sub, dlv string) record.Event {
		return s.event("acme", health.Exhausted, sub, health.DeliveryExhausted{DeliveryID: dlv, EventID: "evt_" + dlv, EventType: "order.created",
			SubscriptionID: sub, URL: "https://shop.example.com/hooks", Attempts: 8, LastStatus: 500, LastError: "boom " + dlv}, time.Now())
	}
	for _, d := range []string{"dlv_1", "dlv_2", "dlv_3"} {
		exhausted("sub_shop", d)
	}
	exhausted("sub_bill", "dlv_9")
	got := exactly(t, mp, owner1, 1)
	if got[0].Subject != "[Hookline] 3 webhook deliveries given up: Shop" {
		t.Errorf("digest subject %q", got[0].Subject)
	}
	body := mp.Message(t, got[0].ID)
	for _, w := range []string{"dlv_1", "dlv_2", "dlv_3", "boom dlv_2", "8 attempts"} {
		if !strings.Contains(body.Text, w) {
			t.Errorf("the digest lacks %q:\n%s", w, body.Text)
		}
	}
	if got := exactly(t, mp, owner2, 1); got[0].Subject != "[Hookline] 1 webhook delivery given up: Billing" {
		t.Errorf("subject %q", got[0].Subject)
	}
	// A later one opens the next digest.
	exhausted("sub_shop", "dlv_4")
	exactly(t, mp, owner1, 2)
	recs := s.notifications(3, 10*time.Second)
	items := 0
	for _, n := range recs {
		items += len(n.EventIDs)
		if n.Kind != KindExhausted {
			t.Errorf("record kind %s", n.Kind)
		}
	}
	if items != 5 {
		t.Errorf("the digests report %d events, want 5", items)
	}
}

// TestARestartDoesNotResend: a second instance reading every event again
// (a new consumer group, the worst case of a crash before a commit) sends
// nothing twice.
func TestARestartDoesNotResend(t *testing.T) {
	mp := testinfra.MailpitServer(t)
	s := newStack(t, mp)
	owner := testinfra.Address("owner")
	s.subs.put(subscription("sub_1", "acme", "Shop", owner))
	stop := s.start("first")
	ev := s.alert("acme", health.Failing, "sub_1", 5)
	s.alert("acme", health.Critical, "sub_1", 20)
	exactly(t, mp, owner, 2)
	stop()
	s.publish(ev) // the same event once more, as a producer retry could
	s.start("second")
	s.alert("acme", health.Recovered, "sub_1", 20)
	exactly(t, mp, owner, 3)
	if got := testutil.ToFloat64(s.metrics.Suppressed.WithLabelValues(ReasonDuplicate)); got < 3 {
		t.Errorf("suppressed{duplicate} = %v, want at least 3", got)
	}
}

// TestSMTPOutage: with the SMTP server down, notifications wait; once it
// is back each goes out once, and the events were committed meanwhile.
func TestSMTPOutage(t *testing.T) {
	mp := testinfra.StartMailpit(t)
	s := newStack(t, mp)
	owner := testinfra.Address("owner")
	s.subs.put(subscription("sub_1", "acme", "Shop", owner))
	mp.Stop(t)
	s.start("notify")
	s.alert("acme", health.Failing, "sub_1", 5)
	s.alert("acme", health.Critical, "sub_1", 20)
	deadline := time.Now().Add(20 * time.Second)
	for testutil.ToFloat64(s.metrics.Failed.WithLabelValues(KindCritical, FailTemporary)) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no failed attempts while SMTP is down")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n, _ := s.outbox.Len(context.Background()); n != 2 {
		t.Fatalf("%d notifications wait, want 2", n)
	}
	mp.Start(t)
	exactly(t, mp, owner, 2)
	recs := s.notifications(2, 10*time.Second)
	for _, n := range recs {
		if n.Attempts < 2 || n.Recipients[0].Outcome != record.OutcomeSent {
			t.Errorf("record %+v: want sent after more than one attempt", n)
		}
	}
	if n, _ := s.outbox.Len(context.Background()); n != 0 {
		t.Errorf("%d notifications left in the outbox", n)
	}
}

// TestRefusedRecipient: a recipient the server refuses for good is
// recorded as failed at once, not retried.
func TestRefusedRecipient(t *testing.T) {
	mp := testinfra.StartMailpit(t, "--enable-chaos")
	mp.Chaos(t, 550)
	s := newStack(t, mp)
	s.subs.put(subscription("sub_1", "acme", "Shop", testinfra.Address("gone")))
	s.start("notify")
	s.alert("acme", health.Failing, "sub_1", 5)
	for _, n := range s.notifications(1, 20*time.Second) {
		if n.Attempts != 1 || len(n.Recipients) != 1 || n.Recipients[0].Outcome != record.OutcomeFailed || !strings.Contains(n.Recipients[0].Error, "550") {
			t.Errorf("record %+v: want one failed recipient after one attempt", n)
		}
	}
	if got := testutil.ToFloat64(s.metrics.Failed.WithLabelValues(KindFailing, FailPermanent)); got != 1 {
		t.Errorf("failed{permanent} = %v", got)
	}
}

// TestHourlyCap: a recipient gets at most the cap per hour; the rest is
// recorded as suppressed, never a storm.
func TestHourlyCap(t *testing.T) {
	mp := testinfra.MailpitServer(t)
	s := newStack(t, mp)
	s.disp.HourlyCap = 2
	owner := testinfra.Address("busy")
	for _, id := range []string{"sub_1", "sub_2", "sub_3", "sub_4"} {
		s.subs.put(subscription(id, "acme", "Endpoint "+id, owner))
	}
	s.start("notify")
	for _, id := range []string{"sub_1", "sub_2", "sub_3", "sub_4"} {
		s.alert("acme", health.Failing, id, 5)
	}
	exactly(t, mp, owner, 2)
	suppressed := 0
	for _, n := range s.notifications(4, 10*time.Second) {
		if n.Recipients[0].Outcome == record.OutcomeSuppressed {
			suppressed++
		}
	}
	if suppressed != 2 {
		t.Errorf("%d recorded as suppressed, want 2", suppressed)
	}
	if got := testutil.ToFloat64(s.metrics.Suppressed.WithLabelValues(ReasonCap)); got != 2 {
		t.Errorf("suppressed{cap} = %v", got)
	}
}

// TestTenantsStayApart: an event of one tenant that names another
// tenant's subscription (only possible by writing hookline.events around
// the API) tells that subscription's owners nothing.
func TestTenantsStayApart(t *testing.T) {
	mp := testinfra.MailpitServer(t)
	s := newStack(t, mp)
	acmeOwner, globexOps := testinfra.Address("acme"), testinfra.Address("globex")
	s.disp.Defaults = Defaults{"globex": {globexOps}}
	s.subs.put(subscription("sub_acme", "acme", "Acme secret endpoint", acmeOwner))
	s.start("notify")
	s.alert("globex", health.Failing, "sub_acme", 5)
	got := exactly(t, mp, globexOps, 1)
	if strings.Contains(got[0].Subject, "Acme secret endpoint") {
		t.Errorf("globex learnt acme's subscription name: %q", got[0].Subject)
	}
	if n := len(mp.To(t, acmeOwner)); n != 0 {
		t.Errorf("acme's owner got %d messages about globex's event", n)
	}
}

// TestWhatIsNotEmailed: stale events, events nobody is to hear of, and
// a subscription name written to inject headers.
func TestWhatIsNotEmailed(t *testing.T) {
	mp := testinfra.MailpitServer(t)
	s := newStack(t, mp)
	owner, evil := testinfra.Address("owner"), testinfra.Address("evil")
	s.subs.put(subscription("sub_1", "acme", "Shop\r\nBcc: "+evil, owner))
	s.subs.put(subscription("sub_quiet", "acme", "Nobody listens"))
	s.start("notify")
	s.event("acme", health.Failing, "sub_1", health.EndpointAlert{SubscriptionID: "sub_1", ConsecutiveFailures: 5}, time.Now().Add(-48*time.Hour))
	s.alert("acme", health.Failing, "sub_quiet", 5)
	s.event("acme", health.Failing, "", map[string]any{"url": "x"}, time.Now()) // names no subscription
	s.alert("acme", health.Critical, "sub_1", 20)
	got := exactly(t, mp, owner, 1)
	if !strings.Contains(got[0].Subject, "CRITICAL") || strings.ContainsAny(got[0].Subject, "\r\n") {
		t.Errorf("subject %q", got[0].Subject)
	}
	if m := mp.Message(t, got[0].ID); len(m.Bcc)+len(m.Cc) != 0 || len(m.To) != 1 {
		t.Errorf("recipients %v %v %v", m.To, m.Cc, m.Bcc)
	}
	if n := len(mp.To(t, evil)) + len(mp.Search(t, "bcc:"+evil)); n != 0 {
		t.Errorf("the injected address got %d messages", n)
	}
	recs := s.notifications(2, 10*time.Second)
	quiet := false
	for _, n := range recs {
		if n.SubscriptionID == "sub_quiet" {
			quiet = len(n.Recipients) == 0
		}
	}
	if !quiet {
		t.Errorf("the notification nobody was to hear of is not recorded with no recipients: %+v", recs)
	}
	for reason, want := range map[string]float64{ReasonStale: 1, ReasonNoRecipients: 1, ReasonInvalidEvent: 1} {
		if got := testutil.ToFloat64(s.metrics.Suppressed.WithLabelValues(reason)); got != want {
			t.Errorf("suppressed{%s} = %v, want %v", reason, got, want)
		}
	}
}
