package msglog

import (
	"errors"
	"fmt"
)

var (
	// ErrTrimmed means a wanted seq is older than the hot tier. The error is
	// a [*TrimmedError] that carries the oldest seq still in the hot tier.
	ErrTrimmed = errors.New("msglog: trimmed from the hot tier")
	// ErrConflict means an append lost the compare-and-set race more often
	// than Config.MaxRetries allows.
	ErrConflict = errors.New("msglog: too many append conflicts")
	// ErrInvalid means a bad argument: an invalid id, an empty cmid, a page
	// limit below one.
	ErrInvalid = errors.New("msglog: invalid argument")
	// ErrCorrupt means a log entry could not be decoded or its anchors do not
	// line up. Workers should dead-letter such entries.
	ErrCorrupt = errors.New("msglog: corrupt log entry")
	// ErrNoSuchSeq means a seq above the conversation's newest (or 0).
	ErrNoSuchSeq = errors.New("msglog: no such seq")
)

// TrimmedError reports that a read reached below the hot tier of a
// conversation. errors.Is(err, [ErrTrimmed]) is true for it.
type TrimmedError struct {
	// Conv is the conversation.
	Conv string
	// Oldest is the oldest seq still in the hot tier; older messages are in
	// the archive only.
	Oldest uint64
}

func (e *TrimmedError) Error() string {
	// No "msglog:" prefix: callers get it wrapped as "msglog: <op> <conv>: ...".
	return fmt.Sprintf("seqs before %d are trimmed from the hot tier", e.Oldest)
}

// Unwrap returns [ErrTrimmed].
func (e *TrimmedError) Unwrap() error { return ErrTrimmed }
