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

// TestDeliveryIDsAreStable pins a delivery id: receivers dedupe on it, so a
// release must never change how it is derived.
func TestDeliveryIDsAreStable(t *testing.T) {
	if got, want := Delivery("evt_1", "sub_1"), "dlv_qtwv8yd09zkf0r18mafxv2dtqg"; got != want {
		t.Fatalf("Delivery(evt_1, sub_1) = %s, want %s", got, want)
	}
}

func TestDerived(t *testing.T) {
	if Derived("ntf", "a", "b") != Derived("ntf", "a", "b") || !strings.HasPrefix(Derived("ntf", "a"), "ntf_") {
		t.Fatal("Derived is not deterministic or lost its prefix")
	}
	if Derived("ntf", "a", "b") == Derived("ntf", "ab") || Derived("ntf", "a:b") == Derived("ntf", "a", "b") {
		t.Fatal("different parts, same id")
	}
}
