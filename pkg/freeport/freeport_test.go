package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestPortsAreBelowTheEphemeralRangeAndFree(t *testing.T) {
	seen := map[int]bool{}
	for range 50 {
		base, err := Ports(3)
		if err != nil {
			t.Fatal(err)
		}
		if eph := ephemeralStart(); eph-lowest >= 1000 && (base < lowest || base+2 >= eph) {
			t.Fatalf("ports %d-%d are not within %d-%d", base, base+2, lowest, eph)
		}
		for i := range 3 {
			if seen[base+i] {
				t.Fatalf("port %d handed out twice", base+i)
			}
			seen[base+i] = true
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+i))
			if err != nil {
				t.Fatalf("port %d is not free: %v", base+i, err)
			}
			l.Close()
		}
	}
}

func TestABusyPortIsNotHandedOut(t *testing.T) {
	base, err := Ports(1)
	if err != nil {
		t.Fatal(err)
	}
	// Forget it was handed out, hold it, and ask for ports until the
	// random pick has had many chances to hit it: it must never come back.
	mu.Lock()
	delete(handed, base)
	mu.Unlock()
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	mu.Lock()
	ok := free(base, 1)
	mu.Unlock()
	if ok {
		t.Fatalf("port %d is listened on, yet reported free", base)
	}
}
