package condition

import (
	"errors"
	"fmt"
	"strings"
)

// Limits on field paths.
const (
	// MaxFieldLen is the longest field path accepted, in bytes.
	MaxFieldLen = 512
	// MaxFieldSegments is the most segments a field path may have.
	MaxFieldSegments = 32
	// maxIndex bounds array indexes; no event has arrays this long.
	maxIndex = 1 << 30
)

// segment is one step of a compiled field path: an object key and, when
// the key is a canonical decimal, the array index it also stands for.
type segment struct {
	key   string
	index int // -1 when key is not an array index
}

// ParsePath splits a field path into the segments Document.Lookup takes.
//
// Segments are separated by dots; an array element is reached by its index
// either as a segment of its own ("data.items.0.sku") or in brackets
// ("data.items[0].sku"); both forms mean the same. A numeric segment is an
// index on an array and an ordinary key on an object. Keys that contain
// '.', '[' or ']' cannot be addressed.
func ParsePath(path string) ([]string, error) {
	segs, err := parsePath(path)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = s.key
	}
	return out, nil
}

func parsePath(path string) ([]segment, error) {
	if path == "" {
		return nil, errors.New("empty field path")
	}
	if len(path) > MaxFieldLen {
		return nil, fmt.Errorf("field path longer than %d bytes", MaxFieldLen)
	}
	var segs []segment
	add := func(key string) error {
		if len(segs) == MaxFieldSegments {
			return fmt.Errorf("field path %q has more than %d segments", path, MaxFieldSegments)
		}
		segs = append(segs, segment{key: key, index: arrayIndex(key)})
		return nil
	}
	i := 0
	for {
		// A key runs to the next '.', '[' or the end.
		j := i
		for j < len(path) && path[j] != '.' && path[j] != '[' && path[j] != ']' {
			j++
		}
		if j == i {
			return nil, fmt.Errorf("field path %q has an empty segment at byte %d", path, i)
		}
		if err := add(path[i:j]); err != nil {
			return nil, err
		}
		i = j
		// Any number of [index] suffixes.
		for i < len(path) && path[i] == '[' {
			end := strings.IndexByte(path[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("field path %q has an unclosed '[' at byte %d", path, i)
			}
			idx := path[i+1 : i+end]
			if arrayIndex(idx) < 0 {
				return nil, fmt.Errorf("field path %q: %q is not an array index", path, idx)
			}
			if err := add(idx); err != nil {
				return nil, err
			}
			i += end + 1
		}
		if i == len(path) {
			return segs, nil
		}
		if path[i] != '.' {
			return nil, fmt.Errorf("field path %q has an unexpected %q at byte %d", path, path[i], i)
		}
		i++
		if i == len(path) {
			return nil, fmt.Errorf("field path %q ends with '.'", path)
		}
	}
}

// arrayIndex returns the index a path segment stands for on an array, or
// -1: only canonical decimals ("0", "17", not "01" or "+1") are indexes.
func arrayIndex(s string) int {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return -1
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	if n > maxIndex {
		return -1
	}
	return n
}

// canonicalPath renders segments in the dotted form Fields reports.
func canonicalPath(segs []segment) string {
	var b strings.Builder
	for i, s := range segs {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.key)
	}
	return b.String()
}
