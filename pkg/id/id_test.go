package id

import (
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	a, b := New("evt"), New("evt")
	if a == b || !strings.HasPrefix(a, "evt_") || len(a) != 4+26 {
		t.Fatalf("New gave %q and %q", a, b)
	}
}

func TestDeliveryIsDeterministic(t *testing.T) {
	if Delivery("e1", "s1") != Delivery("e1", "s1") {
		t.Fatal("same inputs, different ids")
	}
	if Delivery("e1", "s1") == Delivery("e1", "s2") || Delivery("e1s", "1") == Delivery("e1", "s1") {
		t.Fatal("different inputs, same id")
	}
}
