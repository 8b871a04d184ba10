package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/events"
	"github.com/natter-im/natter/workers/store"
)

// Outcome is what a sweep did with one conversation.
type Outcome int

// Outcomes of a check.
const (
	// Kept: nothing was due; the conversation is scheduled again.
	Kept Outcome = iota + 1
	// Expired: messages were removed (Result.From..To).
	Expired
	// Held: under legal hold, nothing was removed.
	Held
	// Parked: no age limit applies; only new entries past a message
	// limit, a policy change or a lifted hold bring it back.
	Parked
	// Failed: the check failed (Result.Err); it is retried next sweep.
	Failed
)

func (o Outcome) String() string {
	switch o {
	case Kept:
		return "kept"
	case Expired:
		return "expired"
	case Held:
		return "held"
	case Parked:
		return "parked"
	case Failed:
		return "failed"
	}
	return "invalid"
}

// Result is the check of one conversation.
type Result struct {
	Conv    string
	Outcome Outcome
	// From..To were removed (Expired); Removed is how many messages the
	// archive held of them.
	From, To uint64
	Removed  int64
	// Reason is the policy that removed them: "days" or "messages".
	Reason string
	// Next is when the conversation is checked again (zero: parked).
	Next time.Time
	Err  error

	slot int64 // the slot it was listed in
}

// Report is what one sweep did.
type Report struct {
	// Tailed is how many new log entries the sweep looked at.
	Tailed int
	// Slots is how many schedule slots it read.
	Slots int
	// Results has one entry per conversation checked, in id order.
	Results []Result
}

// Count returns how many results have outcome o.
func (r Report) Count(o Outcome) int {
	n := 0
	for _, x := range r.Results {
		if x.Outcome == o {
			n++
		}
	}
	return n
}

// Sweeper enforces the retention policies.
type Sweeper struct {
	st   *store.Store
	log  *msglog.Log
	js   jetstream.JetStream
	pub  *events.Publisher
	cfg  Config
	lg   *slog.Logger
	msgs jetstream.Stream
	acts jetstream.Stream
}

// New returns a sweeper on the store and the log; js must hold the MSGS
// stream and the ACTIONS bucket.
func New(ctx context.Context, st *store.Store, l *msglog.Log, js jetstream.JetStream, cfg Config) (*Sweeper, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	msgs, err := js.Stream(ctx, subjects.StreamMsgs)
	if err != nil {
		return nil, fmt.Errorf("retention: stream %s: %w", subjects.StreamMsgs, err)
	}
	acts, err := js.Stream(ctx, subjects.KVStream(subjects.BucketActions))
	if err != nil {
		return nil, fmt.Errorf("retention: bucket %s: %w", subjects.BucketActions, err)
	}
	return &Sweeper{st: st, log: l, js: js, pub: events.NewPublisher(js), cfg: cfg, lg: cfg.Logger, msgs: msgs, acts: acts}, nil
}

// Policy returns conv's policy: its class's, with the fields r overrides.
func (s *Sweeper) Policy(conv string, r store.ConvRetention) Policy {
	p := s.cfg.Direct
	if natter.IsGroupID(conv) {
		p = s.cfg.Group
	}
	if r.DaysSet {
		p.Days = r.Days
	}
	if r.MessagesSet {
		p.Messages = r.Messages
	}
	return p
}

func (s *Sweeper) tailing() bool { return !s.cfg.Direct.IsZero() || !s.cfg.Group.IsZero() }

func (s *Sweeper) defaults() string { return s.cfg.Direct.String() + ";" + s.cfg.Group.String() }

// firstSweepSlots is how many slots before its own the first sweep reads.
const firstSweepSlots = int64(24 * time.Hour / store.RetentionSlotWidth)

