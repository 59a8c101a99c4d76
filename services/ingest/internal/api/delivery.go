package api

import (
	"github.com/hookline/hookline/pkg/problem"
	"github.com/hookline/hookline/pkg/record"
)

// Compression values a subscription may ask for; "" sends bodies as they are.
var compressions = map[string]bool{"": true, "gzip": true}

// applyDelivery validates and writes the settings of how the sender makes
// its requests: compression and the client certificate.
func (s *Server) applyDelivery(in *subscriptionInput, sub *record.Subscription) []problem.FieldError {
	var errs []problem.FieldError
	if in.Compression != nil {
		if !compressions[*in.Compression] {
			errs = append(errs, problem.FieldError{Field: "compression", Detail: `must be "gzip" or "" (none)`})
		}
		sub.Compression = *in.Compression
	}
	if in.ClientTLS != nil {
		var fe []problem.FieldError
		sub.ClientTLS, fe = s.clientTLSOf(in.ClientTLS, sub)
		errs = append(errs, fe...)
	}
	return errs
}
