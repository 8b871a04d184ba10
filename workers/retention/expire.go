package retention

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/store"
)

const day = 24 * time.Hour

// check applies conv's policy at now: it finds the newest seq the policy
// no longer keeps (never the head: the newest entry carries the seq the
// next one continues from), removes everything up to it that an earlier
// check did not, and says when to look again.
func (s *Sweeper) check(ctx context.Context, conv string, now time.Time) Result {
	res := Result{Conv: conv}
	fail := func(err error) Result {
		res.Outcome, res.Err = Failed, err
		return res
	}
	r, _, err := s.st.ConvRetention(ctx, conv)
	if err != nil {
		return fail(err)
	}
	res.slot = r.Slot
	p := s.Policy(conv, r)
	if r.Hold {
		res.Outcome = Held
		return res
	}
	if p.IsZero() {
		res.Outcome = Parked
		return res
	}
	head, err := s.log.Head(ctx, conv)
	if err != nil {
		return fail(err)
	}
	if head == 0 {
		res.Outcome = Parked
		return res
	}
	floor := max(r.Floor, 1)
	target := max(r.Done, floor-1) // the newest seq to remove
	more := false
	if p.Messages > 0 && head > uint64(p.Messages) && head-uint64(p.Messages) > target {
		target, res.Reason = head-uint64(p.Messages), "messages"
	}
	// At most MaxPerCheck seqs a check; the rest in the next slot.
	if limit := r.Done + uint64(s.cfg.MaxPerCheck); target > limit {
		target, more = limit, true
	}
	var oldestKept int64 // ts of the oldest message kept, for the age limit
	reads := map[uint64]chunk{}
	if p.Days > 0 {
		cutoff := now.Add(-time.Duration(p.Days) * day).UnixMilli()
		var scanned int
		for a := target + 1; a <= head && oldestKept == 0; {
			if scanned >= s.cfg.MaxPerCheck {
				more = true
				break
			}
			b := min(store.BlockFirst(store.BlockOf(a))+store.BlockSize-1, head)
			msgs, archived, err := s.read(ctx, conv, a, b)
			var gone *goneError
			if errors.As(err, &gone) {
				a = gone.next // nothing there to age
				continue
			}
			if err != nil {
				return fail(err)
			}
			reads[a] = chunk{msgs, archived}
			if len(msgs) == 0 {
				break // nothing readable: try again next slot
			}
			for _, m := range msgs {
				if m.TS < cutoff && m.Seq < head {
					target, res.Reason = m.Seq, "days"
					continue
				}
				oldestKept = m.TS
				break
			}
			scanned += len(msgs)
			a = msgs[len(msgs)-1].Seq + 1
		}
		switch {
		case oldestKept != 0 && oldestKept < cutoff:
			// Only the newest message is left, old itself: nothing can
			// go before a message sent from now on ages.
			res.Next = now.Add(time.Duration(p.Days) * day)
		case oldestKept != 0:
			res.Next = time.UnixMilli(oldestKept).Add(time.Duration(p.Days) * day)
		}
	}
	res.Outcome = Kept
	if target > r.Done {
		if err := s.remove(ctx, conv, r.Done+1, target, reads, &res); err != nil {
			return fail(err)
		}
		res.Outcome = Expired
	}
	if more || (target > r.Done && res.To < target) {
		res.Next = now // the rest in the next slot
	}
	if res.Next.IsZero() && p.Days > 0 {
		res.Next = now.Add(store.RetentionSlotWidth)
	}
	if res.Next.IsZero() && p.Messages > 0 && !s.tailing() {
		// No tail brings it back when it passes its limit: look again.
		res.Next = now.Add(s.cfg.Interval)
	}
	return res
}

// chunk is what read returned.
type chunk struct {
	msgs     []natter.Message
	archived bool
}

// read returns the messages of conv with seqs a..b (one block at most):
// from the archive's block, else the hot tier, else the messages
// collection (a scan on the embedded store: an archive without blocks).
// archived is false when they came from the hot tier and the newest of them
// is not archived yet.
func (s *Sweeper) read(ctx context.Context, conv string, a, b uint64) (msgs []natter.Message, archived bool, err error) {
	msgs, ok, err := s.st.ArchiveRange(ctx, conv, a, b)
	if err != nil {
		return nil, false, err
	}
	if ok {
		return msgs, true, nil
	}
	hot, _, err := s.log.After(ctx, conv, a-1, int(b-a+1))
	if err == nil && len(hot) > 0 && hot[0].Seq == a {
		_, gerr := s.st.GetMessage(ctx, hot[len(hot)-1].ID)
		if errors.Is(gerr, store.ErrNotFound) {
			return hot, false, nil
		}
		if gerr != nil {
			return nil, false, gerr
		}
		return hot, true, nil
	}
	msgs, err = s.st.MessagesRange(ctx, conv, a, b, 0)
	if err == nil && len(msgs) == 0 {
		// Nowhere (a conversation an operator deleted: its hot tier holds
		// only its last entry, its archive nothing). errGone says where
		// the log goes on, so the check does not scan again next time.
		var te *msglog.TrimmedError
		if _, _, terr := s.log.After(ctx, conv, a-1, 1); errors.As(terr, &te) && te.Oldest > a {
			return nil, true, &goneError{next: te.Oldest}
		}
	}
	return msgs, true, err
}

