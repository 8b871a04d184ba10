package cli

import (
	"fmt"
	"slices"
	"time"
)

// Number is a type of flag with a range.
type Number interface {
	~int | ~float64 | time.Duration
}

// Range is the set of valid values of a numeric or duration flag. Build it
// with Any, Min, Positive or Between, and add special values with Or.
type Range[T Number] struct {
	lo, hi       T
	hasLo, hasHi bool
	loOpen       bool // lo itself is not valid
	also         []T
	want         string
}

func (r Range[T]) check(v T) error {
	inLo := !r.hasLo || v > r.lo || (!r.loOpen && v == r.lo)
	inHi := !r.hasHi || v <= r.hi
	if inLo && inHi || slices.Contains(r.also, v) {
		return nil
	}
	return fmt.Errorf("want %s", r.Want())
}

// Want describes the valid values, for errors and docs.
func (r Range[T]) Want() string {
	if r.want != "" {
		return r.want
	}
	var s string
	switch {
	case r.hasLo && r.hasHi:
		s = fmt.Sprintf("%v to %v", r.lo, r.hi)
	case r.hasLo && r.loOpen:
		s = fmt.Sprintf("more than %v", r.lo)
	case r.hasLo:
		s = fmt.Sprintf("%v or more", r.lo)
	case r.hasHi:
		s = fmt.Sprintf("%v or less", r.hi)
	default:
		s = "any value"
	}
	return s
}

// Any accepts every value.
func Any[T Number]() Range[T] { return Range[T]{} }

// Min accepts lo and above.
func Min[T Number](lo T) Range[T] { return Range[T]{lo: lo, hasLo: true} }

// Positive accepts values above zero.
func Positive[T Number]() Range[T] { return Range[T]{hasLo: true, loOpen: true} }

// Between accepts lo to hi.
func Between[T Number](lo, hi T) Range[T] {
	return Range[T]{lo: lo, hi: hi, hasLo: true, hasHi: true}
}

// Or adds special values outside the range, described by want (which then
// describes the whole range in errors: "a port 1-65535, or -1 for any free
// port").
func (r Range[T]) Or(want string, vals ...T) Range[T] {
	r.also = append(slices.Clone(r.also), vals...)
	r.want = want
	return r
}

// Port is a TCP port 1-65535; special values (e.g. 0 = off, -1 = any free
// port) are added with Or.
func Port() Range[int] { return Between(1, 65535) }
