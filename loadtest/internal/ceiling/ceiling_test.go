package ceiling

import (
	"context"
	"testing"
	"time"

	"github.com/hookline/hookline/loadtest/internal/sink"
	"github.com/hookline/hookline/pkg/signature"
)

func TestCeilingPostsSignedRequestsTheSinkCounts(t *testing.T) {
	sk, err := sink.Start(1)
	if err != nil {
		t.Fatal(err)
	}
	defer sk.Close()
	for _, p := range []string{"/a", "/b"} {
		sec, _, _ := signature.NewSecret()
		sk.Endpoint(p, sec)
	}
	tally := sk.Begin(sink.Faults{})
	samples := []sink.Sample{{Path: "/a", Body: []byte(`{"id":"evt_1"}`)}, {Path: "/b", Body: []byte(`{"id":"evt_2"}`)}}
	c, err := Run(context.Background(), sk, samples, 300, 8, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := tally.Counts()
	// One warm-up request, then 300 with ids of their own.
	if c.Requests != 300 || got.Delivered != 301 || got.BadSignatures != 0 || got.Duplicates != 0 {
		t.Errorf("ceiling %+v, sink %+v: want 300 timed requests, 301 unique verified deliveries", c, got)
	}
	if c.Concurrency != 8 || c.PerSecond <= 0 || got.PeakInFlight > 8 {
		t.Errorf("ceiling %+v, sink peak %d: want concurrency 8 and a rate", c, got.PeakInFlight)
	}
}

func TestAPICeilingAnswersEveryBodyOfItsBareServer(t *testing.T) {
	bodies := Bodies(10, 1024)
	for _, b := range bodies {
		if len(b) < 1000 || len(b) > 1200 {
			t.Fatalf("body of %d bytes, want about 1 KiB", len(b))
		}
	}
	c, err := API(context.Background(), bodies, 500, 16, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if c.Requests != 500 || c.Concurrency != 16 || c.PerSecond <= 0 {
		t.Errorf("ceiling %+v: want 500 requests answered 202 at concurrency 16, and a rate", c)
	}
	if _, err := API(context.Background(), [][]byte{[]byte("not json")}, 5, 1, 30*time.Second); err == nil {
		t.Error("a body the server cannot decode: want an error")
	}
}
