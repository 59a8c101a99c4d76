package schemaregistry

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	hlavro "github.com/hookline/hookline/pkg/avro"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/testinfra"
)

// getJSON is a plain HTTP GET, as any registry client would send it.
func getJSON(url string, out any) error {
	cl := http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &sr.ResponseError{Method: http.MethodGet, URL: url, StatusCode: resp.StatusCode}
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// roundTrip produces value to topic and returns the value read back.
func roundTrip(t *testing.T, cfg kafka.Config, topic string, value []byte) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kafka.NewClient(cfg, testinfra.Logger(), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	key := strconv.FormatInt(time.Now().UnixNano(), 10)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: value}).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("record not read back from %s: %v", topic, err)
		}
		var got []byte
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Key) == key {
				got = r.Value
			}
		})
		if got != nil {
			return got
		}
	}
}

// TestRealRegistry runs Hookline's registration against a real
// Confluent-compatible registry (Apicurio Registry's ccompat API under
// make test), then writes a delivery attempt to real Kafka with the
// registry's id and reads it back as a consumer that only knows the
// registry would.
func TestRealRegistry(t *testing.T) {
	url := testinfra.SchemaRegistry(t)
	tiers := []time.Duration{time.Second, 2 * time.Second}
	cfg := testinfra.Kafka(t, tiers...)
	subjects := cfg.Topics.Subjects(tiers)
	t.Cleanup(func() {
		// Best effort: the registry is shared by every test run.
		cl, err := sr.NewClient(sr.URLs(url))
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for s := range subjects {
			_, _ = cl.DeleteSubject(ctx, s, sr.SoftDelete)
			_, _ = cl.DeleteSubject(ctx, s, sr.HardDelete)
		}
	})

	codecs := checkRegistration(t, url, subjects)

	fixed, err := hlavro.Load()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("versions over plain HTTP", func(t *testing.T) {
		for subject, name := range subjects {
			var versions []int
			if err := getJSON(url+"/subjects/"+subject+"/versions", &versions); err != nil {
				t.Fatalf("GET /subjects/%s/versions: %v", subject, err)
			}
			if want := len(fixed.Versions(name)); len(versions) != want || versions[0] != 1 || versions[want-1] != want {
				t.Errorf("GET /subjects/%s/versions = %v, want 1..%d, the history of %s", subject, versions, want, name)
			}
		}
	})

	logSubject := cfg.Topics.DeliveryLog + "-value"
	t.Run("delivery attempt through Kafka", func(t *testing.T) {
		a := sampleAttempt()
		value, err := codecs.Attempt.Marshal(&a)
		if err != nil {
			t.Fatal(err)
		}
		got := roundTrip(t, cfg, cfg.Topics.DeliveryLog, value)

		// What the registry says is the subject's latest schema is the id
		// on the wire.
		var latest struct {
			ID int `json:"id"`
		}
		if err := getJSON(url+"/subjects/"+logSubject+"/versions/latest", &latest); err != nil {
			t.Fatal(err)
		}
		id, err := hlavro.SchemaID(got)
		if err != nil || int(id) != latest.ID {
			t.Fatalf("value framed with id %d (%v), want the registry's %d", id, err, latest.ID)
		}

		// A consumer that knows only the registry: the schema by id over
		// HTTP, decoded by a generic Avro reader.
		var byID struct {
			Schema string `json:"schema"`
		}
		if err := getJSON(url+"/schemas/ids/"+strconv.Itoa(latest.ID), &byID); err != nil {
			t.Fatal(err)
		}
		var generic map[string]any
		if err := avro.Unmarshal(avro.MustParse(byID.Schema), got[5:], &generic); err != nil {
			t.Fatalf("generic decode with the registry's schema: %v", err)
		}
		if generic["delivery_id"] != a.DeliveryID || generic["tenant"] != a.Tenant ||
			generic["status_code"] != int(a.StatusCode) || generic["outcome"] != a.Outcome {
			t.Errorf("generic decode = %v, want %+v", generic, a)
		}

		// Another Hookline service, starting later, reads it too.
		other, err := loadCodecs(t, Config{URLs: []string{url}, Register: true}, subjects)
		if err != nil {
			t.Fatal(err)
		}
		var back record.DeliveryAttempt
		if err := other.Attempt.Unmarshal(got, &back); err != nil || !reflect.DeepEqual(back, a) {
			t.Errorf("Hookline decode = %+v, %v; want %+v", back, err, a)
		}
	})

	t.Run("newer writer through Kafka", func(t *testing.T) {
		// Codecs built before the newer schema existed resolve its id
		// through the registry when its first record arrives.
		before, err := loadCodecs(t, Config{URLs: []string{url}, Register: true}, subjects)
		if err != nil {
			t.Fatal(err)
		}
		value := checkNewerWriter(t, url, logSubject, codecs)
		got := roundTrip(t, cfg, cfg.Topics.DeliveryLog, value)
		var back record.DeliveryAttempt
		if err := before.Attempt.Unmarshal(got, &back); err != nil || !reflect.DeepEqual(back, sampleAttempt()) {
			t.Errorf("decode of the newer writer's record = %+v, %v", back, err)
		}
	})

	t.Run("incompatible change refused", func(t *testing.T) {
		// A subject whose version 1 no released DeliveryAttempt can follow
		// under BACKWARD, the Confluent registry's default, set here so the
		// test does not depend on how the registry was started.
		subject := cfg.Topics.Prefix + "incompatible-value"
		broken := `{"type":"record","name":"DeliveryAttempt","namespace":"dev.hookline","fields":[{"name":"delivery_id","type":"long"}]}`
		cl := srClient(t, url)
		ctx := context.Background()
		if _, err := cl.RegisterSchema(ctx, subject, sr.Schema{Schema: broken, Type: sr.TypeAvro}, -1, -1); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_, _ = cl.DeleteSubject(ctx, subject, sr.SoftDelete)
			_, _ = cl.DeleteSubject(ctx, subject, sr.HardDelete)
		})
		for _, r := range cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatBackward}, subject) {
			if r.Err != nil {
				t.Fatalf("set BACKWARD on %s: %v", subject, r.Err)
			}
		}
		_, err := register(ctx, Config{URLs: []string{url}, Register: true}, fixed,
			map[string]string{subject: "dev.hookline.DeliveryAttempt"}, testinfra.Logger())
		var re *sr.ResponseError
		if err == nil || !strings.Contains(err.Error(), subject) || !errors.As(err, &re) || re.StatusCode != http.StatusConflict {
			t.Fatalf("register over an incompatible version = %v, want the registry's 409 naming %s", err, subject)
		}
	})
}
