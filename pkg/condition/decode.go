package condition

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// maxDecodeDepth matches encoding/json's nesting limit, so that any input
// encoding/json accepts is accepted here too.
const maxDecodeDepth = 10000

// DecodeValue decodes one JSON value into the shapes Document works with:
// map[string]any for objects, []any for arrays, float64 for numbers, string,
// bool and nil. It accepts exactly what encoding/json accepts (invalid UTF-8
// and lone surrogates become U+FFFD, duplicate keys keep the last value) and
// produces the same values json.Unmarshal would into an any, several times
// faster and with fewer allocations.
//
// Strings without escapes share one private copy of data, so data may be
// reused by the caller afterwards, and holding any decoded string keeps that
// copy alive.
func DecodeValue(data []byte) (any, error) {
	// One copy of the input backs every unescaped string and key: one
	// allocation instead of one per string.
	return decode(append([]byte(nil), data...))
}

// DecodeString is DecodeValue for JSON held in a string, such as an event's
// data. A string cannot change, so the decoded strings share its bytes
// rather than a copy of them.
func DecodeString(data string) (any, error) {
	return decode(unsafe.Slice(unsafe.StringData(data), len(data)))
}

// decoders recycles decoders, whose stacks would otherwise be grown anew
// for every event.
var decoders = sync.Pool{New: func() any { return new(decoder) }}

// decode decodes buf, which must never be written to afterwards: that is
// what makes the unsafe.String of unescaped strings sound.
func decode(buf []byte) (any, error) {
	d := decoders.Get().(*decoder)
	defer func() {
		// Keep the stacks' capacity, not what they point to. Containers
		// clear their part when they are done, so only an error leaves
		// anything behind.
		clear(d.stack)
		clear(d.keys)
		*d = decoder{stack: d.stack[:0], keys: d.keys[:0]}
		decoders.Put(d)
	}()
	d.buf = buf
	d.skipSpace()
	v, err := d.value()
	if err != nil {
		return nil, err
	}
	d.skipSpace()
	if d.pos != len(d.buf) {
		return nil, d.errorf("invalid character %q after top-level value", d.buf[d.pos])
	}
	return v, nil
}

// SyntaxError is a JSON syntax error found by DecodeValue or DecodeDocument.
type SyntaxError struct {
	// Offset is the byte offset in the input where the error was found.
	Offset int
	// Msg describes the problem.
	Msg string
}

// Error implements error.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("json: %s at offset %d", e.Msg, e.Offset)
}

var errUnexpectedEnd = errors.New("unexpected end of JSON input")

type decoder struct {
	buf   []byte
	pos   int
	depth int
	// stack holds array elements and object values while their container
	// is being read, so each container is allocated once at its final size.
	stack []any
	keys  []string
}

func (d *decoder) errorf(format string, args ...any) error {
	return &SyntaxError{Offset: d.pos, Msg: fmt.Sprintf(format, args...)}
}

func (d *decoder) eof() error {
	return &SyntaxError{Offset: d.pos, Msg: errUnexpectedEnd.Error()}
}

