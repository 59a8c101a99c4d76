package dispatch

import "sync"

// pool bounds the requests in flight of the whole instance (every
// partition): they hold memory (bodies, up to 64 KiB of each answer) and
// connections. It is fair enough that slow endpoints cannot starve the
// others: a quarter of it is kept for endpoints that have nothing in
// flight, so however many slow endpoints fill the rest, any other endpoint
// gets its next request out at once.
type pool struct {
	mu      sync.Mutex // guards the fields below
	size    int
	used    int
	reserve int
	waiting map[*partition]struct{} // told when a slot frees
}

func newPool(size int) *pool {
	size = max(size, 1)
	return &pool{size: size, reserve: size / 4, waiting: map[*partition]struct{}{}}
}

// acquire takes a slot for an endpoint that has held requests in flight,
// without waiting. When it cannot, pt is told (partition.nudge) once a
// slot frees, to try again.
func (p *pool) acquire(pt *partition, held int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if free := p.size - p.used; free > 0 && (held == 0 || free > p.reserve) {
		p.used++
		return true
	}
	p.waiting[pt] = struct{}{}
	return false
}

// release gives a slot back and tells the partitions waiting for one.
func (p *pool) release() {
	p.mu.Lock()
	p.used--
	var waiting []*partition
	for pt := range p.waiting {
		waiting = append(waiting, pt)
	}
	clear(p.waiting)
	p.mu.Unlock()
	for _, pt := range waiting {
		pt.nudge()
	}
}

// forget drops a partition that stops from the waiting set.
func (p *pool) forget(pt *partition) {
	p.mu.Lock()
	delete(p.waiting, pt)
	p.mu.Unlock()
}

// inUse is how many slots are taken.
func (p *pool) inUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.used
}
