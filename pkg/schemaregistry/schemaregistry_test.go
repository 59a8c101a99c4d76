package schemaregistry

// Unit tests against franz-go's in-memory fake of the Confluent API
// (srfake). integration_test.go runs the same checks against a real
// registry.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	hlavro "github.com/hookline/hookline/pkg/avro"
	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/pkg/wire"
)

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"HOOKLINE_SCHEMA_REGISTRY_URL":      "http://a:8081, http://b:8081",
		"HOOKLINE_SCHEMA_REGISTRY_USERNAME": "u",
		"HOOKLINE_SCHEMA_REGISTRY_PASSWORD": "p",
		"HOOKLINE_SCHEMA_REGISTRY_REGISTER": "false",
	}
	r := config.New(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	got := ConfigFromEnv(r)
	if err := r.Err(nil); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.URLs, " ") != "http://a:8081 http://b:8081" || got.Username != "u" || got.Password != "p" || got.Register {
		t.Errorf("ConfigFromEnv = %+v", got)
	}
	def := ConfigFromEnv(config.New(nil, func(string) (string, bool) { return "", false }))
	if len(def.URLs) != 0 || !def.Register {
		t.Errorf("defaults = %+v, want no registry and Register on", def)
	}
}

func TestLoadCodecsWithoutRegistryUsesFixedIDs(t *testing.T) {
	codecs, err := LoadCodecs(context.Background(), Config{}, wire.NewTopics("p.").Subjects(nil), testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	fixed, err := hlavro.Load()
	if err != nil {
		t.Fatal(err)
	}
	for name, id := range codecIDs(codecs) {
		if cur, _ := fixed.ByName(name); cur.ID != id {
			t.Errorf("%s: codec writes id %d, want the fixed %d", name, id, cur.ID)
		}
	}
}

// codecIDs is the id each codec writes, by record name.
func codecIDs(c *record.Codecs) map[string]uint32 {
	return map[string]uint32{
		"dev.hookline.Event":           c.Event.ID(),
		"dev.hookline.Subscription":    c.Subscription.ID(),
		"dev.hookline.EndpointStatus":  c.Status.ID(),
		"dev.hookline.Delivery":        c.Delivery.ID(),
		"dev.hookline.DeliveryAttempt": c.Attempt.ID(),
		"dev.hookline.EventType":       c.EventType.ID(),
		"dev.hookline.Notification":    c.Notification.ID(),
	}
}

func srClient(t *testing.T, url string) *sr.Client {
	t.Helper()
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func loadCodecs(t *testing.T, cfg Config, subjects map[string]string) (*record.Codecs, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return LoadCodecs(ctx, cfg, subjects, testinfra.Logger())
}

// checkRegistration registers subjects in the registry at url and checks
// what the registry then holds: every subject has its record's versions
// 1..n, version v being history version v, and the codecs write the
// registry's id of the latest. A second service starting registers nothing
// new, and one that only looks up gets the same ids.
func checkRegistration(t *testing.T, url string, subjects map[string]string) *record.Codecs {
	t.Helper()
	codecs, err := loadCodecs(t, Config{URLs: []string{url}, Register: true}, subjects)
	if err != nil {
		t.Fatalf("LoadCodecs: %v", err)
	}
	fixed, err := hlavro.Load()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cl := srClient(t, url)
	writes := codecIDs(codecs)
	for subject, name := range subjects {
		history := fixed.Versions(name)
		versions, err := cl.SubjectVersions(ctx, subject)
		if err != nil {
			t.Fatalf("versions of %s: %v", subject, err)
		}
		if len(versions) != len(history) {
			t.Fatalf("%s has versions %v, want %d (the history of %s)", subject, versions, len(history), name)
		}
		for i, v := range versions {
			if v != i+1 {
				t.Fatalf("%s has versions %v, want 1..%d", subject, versions, len(history))
			}
			ss, err := cl.SchemaByVersion(ctx, subject, v)
			if err != nil {
				t.Fatalf("%s version %d: %v", subject, v, err)
			}
			if !sameSchema(t, ss.Schema.Schema, history[i].Text) {
				t.Errorf("%s version %d is not history version %d of %s", subject, v, i+1, name)
			}
			if v == len(versions) && uint32(ss.ID) != writes[name] {
				t.Errorf("%s: codec writes id %d, want the registry's %d", name, writes[name], ss.ID)
			}
		}
	}

	again, err := loadCodecs(t, Config{URLs: []string{url}, Register: true}, subjects)
	if err != nil {
		t.Fatalf("LoadCodecs again: %v", err)
	}
	lookedUp, err := loadCodecs(t, Config{URLs: []string{url}}, subjects)
	if err != nil {
		t.Fatalf("LoadCodecs without registering: %v", err)
	}
	for name, id := range writes {
		if got := codecIDs(again)[name]; got != id {
			t.Errorf("%s: a second registration gave id %d, want %d", name, got, id)
		}
		if got := codecIDs(lookedUp)[name]; got != id {
			t.Errorf("%s: the lookup gave id %d, want %d", name, got, id)
		}
	}
	for subject, name := range subjects {
		if versions, _ := cl.SubjectVersions(ctx, subject); len(versions) != len(fixed.Versions(name)) {
			t.Errorf("%s has versions %v after a second registration", subject, versions)
		}
	}
	return codecs
}

// sameSchema compares schema texts as Avro does: by canonical form, since
// a registry may store a normalised text.
func sameSchema(t *testing.T, a, b string) bool {
	t.Helper()
	sa, err := avro.ParseWithCache(a, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatalf("parse %s: %v", a, err)
	}
	sb, err := avro.ParseWithCache(b, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatalf("parse %s: %v", b, err)
	}
	return sa.Fingerprint() == sb.Fingerprint()
}

// newerAttempt is a DeliveryAttempt schema one step ahead of the current
// one, as a newer writer would register it: one more field, with a default.
func newerAttempt(t *testing.T) string {
	t.Helper()
	fixed, err := hlavro.Load()
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := fixed.ByName("dev.hookline.DeliveryAttempt")
	text := strings.TrimSpace(cur.Text)
	i := strings.LastIndex(text, "]")
	if i < 0 {
		t.Fatalf("no field list in %s", text)
	}
	return text[:i] + `, {"name": "hookline_test_region", "type": "string", "default": ""}` + text[i:]
}

// sampleAttempt is a delivery attempt with the fields a reader checks.
func sampleAttempt() record.DeliveryAttempt {
	return record.DeliveryAttempt{
		DeliveryID: "dlv_1", Tenant: "acme", SubscriptionID: "sub_1", EventID: "evt_1",
		EventType: "order.created", URL: "https://example.com/hook", Attempt: 2,
		StartedAt: time.UnixMilli(1700000000123).UTC(), DurationMS: 42, StatusCode: 503,
		Outcome: record.OutcomeRetrying, Error: "503 Service Unavailable",
		// Non-empty, so that a decoded copy compares equal (empty ones decode
		// as empty, not nil).
		RequestHeaders:  map[string][]string{"Webhook-Id": {"dlv_1"}},
		ResponseHeaders: map[string][]string{"Retry-After": {"5"}},
		ResponseBody:    []byte("busy"),
	}
}

// checkNewerWriter registers a newer DeliveryAttempt under subject, as a
// newer writer would during a rolling upgrade, and checks that codecs
// (which never heard of it) read a value written with it through the
// registry, and refuse an id that holds another record.
func checkNewerWriter(t *testing.T, url, subject string, codecs *record.Codecs) []byte {
	t.Helper()
	ctx := context.Background()
	cl := srClient(t, url)
	text := newerAttempt(t)
	id, err := cl.RegisterSchema(ctx, subject, sr.Schema{Schema: text, Type: sr.TypeAvro}, -1, -1)
	if err != nil {
		t.Fatalf("register a newer DeliveryAttempt: %v", err)
	}
	if uint32(id) == codecs.Attempt.ID() {
		t.Fatalf("the newer schema got the current id %d", id)
	}
	// The newer writer's record: this one's fields, and one more.
	type newerRecord struct {
		record.DeliveryAttempt
		Region string `avro:"hookline_test_region"`
	}
	a := sampleAttempt()
	v := newerRecord{DeliveryAttempt: a, Region: "eu"}
	body, err := avro.Marshal(avro.MustParse(text), v)
	if err != nil {
		t.Fatalf("encode with the newer schema: %v", err)
	}
	value := append([]byte{0, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}, body...)
	var got record.DeliveryAttempt
	if err := codecs.Attempt.Unmarshal(value, &got); err != nil {
		t.Fatalf("a value of the newer schema (id %d): %v", id, err)
	}
	if !reflect.DeepEqual(got, a) {
		t.Errorf("decoded %+v, want %+v", got, a)
	}
	other := codecs.Event.ID()
	wrong := append([]byte{0, byte(other >> 24), byte(other >> 16), byte(other >> 8), byte(other)}, body...)
	if err := codecs.Attempt.Unmarshal(wrong, &got); err == nil {
		t.Errorf("a value framed with the Event's id %d decoded as a DeliveryAttempt", other)
	}
	return value
}

func TestRegisterInFake(t *testing.T) {
	fake := srfake.New()
	defer fake.Close()
	subjects := wire.NewTopics("p.").Subjects([]time.Duration{time.Second, time.Minute})
	codecs := checkRegistration(t, fake.URL(), subjects)
	checkNewerWriter(t, fake.URL(), "p.delivery-log-value", codecs)
}

func TestLookUpOnlyNeedsRegisteredSchemas(t *testing.T) {
	fake := srfake.New()
	defer fake.Close()
	_, err := loadCodecs(t, Config{URLs: []string{fake.URL()}}, wire.NewTopics("p.").Subjects(nil))
	if err == nil || !strings.Contains(err.Error(), "subject p.") || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("LoadCodecs of unregistered schemas = %v, want an error naming the subject at once", err)
	}
}

func TestRetriesUntilTheRegistryAnswers(t *testing.T) {
	fake := srfake.New()
	defer fake.Close()
	var failures atomic.Int32
	fake.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && failures.Add(1) <= 2 {
			http.Error(w, `{"error_code":50001,"message":"starting"}`, http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	if _, err := loadCodecs(t, Config{URLs: []string{fake.URL()}, Register: true}, wire.NewTopics("p.").Subjects(nil)); err != nil {
		t.Fatalf("LoadCodecs: %v", err)
	}
	if n := failures.Load(); n <= 2 {
		t.Fatalf("%d registrations tried, want the failures retried", n)
	}
}

func TestBasicAuth(t *testing.T) {
	fake := srfake.New(srfake.WithAuth("Basic " + base64.StdEncoding.EncodeToString([]byte("hook:line"))))
	defer fake.Close()
	subjects := wire.NewTopics("p.").Subjects(nil)
	if _, err := loadCodecs(t, Config{URLs: []string{fake.URL()}, Username: "hook", Password: "line", Register: true}, subjects); err != nil {
		t.Fatalf("with the right credentials: %v", err)
	}
	_, err := loadCodecs(t, Config{URLs: []string{fake.URL()}, Username: "hook", Password: "nope", Register: true}, subjects)
	var re *sr.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
		t.Fatalf("with a wrong password: %v, want the registry's 403 at once", err)
	}
}

// A registry that gave one schema different ids in different subjects
// would leave the codecs no single id to write.
func TestRefusesDifferentIDsPerSubject(t *testing.T) {
	fake := srfake.New()
	defer fake.Close()
	fake.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && r.URL.Path == "/subjects/p.dlq-value/versions" {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"id": 999}`)
			return true
		}
		return false
	})
	_, err := loadCodecs(t, Config{URLs: []string{fake.URL()}, Register: true}, wire.NewTopics("p.").Subjects(nil))
	if err == nil || !strings.Contains(err.Error(), "has id 999 here but") {
		t.Fatalf("LoadCodecs = %v, want the ids' disagreement reported", err)
	}
}

// TestRegisterHistoryInOrder uses a record with two released versions, as
// the embedded schemas may not have yet: both land in every subject of the
// record, oldest first, and the codecs write the newest's id.
func TestRegisterHistoryInOrder(t *testing.T) {
	const (
		v1 = `{"type":"record","name":"A","namespace":"x","fields":[{"name":"a","type":"string"}]}`
		v2 = `{"type":"record","name":"A","namespace":"x","fields":[{"name":"a","type":"string"},{"name":"b","type":"int","default":7}]}`
		b1 = `{"type":"record","name":"B","namespace":"x","fields":[{"name":"z","type":"long"}]}`
	)
	reg, err := hlavro.LoadFS(fstest.MapFS{
		"ids.json":          {Data: []byte(`{"schemas":[{"id":3,"name":"x.A","file":"history/a.v1.avsc"},{"id":5,"name":"x.B","file":"b.avsc"},{"id":9,"name":"x.A","file":"a.avsc"}]}`)},
		"history/a.v1.avsc": {Data: []byte(v1)},
		"a.avsc":            {Data: []byte(v2)},
		"b.avsc":            {Data: []byte(b1)},
	})
	if err != nil {
		t.Fatal(err)
	}
	fake := srfake.New()
	defer fake.Close()
	// Something else registered first, so the registry's ids differ from ours.
	if _, _, err := fake.RegisterSchema("other-value", sr.Schema{Schema: b1}); err != nil {
		t.Fatal(err)
	}
	subjects := map[string]string{"one-value": "x.A", "two-value": "x.A", "b-value": "x.B"}
	got, err := register(context.Background(), Config{URLs: []string{fake.URL()}, Register: true}, reg, subjects, testinfra.Logger())
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	cl := srClient(t, fake.URL())
	for subject, name := range subjects {
		want := map[string][]string{"x.A": {v1, v2}, "x.B": {b1}}[name]
		versions, err := cl.SubjectVersions(context.Background(), subject)
		if err != nil || len(versions) != len(want) {
			t.Fatalf("%s: versions %v, %v; want %d", subject, versions, err, len(want))
		}
		for i, text := range want {
			ss, err := cl.SchemaByVersion(context.Background(), subject, i+1)
			if err != nil || !sameSchema(t, ss.Schema.Schema, text) {
				t.Fatalf("%s version %d = %s, %v; want %s", subject, i+1, ss.Schema.Schema, err, text)
			}
			e := got.Versions(name)[i]
			if e.ID != uint32(ss.ID) || e.Version != i+1 {
				t.Errorf("%s version %d: registry id %d, renumbered entry id %d version %d", subject, i+1, ss.ID, e.ID, e.Version)
			}
		}
	}
	if b, _ := got.ByName("x.B"); b.ID == 5 {
		t.Errorf("x.B kept its fixed id 5")
	}
	codec, err := hlavro.NewCodec[struct {
		A string `avro:"a"`
		B int32  `avro:"b"`
	}](got, "x.A")
	if err != nil {
		t.Fatal(err)
	}
	if cur := got.Versions("x.A")[1]; codec.ID() != cur.ID {
		t.Errorf("codec writes id %d, want version 2's %d", codec.ID(), cur.ID)
	}
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"no answer", fmt.Errorf("unable to POST: %w", &url.Error{Op: "Post", URL: "http://r", Err: errors.New("connection refused")}), true},
		{"503", &sr.ResponseError{StatusCode: 503}, true},
		{"500", &sr.ResponseError{StatusCode: 500}, true},
		{"408", &sr.ResponseError{StatusCode: 408}, true},
		{"429", &sr.ResponseError{StatusCode: 429}, true},
		{"401", &sr.ResponseError{StatusCode: 401}, false},
		{"404 not registered", fmt.Errorf("subject s: %w", &sr.ResponseError{StatusCode: 404}), false},
		{"409 incompatible", &sr.ResponseError{StatusCode: 409}, false},
		{"422 invalid", &sr.ResponseError{StatusCode: 422}, false},
		{"ids disagree", errors.New("has id 9 here but 8 in another subject"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := retryable(tc.err); got != tc.want {
				t.Errorf("retryable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