func (d *decoder) skipSpace() {
	for d.pos < len(d.buf) {
		switch d.buf[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *decoder) value() (any, error) {
	if d.pos >= len(d.buf) {
		return nil, d.eof()
	}
	switch c := d.buf[d.pos]; c {
	case '{':
		return d.object()
	case '[':
		return d.array()
	case '"':
		return d.str()
	case 't':
		return d.literal("true", true)
	case 'f':
		return d.literal("false", false)
	case 'n':
		return d.literal("null", nil)
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			return d.number()
		}
		return nil, d.errorf("invalid character %q looking for beginning of value", c)
	}
}

func (d *decoder) literal(word string, v any) (any, error) {
	end := d.pos + len(word)
	if end > len(d.buf) {
		if string(d.buf[d.pos:]) == word[:len(d.buf)-d.pos] {
			d.pos = len(d.buf)
			return nil, d.eof()
		}
		return nil, d.errorf("invalid literal")
	}
	if string(d.buf[d.pos:end]) != word {
		return nil, d.errorf("invalid literal")
	}
	d.pos = end
	return v, nil
}

func (d *decoder) enter() error {
	d.depth++
	if d.depth > maxDecodeDepth {
		return d.errorf("exceeded max depth")
	}
	return nil
}

func (d *decoder) object() (any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	d.pos++ // '{'
	mark := len(d.keys)
	d.skipSpace()
	if d.pos < len(d.buf) && d.buf[d.pos] == '}' {
		d.pos++
		d.depth--
		return map[string]any{}, nil
	}
	for {
		if d.pos >= len(d.buf) {
			return nil, d.eof()
		}
		if d.buf[d.pos] != '"' {
			return nil, d.errorf("invalid character %q looking for beginning of object key string", d.buf[d.pos])
		}
		key, err := d.str()
		if err != nil {
			return nil, err
		}
		d.skipSpace()
		if d.pos >= len(d.buf) {
			return nil, d.eof()
		}
		if d.buf[d.pos] != ':' {
			return nil, d.errorf("invalid character %q after object key", d.buf[d.pos])
		}
		d.pos++
		d.skipSpace()
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		d.keys = append(d.keys, key)
		d.stack = append(d.stack, v)
		d.skipSpace()
		if d.pos >= len(d.buf) {
			return nil, d.eof()
		}
		c := d.buf[d.pos]
		d.pos++
		if c == '}' {
			break
		}
		if c != ',' {
			d.pos--
			return nil, d.errorf("invalid character %q after object key:value pair", c)
		}
		d.skipSpace()
	}
	keys, vals := d.keys[mark:], d.stack[len(d.stack)-(len(d.keys)-mark):]
	m := make(map[string]any, len(keys))
	for i, k := range keys {
		m[k] = vals[i]
	}
	clear(vals)
	clear(keys)
	d.stack = d.stack[:len(d.stack)-len(vals)]
	d.keys = d.keys[:mark]
	d.depth--
	return m, nil
}

func (d *decoder) array() (any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	d.pos++ // '['
	mark := len(d.stack)
	d.skipSpace()
	if d.pos < len(d.buf) && d.buf[d.pos] == ']' {
		d.pos++
		d.depth--
		return []any{}, nil
	}
	for {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		d.stack = append(d.stack, v)
		d.skipSpace()
		if d.pos >= len(d.buf) {
			return nil, d.eof()
		}
		c := d.buf[d.pos]
		d.pos++
		if c == ']' {
			break
		}
		if c != ',' {
			d.pos--
			return nil, d.errorf("invalid character %q after array element", c)
		}
		d.skipSpace()
	}
	elems := d.stack[mark:]
	a := make([]any, len(elems))
	copy(a, elems)
	clear(elems)
	d.stack = d.stack[:mark]
	d.depth--
	return a, nil
}

// plainByte marks bytes that can appear in a string unchanged: printable
// ASCII other than '"' and '\\'.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str reads a string starting at the opening quote.
func (d *decoder) str() (string, error) {
	start := d.pos + 1
	i := start
	for i < len(d.buf) && plainByte[d.buf[i]] {
		i++
	}
	if i < len(d.buf) && d.buf[i] == '"' {
		d.pos = i + 1
		if i == start {
			return "", nil
		}
		return unsafe.String(&d.buf[start], i-start), nil
	}
	return d.strSlow(start, i)
}

// strSlow handles strings with escapes, control characters or non-ASCII
// bytes, following encoding/json: invalid UTF-8 and unpaired surrogates
// become U+FFFD.
func (d *decoder) strSlow(start, i int) (string, error) {
	out := make([]byte, 0, i-start+16)
	out = append(out, d.buf[start:i]...)
	for i < len(d.buf) {
		c := d.buf[i]
		switch {
		case c == '"':
			d.pos = i + 1
			return string(out), nil
		case c == '\\':
			if i+1 >= len(d.buf) {
				d.pos = len(d.buf)
				return "", d.eof()
			}
			switch e := d.buf[i+1]; e {
			case '"', '\\', '/':
				out = append(out, e)
				i += 2
			case 'b':
				out = append(out, '\b')
				i += 2
			case 'f':
				out = append(out, '\f')
				i += 2
			case 'n':
				out = append(out, '\n')
				i += 2
			case 'r':
				out = append(out, '\r')
				i += 2
			case 't':
				out = append(out, '\t')
				i += 2
			case 'u':
				r := hex4(d.buf[i+2:])
				if r < 0 {
					d.pos = i
					if len(d.buf)-(i+2) < 4 && validHexPrefix(d.buf[i+2:]) {
						d.pos = len(d.buf)
						return "", d.eof()
					}
					return "", d.errorf("invalid \\u escape in string")
				}
				i += 6
				if utf16.IsSurrogate(rune(r)) {
					r2 := -1
					if i+1 < len(d.buf) && d.buf[i] == '\\' && d.buf[i+1] == 'u' {
						r2 = hex4(d.buf[i+2:])
					}
					if dec := utf16.DecodeRune(rune(r), rune(r2)); dec != utf8.RuneError {
						out = utf8.AppendRune(out, dec)
						i += 6
						continue
					}
					r = utf8.RuneError
				}
				out = utf8.AppendRune(out, rune(r))
			default:
				d.pos = i
				return "", d.errorf("invalid escape %q in string", e)
			}
		case c < 0x20:
			d.pos = i
			return "", d.errorf("invalid control character in string")
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(d.buf[i:])
			out = utf8.AppendRune(out, r)
			i += size
		}
	}
	d.pos = len(d.buf)
	return "", d.eof()
}

func hex4(b []byte) int {
	if len(b) < 4 {
		return -1
	}
	n := 0
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		n = n<<4 | int(c)
	}
	return n
}

