package avro

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/hamba/avro/v2"
)

// maxDepth bounds how deeply values may nest (records, arrays, maps,
// unions), so a recursive schema cannot be made to exhaust the stack.
const maxDepth = 64

var errTruncated = errors.New("truncated")

// scan checks that b starts with one well-formed Avro value of schema s and
// returns its length. It runs before hamba decodes a value because hamba
// trusts array block counts: counts that sum past math.MaxInt64 make it
// write through a negative slice index, corrupting memory or crashing the
// process. scan allocates nothing and rejects any length or count that
// points past the end of b, so hamba never allocates for data that is not
// there either.
func scan(s avro.Schema, b []byte) (int, error) {
	sc := scanner{b: b}
	if err := sc.value(s, 0); err != nil {
		return 0, err
	}
	return sc.off, nil
}

type scanner struct {
	b   []byte
	off int
}

func (sc *scanner) long() (int64, error) {
	v, n := binary.Varint(sc.b[sc.off:])
	if n == 0 {
		return 0, errTruncated
	}
	if n < 0 {
		return 0, errors.New("long overflows 64 bits")
	}
	sc.off += n
	return v, nil
}

func (sc *scanner) skip(n int64) error {
	if n < 0 {
		return fmt.Errorf("negative length %d", n)
	}
	if n > int64(len(sc.b)-sc.off) {
		return errTruncated
	}
	sc.off += int(n)
	return nil
}

// bytes scans a string or bytes value: a length, then that many bytes.
func (sc *scanner) bytes() error {
	n, err := sc.long()
	if err != nil {
		return err
	}
	if n > MaxValueSize {
		return fmt.Errorf("%d bytes, more than %d", n, MaxValueSize)
	}
	return sc.skip(n)
}

func (sc *scanner) value(s avro.Schema, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("nested deeper than %d", maxDepth)
	}
	switch s := s.(type) {
	case *avro.NullSchema:
		return nil
	case *avro.PrimitiveSchema:
		switch s.Type() {
		case avro.Null:
			return nil
		case avro.Boolean:
			if sc.off >= len(sc.b) {
				return errTruncated
			}
			if sc.b[sc.off] > 1 {
				return fmt.Errorf("invalid boolean %d", sc.b[sc.off])
			}
			sc.off++
			return nil
		case avro.Int:
			v, err := sc.long()
			if err == nil && (v < math.MinInt32 || v > math.MaxInt32) {
				err = fmt.Errorf("int %d out of range", v)
			}
			return err
		case avro.Long:
			_, err := sc.long()
			return err
		case avro.Float:
			return sc.skip(4)
		case avro.Double:
			return sc.skip(8)
		case avro.String, avro.Bytes:
			return sc.bytes()
		}
	case *avro.RecordSchema:
		for _, f := range s.Fields() {
			if err := sc.value(f.Type(), depth+1); err != nil {
				return fmt.Errorf("%s: %w", f.Name(), err)
			}
		}
		return nil
	case *avro.RefSchema:
		return sc.value(s.Schema(), depth)
	case *avro.ArraySchema:
		return sc.blocks(func() error { return sc.value(s.Items(), depth+1) })
	case *avro.MapSchema:
		return sc.blocks(func() error {
			if err := sc.bytes(); err != nil {
				return err
			}
			return sc.value(s.Values(), depth+1)
		})
	case *avro.UnionSchema:
		i, err := sc.long()
		if err != nil {
			return err
		}
		if i < 0 || i >= int64(len(s.Types())) {
			return fmt.Errorf("union branch %d of %d", i, len(s.Types()))
		}
		return sc.value(s.Types()[i], depth+1)
	case *avro.EnumSchema:
		i, err := sc.long()
		if err != nil {
			return err
		}
		if i < 0 || i >= int64(len(s.Symbols())) {
			return fmt.Errorf("enum symbol %d of %d", i, len(s.Symbols()))
		}
		return nil
	case *avro.FixedSchema:
		return sc.skip(int64(s.Size()))
	}
	return fmt.Errorf("cannot check values of schema type %s", s.Type())
}

// blocks scans the blocks of an array or map, calling item for each item.
// The total count is bounded by maxItems, the limit hamba enforces too, so
// hamba's running count cannot overflow.
func (sc *scanner) blocks(item func() error) error {
	total := int64(0)
	for {
		n, err := sc.long()
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if n < 0 {
			// A negative count is followed by the block's size in bytes.
			if n == math.MinInt64 {
				return errors.New("invalid block count")
			}
			n = -n
			size, err := sc.long()
			if err != nil {
				return err
			}
			if size < 0 {
				return fmt.Errorf("negative block size %d", size)
			}
		}
		if n > maxItems-total {
			return fmt.Errorf("more than %d items", maxItems)
		}
		total += n
		for range n {
			if err := item(); err != nil {
				return err
			}
		}
	}
}
