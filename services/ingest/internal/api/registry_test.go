package api

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"testing/fstest"
	"time"

	"github.com/hookline/hookline/pkg/avro"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/wire"
	"github.com/hookline/hookline/schemas"
)

// registryGet sends an unauthenticated GET, as a deserializer does, and
// decodes the JSON answer into out.
func registryGet(t *testing.T, h http.Handler, path string, wantStatus int, out any) {
	t.Helper()
	rec := do(t, h, http.MethodGet, path, "", "")
	if rec.Code != wantStatus {
		t.Fatalf("GET %s = %d %s, want %d", path, rec.Code, rec.Body, wantStatus)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/vnd.schemaregistry.v1+json" {
		t.Errorf("GET %s content type %q", path, ct)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
		t.Fatalf("GET %s: %s: %v", path, rec.Body, err)
	}
}

type subjectVersionAnswer struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
	ID      uint32 `json:"id"`
	Schema  string `json:"schema"`
}

// fixedIDs reads schemas/ids.json on its own: the ids of each record,
// lowest (oldest version) first.
func fixedIDs(t *testing.T) map[string][]uint32 {
	t.Helper()
	raw, err := fs.ReadFile(schemas.FS, "ids.json")
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Schemas []struct {
			ID   uint32 `json:"id"`
			Name string `json:"name"`
		} `json:"schemas"`
	}
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	out := map[string][]uint32{}
	for _, s := range table.Schemas {
		out[s.Name] = append(out[s.Name], s.ID)
	}
	for _, ids := range out {
		slices.Sort(ids)
	}
	return out
}

// TestRegistryServesHistory checks every subject against ids.json: as many
// versions as the record has ids, version N under its Nth id.
func TestRegistryServesHistory(t *testing.T) {
	s := offlineServer(t)
	s.Topics = wire.NewTopics("hookline.")
	s.Tiers = []time.Duration{5 * time.Second, time.Minute}
	h := s.Handler()

	want := map[string]string{
		"hookline.events-value":          "dev.hookline.Event",
		"hookline.subscriptions-value":   "dev.hookline.Subscription",
		"hookline.endpoint-status-value": "dev.hookline.EndpointStatus",
		"hookline.deliveries-value":      "dev.hookline.Delivery",
		"hookline.retry.5s-value":        "dev.hookline.Delivery",
		"hookline.retry.1m-value":        "dev.hookline.Delivery",
		"hookline.dlq-value":             "dev.hookline.Delivery",
		"hookline.delivery-log-value":    "dev.hookline.DeliveryAttempt",
		"hookline.event-types-value":     "dev.hookline.EventType",
		"hookline.notifications-value":   "dev.hookline.Notification",
		"hookline.redeliveries-value":    "dev.hookline.Event",
	}
	var subjects []string
	registryGet(t, h, "/subjects", http.StatusOK, &subjects)
	var wantSubjects []string
	for s := range want {
		wantSubjects = append(wantSubjects, s)
	}
	slices.Sort(wantSubjects)
	if !slices.Equal(subjects, wantSubjects) {
		t.Fatalf("subjects = %v, want %v", subjects, wantSubjects)
	}

	ids := fixedIDs(t)
	for subject, name := range want {
		t.Run(subject, func(t *testing.T) {
			var versions []int
			registryGet(t, h, "/subjects/"+subject+"/versions", http.StatusOK, &versions)
			if len(versions) != len(ids[name]) || len(versions) == 0 {
				t.Fatalf("versions = %v, want one per id of %s in ids.json %v", versions, name, ids[name])
			}
			for i, v := range versions {
				if v != i+1 {
					t.Fatalf("versions = %v, want 1..%d", versions, len(versions))
				}
				var got subjectVersionAnswer
				registryGet(t, h, "/subjects/"+subject+"/versions/"+strconv.Itoa(v), http.StatusOK, &got)
				if got.ID != ids[name][i] || got.Version != v || got.Subject != subject {
					t.Errorf("version %d = id %d version %d subject %q, want id %d", v, got.ID, got.Version, got.Subject, ids[name][i])
				}
				var byID struct{ Schema string }
				registryGet(t, h, "/schemas/ids/"+strconv.Itoa(int(got.ID)), http.StatusOK, &byID)
				if byID.Schema == "" || byID.Schema != got.Schema {
					t.Errorf("schema of id %d differs between /schemas/ids and the subject", got.ID)
				}
			}
			var latest subjectVersionAnswer
			registryGet(t, h, "/subjects/"+subject+"/versions/latest", http.StatusOK, &latest)
			if cur := ids[name][len(ids[name])-1]; latest.ID != cur || latest.Version != len(versions) {
				t.Errorf("latest = id %d version %d, want id %d version %d", latest.ID, latest.Version, cur, len(versions))
			}
		})
	}
}

