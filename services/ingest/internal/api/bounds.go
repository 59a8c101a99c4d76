package api

import (
	"fmt"

	"github.com/hookline/hookline/pkg/condition"
	"github.com/hookline/hookline/pkg/emailaddr"
	"github.com/hookline/hookline/pkg/routeurl"
)

// bound is the range of a number, a length (bytes) or a count (items,
// keys): Min to Max, both included.
type bound struct{ Min, Max int }

func (b bound) holds(n int) bool { return n >= b.Min && n <= b.Max }

// Named bounds of the subscription fields. Each is what apply enforces,
// what the OpenAPI document states (TestOpenAPIBoundsMatchTheTable) and
// what docs/limits.md lists (TestLimitsDocListsTheBounds): a bound is
// changed here, and the tests say where else.
var (
	nameLength        = bound{0, 512}
	descriptionLength = bound{0, 4 * nameLength.Max}
	urlLength         = bound{0, routeurl.MaxURLLen}
	eventTypesCount   = bound{1, 100}
	eventTypeLength   = bound{1, 128}
	expressionLength  = bound{0, condition.MaxExpressionLen}
	headersCount      = bound{0, 32}
	headerValueLength = bound{0, 4096}
	rateLimit         = bound{0, 10000} // per second; 0: unlimited
	timeoutMS         = bound{1000, 60000}
	maxAttempts       = bound{1, 20}
	// maxInFlight bounds requests in flight to one endpoint at once; 0
	// leaves it to the sender's adaptive default.
	maxInFlight         = bound{0, 256}
	metadataCount       = bound{0, 32}
	metadataKeyLength   = bound{1, 128}
	metadataValueLength = bound{0, nameLength.Max}
	routesCount         = bound{0, 20}
	allowedHostsCount   = bound{0, 20}
	deriveCount         = bound{0, 20}
	deriveFieldLength   = bound{0, condition.MaxFieldLen}
	deriveExprLength    = bound{1, condition.MaxExpressionLen}
	// alertEmailsCount is as many as notify's per-tenant defaults, so an
	// alert has a bounded number of recipients.
	alertEmailsCount  = bound{0, 10}
	alertEmailLength  = bound{3, emailaddr.MaxLen}
	tokenLength       = bound{1, 4096}
	usernameLength    = bound{1, nameLength.Max}
	passwordLength    = bound{0, tokenLength.Max}
	batchEvents       = bound{1, 500}
	batchWaitMS       = bound{0, 60000}
	certificateLength = bound{1, 16 << 10}
	keyLength         = bound{0, 8 << 10}
)

// maxMetadataJSON bounds the metadata as it rides in every delivery body:
// the record limit is sized for it (docs/limits.md).
const maxMetadataJSON = 16 << 10

// What a bound limits, as the OpenAPI keywords that state it.
type measure int

const (
	value      measure = iota // minimum, maximum
	length                    // minLength, maxLength
	items                     // minItems, maxItems
	properties                // minProperties, maxProperties
)

// fieldBound is where a bound stands in a subscription body. The path
// names members with dots; "[]" is every item of an array, "{}" every
// value of an object and "{key}" every key of it.
type fieldBound struct {
	path    string
	measure measure
	bound   bound
}

// subscriptionBounds places every named bound in a subscription body.
var subscriptionBounds = []fieldBound{
	{"name", length, nameLength},
	{"description", length, descriptionLength},
	{"url", length, urlLength},
	{"event_types", items, eventTypesCount},
	{"event_types[]", length, eventTypeLength},
	{"expression", length, expressionLength},
	{"headers", properties, headersCount},
	{"headers{}", length, headerValueLength},
	{"auth.token", length, tokenLength},
	{"auth.username", length, usernameLength},
	{"auth.password", length, passwordLength},
	{"rate_limit_per_second", value, rateLimit},
	{"timeout_ms", value, timeoutMS},
	{"max_attempts", value, maxAttempts},
	{"max_in_flight", value, maxInFlight},
	{"metadata", properties, metadataCount},
	{"metadata{key}", length, metadataKeyLength},
	{"metadata{}", length, metadataValueLength},
	{"routes", items, routesCount},
	{"routes[].url", length, urlLength},
	{"allowed_hosts", items, allowedHostsCount},
	{"batch.max_events", value, batchEvents},
	{"batch.max_wait_ms", value, batchWaitMS},
	{"derive", items, deriveCount},
	{"derive[].field", length, deriveFieldLength},
	{"derive[].expression", length, deriveExprLength},
	{"alert_emails", items, alertEmailsCount},
	{"alert_emails[]", length, alertEmailLength},
	{"client_tls.certificate", length, certificateLength},
	{"client_tls.key", length, keyLength},
}

// rangeText says what a number must be: "1000 to 60000", with what its
// lowest value means when that needs saying ("0 (unlimited) to 10000").
func rangeText(b bound, lowest string) string {
	if lowest != "" {
		return fmt.Sprintf("%d (%s) to %d", b.Min, lowest, b.Max)
	}
	return fmt.Sprintf("%d to %d", b.Min, b.Max)
}
