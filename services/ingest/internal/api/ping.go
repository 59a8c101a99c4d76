package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/id"
	"github.com/hookline/hookline/pkg/problem"
	"github.com/hookline/hookline/pkg/record"
)

// TestEventType is the type of the event a test ping delivers.
const TestEventType = "webhook.test"

// pingBody is the webhook body of a test ping, shaped like every other
// delivery's.
type pingBody struct {
	ID        string            `json:"id"`
	Type      string            `json:"type"`
	Timestamp time.Time         `json:"timestamp"`
	Subject   string            `json:"subject"`
	Data      pingData          `json:"data"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

type pingData struct {
	Message string `json:"message"`
}

type pingAnswer struct {
	DeliveryID string `json:"delivery_id"`
	EventID    string `json:"event_id"`
}

// testSubscription sends a webhook.test event to this subscription only:
// the delivery is written straight to the deliveries topic, bypassing the
// matcher, so no other subscription of the tenant receives it. It goes
// through the sender like any delivery (signed, retried, logged).
func (s *Server) testSubscription(w http.ResponseWriter, r *http.Request) {
	sub, ok := s.lookup(w, r)
	if !ok {
		return
	}
	if !sub.Enabled {
		problem.Write(w, r, problem.New(http.StatusConflict, "subscription-disabled", "subscription "+sub.ID+" is disabled; enable it to test it"))
		return
	}
	d, err := s.ping(sub)
	if err != nil {
		s.unavailable(w, r, "encoding", err)
		return
	}
	value, err := s.Codecs.Delivery.Marshal(d)
	if err != nil {
		s.unavailable(w, r, "encoding", err)
		return
	}
	rec := &kgo.Record{Topic: s.Topics.Deliveries, Key: []byte(sub.ID), Value: value, Context: r.Context()}
	if err := s.Producer.ProduceSync(r.Context(), rec).FirstErr(); err != nil {
		s.unavailable(w, r, "Kafka", err)
		return
	}
	writeJSON(w, http.StatusAccepted, pingAnswer{DeliveryID: d.ID, EventID: d.EventID})
}

// ping is the delivery of a fresh test event to sub; its id derives from
// the event's and the subscription's, like the matcher's.
func (s *Server) ping(sub *record.Subscription) (*record.Delivery, error) {
	now := s.now()
	eventID := id.New("evt")
	body, err := json.Marshal(pingBody{
		ID: eventID, Type: TestEventType, Timestamp: now, Subject: sub.ID,
		Data:     pingData{Message: "This is a test webhook from Hookline."},
		Metadata: sub.Metadata,
	})
	if err != nil {
		return nil, err
	}
	return &record.Delivery{
		ID: id.Delivery(eventID, sub.ID), Tenant: sub.Tenant, SubscriptionID: sub.ID,
		EventID: eventID, EventType: TestEventType, URL: sub.URL, Payload: string(body),
		CreatedAt: now, EventTime: now, ResolveURL: true,
	}, nil
}
