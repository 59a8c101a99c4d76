package record

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/hookline/hookline/pkg/avro"
)

// jsonObject returns a JSON object of about n bytes, shaped like an
// ordinary event payload.
func jsonObject(tb testing.TB, n int) string {
	tb.Helper()
	obj := map[string]any{"id": "order_42", "total": 1999, "currency": "EUR", "paid": true}
	for i := 0; ; i++ {
		b, err := json.Marshal(obj)
		if err != nil {
			tb.Fatal(err)
		}
		if len(b) >= n {
			return string(b)
		}
		obj[fmt.Sprintf("line_%02d", i)] = map[string]any{"sku": fmt.Sprintf("SKU-%05d", i), "qty": i % 5, "note": strings.Repeat("x", 8)}
	}
}

// BenchmarkCodecs measures Marshal and Unmarshal of the records on the
// hot path: events (1 KiB of data), deliveries (1 KiB payload) and
// delivery attempts. SetBytes is the framed size, so MB/s is wire bytes.
func BenchmarkCodecs(b *testing.B) {
	c := codecs(b)
	ev := sampleEvent()
	ev.Data = jsonObject(b, 1024)
	dlv := sampleDelivery(jsonObject(b, 1024))
	att := sampleAttempt()

	b.Run("Event", func(b *testing.B) { benchCodec(b, c.Event, &ev) })
	b.Run("Delivery", func(b *testing.B) { benchCodec(b, c.Delivery, &dlv) })
	b.Run("DeliveryAttempt", func(b *testing.B) { benchCodec(b, c.Attempt, &att) })
}

func benchCodec[T any](b *testing.B, c *avro.Codec[T], v *T) {
	wire, err := c.Marshal(v)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Marshal", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(wire)))
		for b.Loop() {
			if _, err := c.Marshal(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(wire)))
		var out T
		for b.Loop() {
			if err := c.Unmarshal(wire, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
