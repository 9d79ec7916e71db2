package apiserver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"skiff.dev/skiff/internal/store"
)

// Allocation records. A Service's cluster IPs and node ports are each
// recorded under a key of their own in the store, written with a
// create-if-absent transaction: two requests that want one value race on
// that key and exactly one wins. A record names the Service that holds
// it, so a repair pass can free records whose Service is gone and
// re-record Services whose records are missing.

// Errors an allocation range reports. errRangeFull and errAllocated carry
// upstream's texts, which the Service allocator puts into its answers.
var (
	errRangeFull = errors.New("range is full")
	errAllocated = errors.New("already allocated")
)

// owner names the Service an allocation record belongs to.
type owner struct {
	Namespace, Name string
}

func (o owner) String() string { return o.Namespace + "/" + o.Name }

// recordCodec turns a record into stored bytes and back.
type recordCodec interface {
	encode(name string, o owner, now time.Time) ([]byte, error)
	decode(data []byte) (owner, time.Time, error)
}

// record is one stored allocation.
type record struct {
	owner   owner
	created time.Time
	rev     int64
}

// allocRange hands out the values of one contiguous range, by offset
// (0 .. size-1). The lower `static` offsets are kept for values clients
// ask for by number: dynamic allocation prefers the upper band and takes
// from the lower one only when the upper one is full (upstream's
// KEP-3070 and KEP-3668 split).
type allocRange struct {
	st     store.Interface
	prefix string // key prefix, ends in "/"
	size   uint64
	static uint64
	codec  recordCodec
	// name and offset convert between offsets and record names (the
	// last key segment): "10.96.0.7" or "30080".
	name   func(off uint64) string
	offset func(name string) (uint64, bool)
	now    func() time.Time
}

func (r *allocRange) key(off uint64) string { return r.prefix + r.name(off) }

// allocate records off for o. It returns the record's revision, or
// errAllocated when someone holds the value.
func (r *allocRange) allocate(ctx context.Context, off uint64, o owner) (int64, error) {
	data, err := r.codec.encode(r.name(off), o, r.now())
	if err != nil {
		return 0, err
	}
	rev, err := r.st.Create(ctx, r.key(off), data)
	if errors.Is(err, store.ErrAlreadyExists) {
		return 0, errAllocated
	}
	return rev, err
}

// probes is how many random values allocateNext tries before it reads
// every record to find the free ones: cheap while the range is sparse.
const probes = 3

// allocateNext records a free value for o and returns its offset and the
// record's revision; errRangeFull when there is none.
func (r *allocRange) allocateNext(ctx context.Context, o owner) (uint64, int64, error) {
	if r.size == 0 {
		return 0, 0, errRangeFull
	}
	lo, hi := r.bands()
	for i := 0; i < probes && hi.size > 0; i++ {
		off := hi.first + rand.Uint64N(hi.size)
		rev, err := r.allocate(ctx, off, o)
		if err == nil {
			return off, rev, nil
		}
		if !errors.Is(err, errAllocated) {
			return 0, 0, err
		}
	}
	used, err := r.list(ctx)
	if err != nil {
		return 0, 0, err
	}
	for _, b := range []band{hi, lo} {
		if b.size == 0 {
			continue
		}
		start := rand.Uint64N(b.size)
		for i := uint64(0); i < b.size; i++ {
			off := b.first + (start+i)%b.size
			if _, taken := used[off]; taken {
				continue
			}
			rev, err := r.allocate(ctx, off, o)
			if err == nil {
				return off, rev, nil
			}
			if !errors.Is(err, errAllocated) {
				return 0, 0, err
			}
		}
	}
	return 0, 0, errRangeFull
}

// pickFree finds a value that is free now without recording it (dry
// runs); errRangeFull when there is none.
func (r *allocRange) pickFree(ctx context.Context) (uint64, error) {
	used, err := r.list(ctx)
	if err != nil {
		return 0, err
	}
	lo, hi := r.bands()
	for _, b := range []band{hi, lo} {
		if b.size == 0 {
			continue
		}
		start := rand.Uint64N(b.size)
		for i := uint64(0); i < b.size; i++ {
			if off := b.first + (start+i)%b.size; used[off] == nil {
				return off, nil
			}
		}
	}
	return 0, errRangeFull
}

// band is a run of offsets.
type band struct{ first, size uint64 }

// bands splits the range into the static (lower) and dynamic (upper)
// bands.
func (r *allocRange) bands() (lo, hi band) {
	s := min(r.static, r.size)
	return band{0, s}, band{s, r.size - s}
}

// get reads the record of off; nil when the value is free.
func (r *allocRange) get(ctx context.Context, off uint64) (*record, error) {
	kv, err := r.st.Get(ctx, r.key(off))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	o, created, err := r.codec.decode(kv.Value)
	if err != nil {
		return nil, fmt.Errorf("allocation record %s: %w", kv.Key, err)
	}
	return &record{owner: o, created: created, rev: kv.Rev}, nil
}

// release deletes the record of off if o still holds it. A record that
// is gone already, or that someone else holds, is left alone.
func (r *allocRange) release(ctx context.Context, off uint64, o owner) error {
	rec, err := r.get(ctx, off)
	if err != nil || rec == nil || rec.owner != o {
		return err
	}
	return r.delete(ctx, off, rec.rev)
}

// delete removes the record of off if it is still at revision rev.
func (r *allocRange) delete(ctx context.Context, off uint64, rev int64) error {
	_, err := r.st.Delete(ctx, r.key(off), rev)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
		return nil
	}
	return err
}

// list reads every record of the range, by offset. Records of values
// outside the range (left from an earlier configuration) are skipped.
func (r *allocRange) list(ctx context.Context) (map[uint64]*record, error) {
	out := map[uint64]*record{}
	opts := store.ListOptions{Limit: 1000}
	for {
		res, err := r.st.List(ctx, r.prefix, opts)
		if err != nil {
			return nil, err
		}
		for _, kv := range res.Items {
			off, ok := r.offset(strings.TrimPrefix(kv.Key, r.prefix))
			if !ok || off >= r.size {
				continue
			}
			o, created, err := r.codec.decode(kv.Value)
			if err != nil {
				return nil, fmt.Errorf("allocation record %s: %w", kv.Key, err)
			}
			out[off] = &record{owner: o, created: created, rev: kv.Rev}
		}
		if !res.More || len(res.Items) == 0 {
			return out, nil
		}
		opts.StartKey = res.Items[len(res.Items)-1].Key + "\x00"
		opts.Rev = res.Rev
	}
}

// staticBand is upstream's size of the lower band of a range of size
// values: min(max(floor, size/step), ceiling), or 0 for ranges of at most
// floor values.
func staticBand(size, floor, step, ceiling uint64) uint64 {
	if size <= floor {
		return 0
	}
	return min(max(floor, size/step), ceiling)
}