func validHexPrefix(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// number reads a JSON number. Most numbers in events are short, and for
// those an exact integer mantissa scaled by an exact power of ten is
// correctly rounded with one float operation (Clinger's fast path); the
// rest go through strconv.ParseFloat.
func (d *decoder) number() (any, error) {
	start := d.pos
	i := start
	neg := false
	if d.buf[i] == '-' {
		neg = true
		i++
	}
	var mant uint64
	digits := 0
	switch {
	case i >= len(d.buf):
		d.pos = i
		return nil, d.eof()
	case d.buf[i] == '0':
		i++
	case d.buf[i] >= '1' && d.buf[i] <= '9':
		for i < len(d.buf) && d.buf[i] >= '0' && d.buf[i] <= '9' {
			if digits < 19 {
				mant = mant*10 + uint64(d.buf[i]-'0')
			}
			digits++
			i++
		}
	default:
		d.pos = i
		return nil, d.errorf("invalid character %q in numeric literal", d.buf[i])
	}
	exp := 0
	if i < len(d.buf) && d.buf[i] == '.' {
		i++
		fracStart := i
		for i < len(d.buf) && d.buf[i] >= '0' && d.buf[i] <= '9' {
			if digits < 19 {
				mant = mant*10 + uint64(d.buf[i]-'0')
				exp--
			}
			if mant != 0 || d.buf[i] != '0' {
				digits++
			}
			i++
		}
		if i == fracStart {
			d.pos = i
			if i >= len(d.buf) {
				return nil, d.eof()
			}
			return nil, d.errorf("invalid character %q after decimal point in numeric literal", d.buf[i])
		}
	}
	fast := digits <= 15
	if i < len(d.buf) && (d.buf[i] == 'e' || d.buf[i] == 'E') {
		i++
		if i < len(d.buf) && (d.buf[i] == '+' || d.buf[i] == '-') {
			i++
		}
		expStart := i
		for i < len(d.buf) && d.buf[i] >= '0' && d.buf[i] <= '9' {
			i++
		}
		if i == expStart {
			d.pos = i
			if i >= len(d.buf) {
				return nil, d.eof()
			}
			return nil, d.errorf("invalid character %q in exponent of numeric literal", d.buf[i])
		}
		fast = false
	}
	d.pos = i
	if fast && exp >= -22 {
		f := float64(mant)
		if exp < 0 {
			f /= pow10[-exp]
		}
		if neg {
			f = -f
		}
		return f, nil
	}
	f, err := strconv.ParseFloat(string(d.buf[start:i]), 64)
	if err != nil || math.IsInf(f, 0) {
		d.pos = start
		return nil, d.errorf("number %s out of range", d.buf[start:i])
	}
	return f, nil
}
