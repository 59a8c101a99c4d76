package event

import (
	"context"

	"github.com/hookline/hookline/pkg/idempotency"
)

// DedupeKey is the key under which a producer-chosen event id is
// remembered; "" for an event whose id Hookline assigns (it cannot repeat).
func (in *Input) DedupeKey(tenant string) string {
	if in.ID == "" {
		return ""
	}
	return tenant + ":" + in.ID
}

// Duplicates reports which keys were seen before: already marked in store,
// or repeated earlier in keys. Empty keys are never duplicates.
//
// Callers check, produce, and only then Mark what they produced. Claiming
// first would lose an event whose claim outlives a failed or killed
// produce: the producer's retry would be answered "duplicate" although
// nothing was written. Checking first instead lets two concurrent sends of
// one id both through, which yields the same delivery ids downstream, where
// they are deduplicated.
func Duplicates(ctx context.Context, store *idempotency.Store, keys []string) ([]bool, error) {
	dup := make([]bool, len(keys))
	var ask []string
	var at []int
	seen := map[string]bool{}
	for i, k := range keys {
		switch {
		case k == "":
		case seen[k]:
			dup[i] = true
		default:
			seen[k] = true
			ask = append(ask, k)
			at = append(at, i)
		}
	}
	marked, err := store.Marked(ctx, ask)
	if err != nil {
		return nil, err
	}
	for j, m := range marked {
		dup[at[j]] = m
	}
	return dup, nil
}
