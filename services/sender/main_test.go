package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/secretbox"
	"github.com/hookline/hookline/pkg/signature"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/pkg/testreceiver"
)

// runMainEnv makes the test binary run the sender itself, so that tests
// can start and SIGKILL real sender processes without a separate build.
const runMainEnv = "HOOKLINE_SENDER_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestKilledSenderLosesNothingAndResendsNothingDelivered(t *testing.T) {
	kcfg := testinfra.Kafka(t, time.Second, 2*time.Second)
	rdb := testinfra.Redis(t)
	codecs, err := record.LoadCodecs()
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	box, _ := secretbox.New(key)
	producer, err := kafka.NewClient(kcfg, testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()

	// A slow endpoint, so that the sender is killed mid-stream.
	rcv := testreceiver.New(t, func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(50 * time.Millisecond)
		w.WriteHeader(http.StatusNoContent)
	})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, rcv.Cert.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	run := hex.EncodeToString(key[:4])
	subs := make([]record.Subscription, 3)
	for i := range subs {
		_, whsec, _ := signature.NewSecret()
		id := fmt.Sprintf("sub_%s_%d", run, i)
		now := time.Now().UTC().Truncate(time.Millisecond)
		subs[i] = record.Subscription{ID: id, Tenant: "acme", URL: rcv.URL + "/hooks", EventTypes: []string{"order.*"}, Payload: "full",
			Enabled: true, MaxAttempts: 5, CreatedAt: now, UpdatedAt: now,
			Secrets: []record.Secret{{Sealed: box.Seal([]byte(whsec), []byte(id)), CreatedAt: now}}}
		value, _ := codecs.Subscription.Marshal(&subs[i])
		if err := producer.ProduceSync(ctx, &kgo.Record{Topic: kcfg.Topics.Subscriptions, Key: []byte(id), Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	wave := func(n int) {
		t.Helper()
		recs := make([]*kgo.Record, n)
		for i := range recs {
			sub := subs[len(ids)%len(subs)]
			d := record.Delivery{ID: fmt.Sprintf("dlv_%s_%03d", run, len(ids)), Tenant: "acme", SubscriptionID: sub.ID, EventID: "evt",
				EventType: "order.created", URL: sub.URL, Payload: `{"n":1}`, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
			ids = append(ids, d.ID)
			value, _ := codecs.Delivery.Marshal(&d)
			recs[i] = &kgo.Record{Topic: kcfg.Topics.Deliveries, Key: []byte(sub.ID), Value: value}
		}
		if err := producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	marked := func() map[string]bool {
		t.Helper()
		keys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = kcfg.Topics.Keys().Delivered() + id // the installation's namespace
		}
		vals, err := rdb.MGet(ctx, keys...).Result()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for i, v := range vals {
			if v != nil {
				out[ids[i]] = true
			}
		}
		return out
	}

	cfg := testinfra.StackConfig(t, kcfg)
	cfg.Programs = map[string]string{"sender": os.Args[0]}
	cfg.Schedule, cfg.SecretKey, cfg.CAFile = "1s,2s", base64.StdEncoding.EncodeToString(key), caFile
	cfg.Env = []string{runMainEnv + "=1", "HOOKLINE_SENDER_PER_ENDPOINT=4", "HOOKLINE_DELIVERED_TTL=10m"}
	st := testinfra.Stack(t, cfg)
	if err := st.Start("sender"); err != nil {
		t.Fatal(err)
	}

	// A first wave the sender finishes and marks, then a second one it is
	// killed in the middle of.
	wave(12)
	for len(marked()) < 12 {
		if ctx.Err() != nil {
			t.Fatal("the first wave was never marked delivered")
		}
		time.Sleep(50 * time.Millisecond)
	}
	wave(150)
	rcv.WaitFor(t, 40, 30*time.Second)
	st.Kill("sender")
	atKill := byID(rcv.Requests())
	done := marked()
	if len(atKill) >= len(ids) {
		t.Fatalf("the sender finished all %d deliveries before it was killed", len(ids))
	}

	// As if the sender had died before committing anything, the restarted
	// one reads every record again: a fresh group starts from the beginning
	// (and does not wait out the killed member's session).
	restarted := kcfg.Topics.Prefix + "sender-restarted"
	if err := st.Add("sender-restarted", "sender", "HOOKLINE_SENDER_GROUP="+restarted); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(ctx, t, kadm.NewClient(producer), restarted, kcfg.Topics.Deliveries)

	final := byID(rcv.Requests())
	for _, id := range ids {
		if final[id] == 0 {
			t.Errorf("%s was never delivered", id)
		}
		if done[id] && final[id] != atKill[id] {
			t.Errorf("%s was marked delivered at the kill, yet sent again (%d requests, %d before)", id, final[id], atKill[id])
		}
	}
	t.Logf("%d deliveries: %d sent before the kill, %d of them marked delivered", len(ids), len(atKill), len(done))
}

// waitCaughtUp waits until group has committed the end of every partition
// of topic: its sender has finished everything there.
func waitCaughtUp(ctx context.Context, t *testing.T, adm *kadm.Client, group, topic string) {
	t.Helper()
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		committed, err := adm.FetchOffsets(ctx, group)
		if err == nil {
			caughtUp := true
			ends.Each(func(e kadm.ListedOffset) {
				if c, ok := committed.Lookup(topic, e.Partition); e.Offset > 0 && (!ok || c.At < e.Offset) {
					caughtUp = false
				}
			})
			if caughtUp {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group %s did not catch up with %s", group, topic)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func byID(reqs []testreceiver.Request) map[string]int {
	out := map[string]int{}
	for _, r := range reqs {
		out[r.Header.Get(signature.HeaderID)]++
	}
	return out
}
