package api

import (
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/hookline/hookline/pkg/avro"
)

// registryRoutes serves the codecs' schemas read-only at a Confluent
// schema registry's own paths, so that standard Avro deserializers (kcat
// -s avro, confluent-kafka's AvroDeserializer) can read Hookline's topics
// by pointing their registry URL at ingest. Subjects follow the default
// TopicNameStrategy (<topic>-value) and list every released version of
// their record, as a real registry does once Hookline registered them. The
// ids are the fixed ones, or a real registry's when one is configured.
func (s *Server) registryRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /schemas/ids/{id}", s.schemaByID)
	mux.HandleFunc("GET /schemas/ids/{id}/schema", s.schemaByID)
	mux.HandleFunc("GET /subjects", s.subjects)
	mux.HandleFunc("GET /subjects/{subject}/versions", s.subjectVersions)
	mux.HandleFunc("GET /subjects/{subject}/versions/{version}", s.subjectVersion)
}

func writeRegistry(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	writeJSONBody(w, status, v)
}

func (s *Server) schemaByID(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 32)
	e, ok := s.Codecs.Registry.ByID(uint32(id))
	if err != nil || !ok {
		registryNotFound(w, 40403, "Schema not found")
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
	for subj := range s.Topics.Subjects(s.Tiers) {
		out = append(out, subj)
	}
	sort.Strings(out)
	writeRegistry(w, http.StatusOK, out)
}

// subjectHistory returns the versions of the subject's record, oldest
// first, or answers 404 itself.
func (s *Server) subjectHistory(w http.ResponseWriter, r *http.Request) ([]avro.Entry, bool) {
	name, ok := s.Topics.Subjects(s.Tiers)[r.PathValue("subject")]
	versions := s.Codecs.Registry.Versions(name)
	if !ok || len(versions) == 0 {
		registryNotFound(w, 40401, "Subject not found")
		return nil, false
	}
	return versions, true
}

func (s *Server) subjectVersions(w http.ResponseWriter, r *http.Request) {
	versions, ok := s.subjectHistory(w, r)
	if !ok {
		return
	}
	out := make([]int, len(versions))
	for i, e := range versions {
		out[i] = e.Version
	}
	writeRegistry(w, http.StatusOK, out)
}

// subjectVersion answers a version number, "latest" or -1 (the latest).
func (s *Server) subjectVersion(w http.ResponseWriter, r *http.Request) {
	versions, ok := s.subjectHistory(w, r)
	if !ok {
		return
	}
	v := len(versions)
	if p := r.PathValue("version"); p != "latest" && p != "-1" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			writeRegistry(w, http.StatusUnprocessableEntity, map[string]any{"error_code": 42202, "message": "Invalid version"})
			return
		}
		if n > len(versions) {
			registryNotFound(w, 40402, "Version not found")
			return
		}
		v = n
	}
	e := versions[v-1]
	writeRegistry(w, http.StatusOK, map[string]any{
		"subject": r.PathValue("subject"), "version": e.Version, "id": e.ID, "schema": e.Text,
	})
}

// registryNotFound answers in the registry's own error shape, which its
// clients parse, rather than problem+json.
func registryNotFound(w http.ResponseWriter, code int, msg string) {
	writeRegistry(w, http.StatusNotFound, map[string]any{"error_code": code, "message": msg})
}
