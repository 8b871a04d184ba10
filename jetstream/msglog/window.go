package msglog

import (
	"fmt"
	"strings"
)

// The back window of a log entry ([HeaderPrev]) lists the stream sequences
// of the conversation's previous entries, newest first, at most [Window] of
// them: the entry before it as an absolute stream sequence, each older one
// as the (positive) difference to the one listed before it. Each number is
// written in base 32, most significant group first, one base64url character
// per group: the last group of a number is a character of the first half of
// the alphabet (A-Z, a-f), every group before it one of the second half
// (g-z, 0-9, '-', '_'). A difference below 32 is one character, below 1,024
// two: about 130 bytes for a full window of a conversation among a hundred
// busy ones.
//
// An entry written before the header existed has none, and the entry after
// it a window of one (the writer does not read further back); readers treat
// a window that ends above the wanted seqs as the end of the index and read
// the rest as before.

// Window is how many previous entries [HeaderPrev] lists: the newest page
// of up to Window+1 entries is found from the head alone.
const Window = 64

const windowAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// windowDigit maps a character to its index in windowAlphabet, -1 if none.
var windowDigit = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := range len(windowAlphabet) {
		t[windowAlphabet[i]] = int8(i)
	}
	return t
}()

// appendWindowNum appends v in the window encoding.
func appendWindowNum(b []byte, v uint64) []byte {
	var tmp [13]byte // 64 bits in 5-bit groups
	i := len(tmp) - 1
	tmp[i] = windowAlphabet[v&31]
	for v >>= 5; v > 0; v >>= 5 {
		i--
		tmp[i] = windowAlphabet[32|v&31]
	}
	return append(b, tmp[i:]...)
}

// nextWindowNum returns the first number of s and the rest of s; ok is
// false when s does not start with a well-formed number.
func nextWindowNum(s string) (v uint64, rest string, ok bool) {
	for i := 0; i < len(s); i++ {
		d := windowDigit[s[i]]
		if d < 0 || v>>59 != 0 {
			return 0, "", false
		}
		v = v<<5 | uint64(d&31)
		if d < 32 {
			return v, s[i+1:], true
		}
	}
	return 0, "", false
}

// nextWindow returns the [HeaderPrev] value of the entry after the one
// stored at stream sequence stream whose own value is prev. stream 0 (an
// empty conversation) gives "". An entry without a value (written before
// the header existed) gives a window of one.
func nextWindow(prev string, stream uint64) string {
	if stream == 0 {
		return ""
	}
	var num [13]byte
	var b strings.Builder // its String does not copy
	b.Grow(len(prev) + 8)
	b.Write(appendWindowNum(num[:0], stream))
	first, rest, ok := nextWindowNum(prev)
	if !ok || first >= stream {
		return b.String() // no (usable) window: start a new one
	}
	b.Write(appendWindowNum(num[:0], stream-first))
	// Keep Window-2 more numbers of rest (its differences), cut at a number
	// boundary.
	n, cut := 0, 0
	for cut < len(rest) && n < Window-2 {
		if windowDigit[rest[cut]] < 32 {
			n++
		}
		cut++
	}
	b.WriteString(rest[:cut])
	return b.String()
}

// NextWindow returns the [HeaderPrev] value of the entry a writer appends
// after the conversation's newest entry, stored at stream sequence stream
// (0: the conversation is empty) and carrying prev as its own [HeaderPrev]
// ("" if it has none). Bulk writers that stamp entries themselves (natter
// bench's filler) use it; [Log.Append] does the same.
func NextWindow(prev string, stream uint64) string { return nextWindow(prev, stream) }

// windowIter walks a window, newest entry first.
type windowIter struct {
	s   string
	cur uint64 // stream sequence of the entry last returned
	n   int
}

// next returns the stream sequence of the next older entry; ok is false at
// the end of the window. A malformed window is an error.
func (w *windowIter) next() (stream uint64, ok bool, err error) {
	if w.s == "" || w.n == Window {
		return 0, false, nil
	}
	v, rest, good := nextWindowNum(w.s)
	switch {
	case !good:
		return 0, false, fmt.Errorf("%w: malformed %s at %q", ErrCorrupt, HeaderPrev, truncate(w.s))
	case w.n == 0:
		w.cur = v
	case v == 0 || v >= w.cur:
		return 0, false, fmt.Errorf("%w: %s steps %d back from stream seq %d", ErrCorrupt, HeaderPrev, v, w.cur)
	default:
		w.cur -= v
	}
	if w.cur == 0 {
		return 0, false, fmt.Errorf("%w: %s lists stream seq 0", ErrCorrupt, HeaderPrev)
	}
	w.s, w.n = rest, w.n+1
	return w.cur, true, nil
}

func truncate(s string) string {
	if len(s) > 16 {
		return s[:16] + "..."
	}
	return strings.Clone(s)
}
