package condition

import (
	"fmt"
	"strings"
	"testing"
)

// benchCondition is a realistic five-leaf subscription filter: an event type
// family, a status set, an amount threshold, a nested field and a negated
// test flag.
const benchCondition = `{"all":[
  {"field":"type","op":"prefix","value":"order."},
  {"any":[
    {"field":"data.status","op":"in","value":["Active","Paid","Shipped"]},
    {"field":"data.total","op":"gte","value":1000}
  ]},
  {"field":"data.customer.address.country","op":"eq","value":"DE"},
  {"not":{"field":"metadata.test","op":"eq","value":"true"}}
]}`

// benchEvent is a ~1 KiB event: orderEvent with more line items.
var benchEvent = func() string {
	var items []string
	for i := range 8 {
		items = append(items, fmt.Sprintf(`{"sku":"SKU-%04d","name":"Item number %d","qty":%d,"price":%d.99}`, i, i, i+1, 10+i))
	}
	return strings.Replace(orderEvent, `"items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}]`,
		`"items": [`+strings.Join(items, ",")+`]`, 1)
}()

func BenchmarkMatch5Leaf(b *testing.B) {
	c := mustParse(b, benchCondition)
	doc := mustDoc(b, benchEvent)
	if !c.Match(doc) {
		b.Fatal("benchmark condition does not match")
	}
	b.ReportAllocs()
	for b.Loop() {
		c.Match(doc)
	}
}

func BenchmarkDecodeDocument(b *testing.B) {
	raw := []byte(benchEvent)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeDocument(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeStdlib is the baseline DecodeDocument replaces.
func BenchmarkDecodeStdlib(b *testing.B) {
	raw := []byte(benchEvent)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		var v map[string]any
		if err := jsonUnmarshal(raw, &v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCEL(b *testing.B) {
	e, err := CompileExpression(`event.type.startsWith("order.") && ` +
		`(event.data.status in ["Active", "Paid", "Shipped"] || event.data.total >= 1000) && ` +
		`event.data.customer.address.country == "DE" && event.metadata.test != "true"`)
	if err != nil {
		b.Fatal(err)
	}
	doc := mustDoc(b, benchEvent)
	if ok, err := e.Match(doc); err != nil || !ok {
		b.Fatalf("Match = %v, %v", ok, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		e.Match(doc)
	}
}

func BenchmarkParse(b *testing.B) {
	raw := []byte(benchCondition)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}
