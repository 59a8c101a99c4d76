package alert

import (
	"fmt"
	"strings"

	"github.com/hookline/hookline/pkg/emailaddr"
	"github.com/hookline/hookline/pkg/record"
)

// AllTenants is the tenant name of a default recipient of every tenant.
const AllTenants = "*"

// MaxDefaults bounds the default recipients of one tenant (the API bounds
// alert_emails the same way), so a notification has at most 2*MaxDefaults
// recipients.
const MaxDefaults = 10

// Defaults are the recipients an operator gives each tenant
// (HOOKLINE_ALERT_DEFAULT_EMAILS), added to every subscription's
// alert_emails.
type Defaults map[string][]string

// ParseDefaults reads "tenant=address" entries; a tenant repeats for more
// addresses, and tenant * is every tenant.
func ParseDefaults(entries []string) (Defaults, error) {
	d := Defaults{}
	for _, e := range entries {
		tenant, addr, ok := strings.Cut(e, "=")
		tenant, addr = strings.TrimSpace(tenant), strings.TrimSpace(addr)
		if !ok || tenant == "" {
			return nil, fmt.Errorf("entry %q is not tenant=address (tenant * for every tenant)", e)
		}
		if err := emailaddr.Check(addr); err != nil {
			return nil, fmt.Errorf("entry for %s: %w", tenant, err)
		}
		if len(d[tenant]) == MaxDefaults {
			return nil, fmt.Errorf("tenant %s has more than %d default recipients", tenant, MaxDefaults)
		}
		d[tenant] = append(d[tenant], addr)
	}
	return d, nil
}

// recipients are who hears of a notification about sub (nil when the
// subscription is gone or not the tenant's): its alert_emails and the
// tenant's defaults, each address once. Addresses that are not valid (a
// record written around the API's checks) are left out and counted in
// invalid.
func (d Defaults) recipients(tenant string, sub *record.Subscription) (out []string, invalid int) {
	seen := map[string]bool{}
	add := func(addrs []string) {
		for _, a := range addrs {
			if emailaddr.Check(a) != nil {
				invalid++
				continue
			}
			if n := emailaddr.Normal(a); !seen[n] {
				seen[n] = true
				out = append(out, a)
			}
		}
	}
	if sub != nil && sub.Tenant == tenant {
		add(sub.AlertEmails)
	}
	add(d[tenant])
	add(d[AllTenants])
	return out, invalid
}