// goneError: seqs from a read's first up to next are in neither the
// archive nor the hot tier.
type goneError struct{ next uint64 }

func (e *goneError) Error() string { return fmt.Sprintf("retention: seqs below %d are gone", e.next) }

// remove removes seqs from..to of conv: the floor first (readers stop
// returning them), then, block by block, the archive's messages and
// blocks and their ACTIONS keys; then the hot tier's entries; then the
// event, and the floor's record that the removal is done. A crash on the
// way leaves Done behind the floor, and the next check removes the rest.
// It stops before the first block not archived yet (the persist role
// would store it again after its removal).
func (s *Sweeper) remove(ctx context.Context, conv string, from, to uint64, reads map[uint64]chunk, res *Result) error {
	if err := s.st.SetRetentionFloor(ctx, conv, to+1, from-1); err != nil {
		return err
	}
	var attached []string
	done := from - 1
	for a := from; a <= to; {
		b := min(store.BlockFirst(store.BlockOf(a))+store.BlockSize-1, to)
		c, ok := reads[a]
		if !ok {
			var err error
			c.msgs, c.archived, err = s.read(ctx, conv, a, b)
			var gone *goneError
			if errors.As(err, &gone) {
				c.msgs, c.archived, err = nil, true, nil // nothing left to remove there
			}
			if err != nil {
				return err
			}
		}
		if !c.archived {
			break
		}
		msgs := c.msgs
		for len(msgs) > 0 && msgs[len(msgs)-1].Seq > b {
			msgs = msgs[:len(msgs)-1] // read by the check, up to the head
		}
		var withAtts []string
		for _, m := range msgs {
			if len(m.Attachments) > 0 && m.Seq >= a && m.Seq <= b {
				withAtts = append(withAtts, m.ID)
			}
		}
		if len(withAtts) > 0 && s.cfg.DropAttachments != nil {
			// Before the archive forgets which messages carried them.
			if err := s.cfg.DropAttachments(ctx, withAtts); err != nil {
				return fmt.Errorf("retention: attachments: %w", err)
			}
		}
		attached = append(attached, withAtts...)
		n, _, err := s.st.ExpireArchived(ctx, conv, a, b, msgs)
		if err != nil {
			return err
		}
		if len(msgs) < int(b-a+1) {
			// Ids unknown for some: by range (a scan on the embedded store).
			m, err := s.st.ExpireRangeScan(ctx, conv, a, b)
			if err != nil {
				return err
			}
			n += m
		}
		res.Removed += n
		if err := s.purgeActions(ctx, conv, a, b); err != nil {
			return err
		}
		done, a = b, b+1
	}
	if done < from {
		res.To = from - 1
		return nil
	}
	if _, err := s.log.Expire(ctx, conv, done+1); err != nil {
		return err
	}
	res.From, res.To = from, done
	data, _ := json.Marshal(natter.EventExpired{From: from, To: done, Count: done - from + 1, Floor: done + 1, Reason: res.Reason, Attached: attached})
	ev := natter.Event{ID: "expired:" + conv + ":" + strconv.FormatUint(done, 10), Kind: natter.EventMessagesExpired,
		Conv: conv, TS: s.cfg.Now().UnixMilli(), Actor: Actor, Data: data}
	if err := s.pub.Publish(ctx, ev); err != nil {
		return fmt.Errorf("retention: event: %w", err)
	}
	return s.st.SetRetentionFloor(ctx, conv, done+1, done)
}

// purgeActions removes the ACTIONS keys of seqs a..b of conv (records,
// reactions, thread chunks): one purge of the block's keys when the range
// ends its block, else two per seq.
func (s *Sweeper) purgeActions(ctx context.Context, conv string, a, b uint64) error {
	k := store.BlockOf(a)
	var filters []string
	if b == store.BlockFirst(k)+store.BlockSize-1 {
		filters = append(filters, subjects.ActionsBlockAll(conv, k))
	} else {
		for seq := a; seq <= b; seq++ {
			key := subjects.ActionsKey(conv, seq)
			filters = append(filters, key, key+".>")
		}
	}
	for _, f := range filters {
		if err := s.acts.Purge(ctx, jetstream.WithPurgeSubject(subjects.KVSubject(subjects.BucketActions, f))); err != nil {
			return fmt.Errorf("retention: purge actions %s: %w", f, err)
		}
	}
	return nil
}
