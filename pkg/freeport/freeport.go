// Package freeport finds ports on 127.0.0.1 for servers a process is about
// to start (a service's ops port, an embedded database, a test broker).
//
// The ports come from below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range). The kernel hands out ports of that range
// to every outgoing connection and to every listener on port 0 of the
// machine, so a port found free there, the usual way (listen on :0, read
// the port, close), may be taken by a client's connection before the
// server binds it: "bind: address already in use". Below the range only
// another process picking ports on purpose can take it; ports are picked
// at random and never handed out twice by one process, so that stays rare.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// lowest is where the ports start: above the ones people give their own
// servers (Kafka's 9092 and 19092 with offsets, Redis, PostgreSQL, mailpit).
const lowest = 20000

var (
	mu     sync.Mutex
	handed = map[int]bool{} // ports this process handed out already
)

// Ports finds n consecutive ports that nothing listens on and returns the
// first.
func Ports(n int) (int, error) {
	low, high := lowest, ephemeralStart()
	if high-low < 1000 {
		// No room below the range on this machine: take the risk above.
		low, high = high, 65536
	}
	mu.Lock()
	defer mu.Unlock()
	for range 200 {
		base := low + rand.IntN(high-low-n)
		if free(base, n) {
			for i := range n {
				handed[base+i] = true
			}
			return base, nil
		}
	}
	return 0, fmt.Errorf("no %d consecutive free ports on 127.0.0.1 in %d-%d", n, low, high)
}

// Port finds one free port.
func Port() (int, error) { return Ports(1) }

// Addr is "127.0.0.1:port" for a free port.
func Addr() (string, error) {
	p, err := Port()
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + strconv.Itoa(p), nil
}

// free reports whether ports base..base+n-1 were never handed out here and
// can be listened on now.
func free(base, n int) bool {
	held := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for i := range n {
		if handed[base+i] {
			return false
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+i))
		if err != nil {
			return false
		}
		held = append(held, l)
	}
	return true
}

// ephemeralStart is the first port of the kernel's ephemeral range;
// Linux's default when it cannot be read.
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil {
		return 32768
	}
	return n
}