// TestRegistryServesNewVersions uses a history with two versions of the
// delivery attempt, ids 4 and 9, to show a v2 appears without code changes.
func TestRegistryServesNewVersions(t *testing.T) {
	const v1 = `{"type":"record","name":"DeliveryAttempt","namespace":"dev.hookline","fields":[{"name":"delivery_id","type":"string"}]}`
	const v2 = `{"type":"record","name":"DeliveryAttempt","namespace":"dev.hookline","fields":[{"name":"delivery_id","type":"string"},{"name":"region","type":"string","default":""}]}`
	reg, err := avro.LoadFS(fstest.MapFS{
		"ids.json": {Data: []byte(`{"schemas":[
			{"id":4,"name":"dev.hookline.DeliveryAttempt","file":"history/delivery_attempt.v1.avsc"},
			{"id":9,"name":"dev.hookline.DeliveryAttempt","file":"delivery_attempt.avsc"}]}`)},
		"history/delivery_attempt.v1.avsc": {Data: []byte(v1)},
		"delivery_attempt.avsc":            {Data: []byte(v2)},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := offlineServer(t)
	s.Topics = wire.NewTopics("hookline.")
	s.Codecs = &record.Codecs{Registry: reg} // the registry paths use nothing else
	h := s.Handler()
	const subject = "/subjects/hookline.delivery-log-value"

	var versions []int
	registryGet(t, h, subject+"/versions", http.StatusOK, &versions)
	if !slices.Equal(versions, []int{1, 2}) {
		t.Fatalf("versions = %v, want [1 2]", versions)
	}
	for _, tc := range []struct {
		version string
		want    subjectVersionAnswer
	}{
		{"1", subjectVersionAnswer{Version: 1, ID: 4, Schema: v1}},
		{"2", subjectVersionAnswer{Version: 2, ID: 9, Schema: v2}},
		{"latest", subjectVersionAnswer{Version: 2, ID: 9, Schema: v2}},
		{"-1", subjectVersionAnswer{Version: 2, ID: 9, Schema: v2}},
	} {
		var got subjectVersionAnswer
		registryGet(t, h, subject+"/versions/"+tc.version, http.StatusOK, &got)
		tc.want.Subject = "hookline.delivery-log-value"
		if got != tc.want {
			t.Errorf("version %s = %+v, want %+v", tc.version, got, tc.want)
		}
	}

	for _, tc := range []struct {
		path   string
		status int
		code   int
	}{
		{subject + "/versions/3", http.StatusNotFound, 40402},
		{subject + "/versions/0", http.StatusUnprocessableEntity, 42202},
		{subject + "/versions/two", http.StatusUnprocessableEntity, 42202},
		{"/subjects/hookline.nope-value/versions", http.StatusNotFound, 40401},
		// A subject whose record this registry has no schema of.
		{"/subjects/hookline.events-value/versions/latest", http.StatusNotFound, 40401},
		{"/schemas/ids/5", http.StatusNotFound, 40403},
		{"/schemas/ids/x", http.StatusNotFound, 40403},
	} {
		var got struct {
			Code int `json:"error_code"`
		}
		registryGet(t, h, tc.path, tc.status, &got)
		if got.Code != tc.code {
			t.Errorf("GET %s error_code = %d, want %d", tc.path, got.Code, tc.code)
		}
	}
}
