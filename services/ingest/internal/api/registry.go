package api

import (
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/hookline/hookline/pkg/avro"
)

// registryRoutes serves the fixed schema table read-only at a Confluent
// schema registry's own paths, so that standard Avro deserializers (kcat
// -s avro, confluent-kafka's AvroDeserializer) can read Hookline's topics
// by pointing their registry URL at ingest. Subjects follow the default
// TopicNameStrategy: <topic>-value.
func (s *Server) registryRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /schemas/ids/{id}", s.schemaByID)
	mux.HandleFunc("GET /schemas/ids/{id}/schema", s.schemaByID)
	mux.HandleFunc("GET /subjects", s.subjects)
	mux.HandleFunc("GET /subjects/{subject}/versions", s.subjectVersions)
	mux.HandleFunc("GET /subjects/{subject}/versions/{version}", s.subjectVersion)
}

func (s *Server) subjectSchemas() map[string]string {
	t := s.Topics
	m := map[string]string{
		t.Events + "-value":        "dev.hookline.Event",
		t.Subscriptions + "-value": "dev.hookline.Subscription",
		t.Deliveries + "-value":    "dev.hookline.Delivery",
		t.DLQ + "-value":           "dev.hookline.Delivery",
		t.DeliveryLog + "-value":   "dev.hookline.DeliveryAttempt",
	}
	for _, tier := range s.Tiers {
		m[t.Retry(tier)+"-value"] = "dev.hookline.Delivery"
	}
	return m
}

func writeRegistry(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	writeJSONBody(w, status, v)
}

func (s *Server) schemaByID(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 32)
	e, ok := s.Codecs.Registry.ByID(uint32(id))
	if err != nil || !ok {
		registryNotFound(w, r, 40403, "Schema not found")
		return
	}
	if strings.HasSuffix(r.URL.Path, "/schema") {
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		_, _ = w.Write([]byte(e.Text))
		return
	}
	writeRegistry(w, http.StatusOK, map[string]any{"schema": e.Text})
}

func (s *Server) subjects(w http.ResponseWriter, _ *http.Request) {
	out := []string{}
	for subj := range s.subjectSchemas() {
		out = append(out, subj)
	}
	sort.Strings(out)
	writeRegistry(w, http.StatusOK, out)
}

func (s *Server) subjectEntry(w http.ResponseWriter, r *http.Request) (avro.Entry, bool) {
	name, ok := s.subjectSchemas()[r.PathValue("subject")]
	if !ok {
		registryNotFound(w, r, 40401, "Subject not found")
		return avro.Entry{}, false
	}
	e, _ := s.Codecs.Registry.ByName(name)
	return e, true
}

func (s *Server) subjectVersions(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.subjectEntry(w, r); ok {
		writeRegistry(w, http.StatusOK, []int{1})
	}
}

func (s *Server) subjectVersion(w http.ResponseWriter, r *http.Request) {
	e, ok := s.subjectEntry(w, r)
	if !ok {
		return
	}
	if v := r.PathValue("version"); v != "latest" && v != "1" && v != "-1" {
		registryNotFound(w, r, 40402, "Version not found")
		return
	}
	writeRegistry(w, http.StatusOK, map[string]any{
		"subject": r.PathValue("subject"), "version": 1, "id": e.ID, "schema": e.Text,
	})
}

// registryNotFound answers in the registry's own error shape, which its
// clients parse, rather than problem+json.
func registryNotFound(w http.ResponseWriter, _ *http.Request, code int, msg string) {
	writeRegistry(w, http.StatusNotFound, map[string]any{"error_code": code, "message": msg})
}
