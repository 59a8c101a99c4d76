package api

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hookline/hookline/pkg/problem"
	"github.com/hookline/hookline/pkg/record"
)

// Page sizes of GET /v1/subscriptions.
const (
	defaultPageSize = 50
	maxPageSize     = 250
)

// listAnswer is one page; NextCursor is null on the last page.
type listAnswer struct {
	Data       []subscriptionView `json:"data"`
	NextCursor *string            `json:"next_cursor"`
}

// listSubscriptions pages through the tenant's subscriptions, oldest first
// (created_at, then id). The cursor names the last subscription of the
// previous page by position, not by existence, so a page is stable even if
// that subscription is deleted in between.
func (s *Server) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	limit, after, errs := pageOf(r.URL.Query())
	if len(errs) > 0 {
		problem.Write(w, r, problem.Invalid(errs...))
		return
	}
	if !s.viewReady(w, r) {
		return
	}
	all := s.View.List(tenantOf(r))
	if p := principalOf(r); p.subs != nil {
		all = slices.DeleteFunc(all, func(sub *record.Subscription) bool { return !visible(r, sub.ID) })
	}
	start := 0
	if after != nil {
		start = sort.Search(len(all), func(i int) bool { return after.before(all[i]) })
	}
	end := min(start+limit, len(all))
	out := listAnswer{Data: make([]subscriptionView, 0, end-start)}
	for _, sub := range all[start:end] {
		out.Data = append(out.Data, viewOf(sub))
	}
	s.addHealth(r, out.Data)
	if end < len(all) {
		c := cursorOf(all[end-1]).String()
		out.NextCursor = &c
	}
	writeJSON(w, http.StatusOK, out)
}

// pageOf reads ?limit= and ?cursor=.
func pageOf(q url.Values) (limit int, after *cursor, errs []problem.FieldError) {
	limit = defaultPageSize
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > maxPageSize {
			errs = append(errs, problem.FieldError{Field: "limit", Detail: fmt.Sprintf("must be a whole number from 1 to %d", maxPageSize)})
		}
		limit = n
	}
	if v := q.Get("cursor"); v != "" {
		c, err := parseCursor(v)
		if err != nil {
			errs = append(errs, problem.FieldError{Field: "cursor", Detail: "is not a cursor from a previous page's next_cursor"})
		}
		after = &c
	}
	return limit, after, errs
}

// cursor is a position in the list order.
type cursor struct {
	created time.Time
	id      string
}

func cursorOf(s *record.Subscription) cursor { return cursor{created: s.CreatedAt, id: s.ID} }

// String is the opaque form handed to clients.
func (c cursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.created.UnixMilli(), 10) + "/" + c.id))
}

func parseCursor(s string) (cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, err
	}
	ms, subID, ok := strings.Cut(string(raw), "/")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || subID == "" {
		return cursor{}, fmt.Errorf("malformed cursor")
	}
	return cursor{created: time.UnixMilli(n), id: subID}, nil
}

// before reports whether c sorts before s, i.e. s belongs after the cursor.
func (c cursor) before(s *record.Subscription) bool {
	if !c.created.Equal(s.CreatedAt) {
		return c.created.Before(s.CreatedAt)
	}
	return c.id < s.ID
}
