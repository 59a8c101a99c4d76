package deliver

import (
	"container/list"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"sync"
)

// DefaultMaxCertClients bounds Clients: the transports (each with its own
// connection pool) of the client certificates in use at once. Beyond it
// the least recently used is dropped and its idle connections closed; a
// subscription coming back gets a new one, at the cost of new handshakes.
const DefaultMaxCertClients = 256

// Clients holds one HTTP client per client certificate, for endpoints
// that require mutual TLS, next to the shared client of all the others.
// Each has its own transport, so connections stay pooled per certificate
// and no endpoint is ever called with another subscription's certificate.
// It is safe for concurrent use.
type Clients struct {
	opts ClientOptions
	max  int

	mu    sync.Mutex
	byKey map[string]*list.Element // of *certClient
	lru   *list.List               // most recently used first
}

type certClient struct {
	key    string
	client *http.Client
}

// NewClients returns an empty set of at most max clients (0 means
// DefaultMaxCertClients), built with o like NewClient's.
func NewClients(o ClientOptions, max int) *Clients {
	if max <= 0 {
		max = DefaultMaxCertClients
	}
	return &Clients{opts: o, max: max, byKey: map[string]*list.Element{}, lru: list.New()}
}

// For returns the client presenting the certificate named key (a digest of
// the certificate, its sealed key and its owner), building it on first
// use: only then is load called, to open the key.
func (c *Clients) For(key string, load func() (tls.Certificate, error)) (*http.Client, error) {
	c.mu.Lock()
	if e, ok := c.byKey[key]; ok {
		c.lru.MoveToFront(e)
		c.mu.Unlock()
		return e.Value.(*certClient).client, nil
	}
	c.mu.Unlock()
	// Built outside the lock: parsing a key takes a while, and other
	// endpoints must not wait for it. Two callers may build the same one;
	// the first stored wins.
	cert, err := load()
	if err != nil {
		return nil, err
	}
	built := newClient(c.opts, &cert)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[key]; ok {
		c.lru.MoveToFront(e)
		return e.Value.(*certClient).client, nil
	}
	c.byKey[key] = c.lru.PushFront(&certClient{key: key, client: built})
	for c.lru.Len() > c.max {
		old := c.lru.Remove(c.lru.Back()).(*certClient)
		delete(c.byKey, old.key)
		old.client.CloseIdleConnections()
	}
	return built, nil
}

// Len is the number of clients held.
func (c *Clients) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// CloseIdleConnections closes the idle connections of every client held.
func (c *Clients) CloseIdleConnections() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := c.lru.Front(); e != nil; e = e.Next() {
		e.Value.(*certClient).client.CloseIdleConnections()
	}
}

// RootCAs is the system pool plus the CAs of the PEM file named (the
// receivers' private CAs, the local demo); nil, for the system pool alone,
// when file is "".
func RootCAs(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no certificate", file)
	}
	return roots, nil
}
