package deadletters

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/testinfra"
)

type letter struct {
	id, tenant, sub string
	at              time.Time
	err             string
}

func produce(t *testing.T, cfg kafka.Config, codecs *record.Codecs, letters ...letter) {
	t.Helper()
	cl, err := kafka.NewClient(cfg, testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, l := range letters {
		d := record.Delivery{ID: l.id, Tenant: l.tenant, SubscriptionID: l.sub, EventID: "evt_" + l.id, EventType: "order.created",
			URL: "https://x.example/" + l.sub, Payload: `{"id":"` + l.id + `","data":{"note":"<script>alert(1)</script>"}}`,
			Attempt: 3, LastStatus: 400, LastError: l.err, CreatedAt: l.at.Add(-time.Minute)}
		v, err := codecs.Delivery.Marshal(&d)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = cl.ProduceSync(ctx, &kgo.Record{Topic: cfg.Topics.DLQ, Key: []byte(l.sub), Value: v, Timestamp: l.at}).FirstErr()
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func run(t *testing.T, x *Index) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for x.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatal("index not ready in 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ids(ls []Letter) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.DeliveryID
	}
	return out
}

func TestIndexListsNewestFirstPerTenant(t *testing.T) {
	cfg := testinfra.Kafka(t)
	testinfra.WaitTopic(t, cfg, cfg.Topics.DLQ)
	codecs, err := record.LoadCodecs()
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond).UTC()
	produce(t, cfg, codecs,
		letter{"dlv_1", "acme", "sub_a", base, "HTTP 400"},
		letter{"dlv_2", "acme", "sub_b", base.Add(time.Minute), "HTTP 410"},
		letter{"dlv_3", "globex", "sub_g", base.Add(2 * time.Minute), "HTTP 400"},
		letter{"dlv_4", "acme", "sub_a", base.Add(3 * time.Minute), "HTTP 400"},
		letter{"dlv_1", "acme", "sub_a", base.Add(4 * time.Minute), "again, after a replay"}, // the same delivery once more
	)
	x := New(cfg, codecs, testinfra.Logger(), 0)
	if _, _, err := x.List(Query{Tenant: "acme", Limit: 10}); !errors.Is(err, ErrNotReady) {
		t.Fatalf("List before Run = %v, want ErrNotReady", err)
	}
	run(t, x)

	tests := []struct {
		name string
		q    Query
		want []string
	}{
		{"a tenant's, newest first, each delivery once", Query{Tenant: "acme", Limit: 10}, []string{"dlv_1", "dlv_4", "dlv_2"}},
		{"another tenant's", Query{Tenant: "globex", Limit: 10}, []string{"dlv_3"}},
		{"by subscription", Query{Tenant: "acme", SubscriptionID: "sub_a", Limit: 10}, []string{"dlv_1", "dlv_4"}},
		{"within a list", Query{Tenant: "acme", Within: []string{"sub_b"}, Limit: 10}, []string{"dlv_2"}},
		{"within nothing", Query{Tenant: "acme", Within: []string{}, Limit: 10}, []string{}},
		{"a window", Query{Tenant: "acme", Since: base.Add(time.Minute), Until: base.Add(4 * time.Minute), Limit: 10}, []string{"dlv_4", "dlv_2"}},
		{"unknown tenant", Query{Tenant: "nobody", Limit: 10}, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, next, err := x.List(tc.q)
			if err != nil || next != nil || !slices.Equal(ids(got), tc.want) {
				t.Fatalf("List = %v (next %v), %v; want %v", ids(got), next, err, tc.want)
			}
		})
	}

	t.Run("pages", func(t *testing.T) {
		var seen []string
		q := Query{Tenant: "acme", Limit: 2}
		for range 5 {
			page, next, err := x.List(q)
			if err != nil {
				t.Fatal(err)
			}
			seen = append(seen, ids(page)...)
			if next == nil {
				break
			}
			q.After = next
		}
		if !slices.Equal(seen, []string{"dlv_1", "dlv_4", "dlv_2"}) {
			t.Errorf("pages gave %v", seen)
		}
	})

	t.Run("get and payload", func(t *testing.T) {
		l, err := x.Get("acme", "dlv_1")
		if err != nil || l.LastError != "again, after a replay" || l.SubscriptionID != "sub_a" || !l.DeadAt.Equal(base.Add(4*time.Minute)) {
			t.Fatalf("Get = %+v, %v", l, err)
		}
		if _, err := x.Get("globex", "dlv_1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("another tenant's letter: %v, want ErrNotFound", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		body, err := x.Payload(ctx, "acme", l)
		if err != nil || body != `{"id":"dlv_1","data":{"note":"<script>alert(1)</script>"}}` {
			t.Errorf("Payload = %q, %v", body, err)
		}
	})

	t.Run("follows the topic", func(t *testing.T) {
		produce(t, cfg, codecs, letter{"dlv_5", "acme", "sub_b", base.Add(5 * time.Minute), "HTTP 400"})
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, _, _ := x.List(Query{Tenant: "acme", Limit: 1})
			if len(got) == 1 && got[0].DeliveryID == "dlv_5" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("newest = %v, want dlv_5", ids(got))
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func TestIndexKeepsTheNewestPerTenant(t *testing.T) {
	cfg := testinfra.Kafka(t)
	testinfra.WaitTopic(t, cfg, cfg.Topics.DLQ)
	codecs, err := record.LoadCodecs()
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var ls []letter
	for i := range 12 {
		ls = append(ls, letter{fmt.Sprintf("dlv_%02d", i), "acme", "sub_a", base.Add(time.Duration(i) * time.Second), "x"})
	}
	ls = append(ls, letter{"dlv_other", "globex", "sub_g", base, "x"})
	produce(t, cfg, codecs, ls...)
	x := New(cfg, codecs, testinfra.Logger(), 5)
	run(t, x)
	got, _, _ := x.List(Query{Tenant: "acme", Limit: 100})
	if want := []string{"dlv_11", "dlv_10", "dlv_09", "dlv_08", "dlv_07"}; !slices.Equal(ids(got), want) {
		t.Errorf("kept %v, want the newest five %v", ids(got), want)
	}
	if other, _, _ := x.List(Query{Tenant: "globex", Limit: 100}); len(other) != 1 {
		t.Errorf("a busy tenant pushed out another's letters: %v", ids(other))
	}
}

// TestPayloadReadsAreBounded: a tenant holding its share of reads is
// refused another, while another tenant still gets one.
func TestPayloadReadsAreBounded(t *testing.T) {
	x := New(kafka.Config{}, nil, testinfra.Logger(), 0)
	x.reads["acme"], x.total = maxPayloadReadsTenant, maxPayloadReadsTenant
	if _, err := x.Payload(context.Background(), "acme", Letter{}); !errors.Is(err, ErrBusy) {
		t.Errorf("a tenant over its share: %v, want ErrBusy", err)
	}
	x.total = maxPayloadReads
	if _, err := x.Payload(context.Background(), "globex", Letter{}); !errors.Is(err, ErrBusy) {
		t.Errorf("an instance over its bound: %v, want ErrBusy", err)
	}
	x.total = maxPayloadReadsTenant
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // admitted, then ends at once: no broker is needed to see it was let through
	if _, err := x.Payload(ctx, "globex", Letter{}); errors.Is(err, ErrBusy) {
		t.Error("another tenant was refused while the instance had room")
	}
	if x.total != maxPayloadReadsTenant || x.reads["globex"] != 0 {
		t.Errorf("reads not given back: total %d, globex %d", x.total, x.reads["globex"])
	}
}

func TestTruncateKeepsUTF8(t *testing.T) {
	if got := truncate("aé", 2); got != "a…" {
		t.Errorf("truncate inside a rune = %q", got)
	}
	if got := truncate("abc", 3); got != "abc" {
		t.Errorf("truncate of a short string = %q", got)
	}
}
