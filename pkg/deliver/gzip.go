package deliver

import (
	"bytes"
	"compress/gzip"
	"sync"
)

// GzipMinBytes is the smallest body a subscription with compression
// "gzip" gets compressed. Below about a kilobyte gzip saves a few hundred
// bytes at most, less than one TCP segment and within the same HTTP/2
// frame, while it still costs its CPU and the receiver's; such bodies go
// as they are, without Content-Encoding.
const GzipMinBytes = 1024

// gzipLevel trades ratio for speed: webhook bodies are JSON, which
// BestSpeed already shrinks several times over. On a 16 KiB event
// (BenchmarkGzipLevel) it takes half the default level's time for 18% of
// the size instead of 14%.
const gzipLevel = gzip.BestSpeed

// gzipWriters holds reusable compressors: each carries some hundreds of
// kilobytes of state that should not be allocated per request.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzipLevel) // a valid level: never fails
	return zw
}}

// gzipped returns b compressed, or nil when that would not make it smaller.
func gzipped(b []byte) []byte {
	buf := bytes.NewBuffer(make([]byte, 0, len(b)/2))
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(buf)
	_, _ = zw.Write(b) // writes to a bytes.Buffer do not fail
	_ = zw.Close()
	gzipWriters.Put(zw)
	if buf.Len() >= len(b) {
		return nil
	}
	return buf.Bytes()
}