// Sweep runs one sweep: the new log entries, then every conversation due.
// It holds the sweep lock throughout (waiting while another replica
// sweeps). A conversation whose check fails is retried in the next slot;
// the error returned is only for what stopped the sweep itself.
func (s *Sweeper) Sweep(ctx context.Context) (Report, error) {
	var rep Report
	release, err := s.st.RetentionLock(ctx)
	if err != nil {
		return rep, fmt.Errorf("retention: lock: %w", err)
	}
	defer release()
	w, err := s.st.RetentionSweepState(ctx)
	if err != nil {
		return rep, err
	}
	now := s.cfg.Now()
	slotNow := store.RetentionSlotOf(now)
	due := map[string]bool{}
	if w.Slot != 0 && w.Defaults != s.defaults() {
		// The class policies changed: every known conversation again.
		all, err := s.st.RetainedConversations(ctx)
		if err != nil {
			return rep, err
		}
		for _, c := range all {
			due[c] = true
		}
	}
	// The tail finds new conversations and those past a message limit;
	// with no class policy only conversations with a policy of their own
	// are enforced, and those are scheduled (Change), so it is skipped:
	// a deployment that keeps everything pays nothing per message. A later
	// class policy tails from the start of the stream once.
	var seen map[string]uint64
	last, n := w.Tail, 0
	if s.tailing() {
		if seen, last, n, err = s.tail(ctx, w.Tail); err != nil {
			return rep, err
		}
	}
	rep.Tailed = n
	for conv, head := range seen {
		if due[conv] {
			continue
		}
		r, _, err := s.st.ConvRetention(ctx, conv)
		if err != nil {
			return rep, err
		}
		p := s.Policy(conv, r)
		if r.Slot == 0 || (!r.Hold && ((r.Slot == store.RetentionParked && p.Days > 0) ||
			(p.Messages > 0 && head >= max(r.Floor, 1)+uint64(p.Messages)))) {
			due[conv] = true
		}
	}
	// The slot of the previous sweep is read again: Change lists a
	// conversation in the current slot, to be checked by the next sweep,
	// which may come in a later slot. A slot is dropped once a sweep read
	// it after it ended.
	from := min(w.Slot, slotNow)
	if w.Slot == 0 {
		// The first sweep: the slots of the day before (changes made
		// through the admin API before the role first ran).
		from = slotNow - firstSweepSlots
	}
	var slots []int64
	for k := from; k <= slotNow; k++ {
		convs, err := s.st.RetentionSlot(ctx, k)
		if err != nil {
			return rep, err
		}
		rep.Slots++
		if convs != nil && k < slotNow {
			slots = append(slots, k)
		}
		for _, c := range convs {
			due[c] = true
		}
	}
	convs := make([]string, 0, len(due))
	for c := range due {
		convs = append(convs, c)
	}
	slices.Sort(convs)
	moves := make([]store.RetentionMove, 0, len(convs))
	for _, c := range convs {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		res := s.check(ctx, c, now)
		if res.Outcome == Failed {
			s.lg.Warn("retention check failed", "conv", c, "err", res.Err)
			res.Next = now.Add(store.RetentionSlotWidth)
		}
		slot := store.RetentionParked
		if !res.Next.IsZero() {
			slot = max(store.RetentionSlotOf(res.Next), slotNow+1)
		}
		moves = append(moves, store.RetentionMove{Conv: c, From: res.slot, To: slot})
		rep.Results = append(rep.Results, res)
	}
	if err := s.st.MoveRetention(ctx, moves, slots); err != nil {
		return rep, err
	}
	if err := s.st.SetRetentionSweep(ctx, store.RetentionSweep{Tail: last, Slot: slotNow, Defaults: s.defaults()}); err != nil {
		return rep, err
	}
	return rep, nil
}

// Run sweeps every Interval until ctx ends.
func (s *Sweeper) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		rep, err := s.Sweep(ctx)
		switch {
		case errors.Is(err, context.Canceled):
			return
		case err != nil:
			s.lg.Warn("retention sweep failed", "err", err)
		case rep.Count(Expired) > 0 || rep.Count(Failed) > 0:
			s.lg.Info("retention sweep", "checked", len(rep.Results), "expired", rep.Count(Expired), "failed", rep.Count(Failed), "tailed", rep.Tailed)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// PolicyStore is what [Change] needs of the store (a *store.Store).
type PolicyStore interface {
	SetRetentionPolicy(ctx context.Context, conv string, p store.RetentionPolicy) (store.ConvRetention, error)
	ScheduleRetention(ctx context.Context, conv string, slot int64) error
}

// Change applies p (a conversation's own limits, or its legal hold) to
// conv for the admin API and lists conv in the current slot, so a new
// limit or a lifted hold takes effect at the next sweep. It returns the state after
// it.
func Change(ctx context.Context, st PolicyStore, conv string, p store.RetentionPolicy, now time.Time) (store.ConvRetention, error) {
	if err := subjects.ValidID(conv); err != nil {
		return store.ConvRetention{}, fmt.Errorf("%w: conv: %w", ErrInvalid, err)
	}
	r, err := st.SetRetentionPolicy(ctx, conv, p)
	if err != nil {
		return r, err
	}
	if err := st.ScheduleRetention(ctx, conv, store.RetentionSlotOf(now)); err != nil {
		return r, err
	}
	r.Slot = store.RetentionSlotOf(now)
	return r, nil
}
