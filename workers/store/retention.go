package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	natter "github.com/natter-im/natter"
)

// Retention (the retention role, workers/retention) keeps its state in one
// collection, read and written by _id only, so that a sweep costs lookups
// of what is due rather than a scan of the archive (docs/design.md,
// "Retention"):
//
//   - "c/<conv>": one conversation's policy override, legal hold and floor
//     ([ConvRetention]);
//   - "s/<slot>": the conversations due for a check in one slot of time
//     (slot = Unix ms / the slot width), an id list;
//   - "sweep": where the sweeps got to ([RetentionSweep]).
//
// On FerretDB an update reads and rewrites the whole document, so two
// concurrent updates of one document can lose one: the writes here are
// serialised per process (retMu); on MongoDB each is atomic anyway. Several
// processes writing retention state of one embedded store can lose a
// schedule entry (the daily recheck finds the conversation again).

// CollRetention holds the retention state.
const CollRetention = "retention"

// ConvRetention is one conversation's retention state.
type ConvRetention struct {
	// Conv is the conversation id.
	Conv string `bson:"conv"`
	// Days and Messages override the conversation class's policy when
	// DaysSet / MessagesSet (0 = keep forever).
	Days        int  `bson:"days,omitempty"`
	DaysSet     bool `bson:"days_set,omitempty"`
	Messages    int  `bson:"msgs,omitempty"`
	MessagesSet bool `bson:"msgs_set,omitempty"`
	// Hold is the legal hold: nothing of the conversation is removed
	// while it is set.
	Hold bool `bson:"hold,omitempty"`
	// Floor is the oldest seq kept: seqs below it were removed (or are
	// being removed) and no reader returns them. 0 means none removed.
	Floor uint64 `bson:"floor,omitempty"`
	// Done is the newest seq whose removal completed (archive, blocks,
	// hot tier, actions); Done < Floor-1 means a removal was cut short.
	Done uint64 `bson:"done,omitempty"`
	// Slot is the schedule slot the conversation is listed in: 0 unknown
	// to the sweeper, RetentionParked none.
	Slot int64 `bson:"slot,omitempty"`
}

// RetentionPolicy is a change of a conversation's override: a nil field is
// left as it is; Days or Messages below 0 return to the class default.
type RetentionPolicy struct {
	Days     *int
	Messages *int
	Hold     *bool
}

// RetentionSweep is where the sweeps got to.
type RetentionSweep struct {
	// Tail is the MSGS stream sequence up to which the sweeper has looked
	// at new entries.
	Tail uint64 `bson:"tail"`
	// Slot is the newest schedule slot processed.
	Slot int64 `bson:"slot"`
	// Defaults is the class policies the last sweep ran with (a change
	// makes the next sweep recheck every listed conversation).
	Defaults string `bson:"defaults,omitempty"`
}

type retConvDoc struct {
	ID            string `bson:"_id"`
	ConvRetention `bson:",inline"`
}

type retSlotDoc struct {
	ID    string   `bson:"_id"`
	Convs []string `bson:"convs"`
}

type retSweepDoc struct {
	ID             string `bson:"_id"`
	RetentionSweep `bson:",inline"`
}

// RetentionSlotWidth is the width of a schedule slot: a conversation
// listed in slot k is checked by the first sweep at or after the start of
// slot k.
const RetentionSlotWidth = time.Minute

// RetentionSlotOf is the slot t lies in.
func RetentionSlotOf(t time.Time) int64 { return t.UnixMilli() / RetentionSlotWidth.Milliseconds() }

// RetentionParked is the Slot of a conversation the sweeper knows but
// has nothing scheduled for (no age limit, or under hold): new entries
// past its message limit, a policy change or a lifted hold list it again.
const RetentionParked int64 = -1

func retConvID(conv string) string { return "c/" + conv }
func retSlotID(slot int64) string  { return "s/" + strconv.FormatInt(slot, 10) }

const retSweepID = "sweep"

// retMu serialises the retention writes of this process (see above).
var retMu sync.Mutex

func (s *Store) retention() *mongo.Collection { return s.db.Collection(CollRetention) }

// ConvRetention returns conv's retention state; ok is false when it has
// none (class policy, no hold, nothing removed).
func (s *Store) ConvRetention(ctx context.Context, conv string) (ConvRetention, bool, error) {
	var d retConvDoc
	err := s.retention().FindOne(ctx, bson.D{{Key: "_id", Value: retConvID(conv)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return ConvRetention{Conv: conv}, false, nil
	}
	if err != nil {
		return ConvRetention{}, false, fmt.Errorf("store: retention of %s: %w", conv, err)
	}
	d.Conv = conv
	return d.ConvRetention, true, nil
}

// RetentionFloor is conv's floor: the oldest seq readers may return (0:
// nothing removed). One lookup by _id.
func (s *Store) RetentionFloor(ctx context.Context, conv string) (uint64, error) {
	r, _, err := s.ConvRetention(ctx, conv)
	return r.Floor, err
}

// SetRetentionPolicy applies p to conv's override and hold and returns the
// state after it.
func (s *Store) SetRetentionPolicy(ctx context.Context, conv string, p RetentionPolicy) (ConvRetention, error) {
	set, unset := bson.D{{Key: "conv", Value: conv}}, bson.D{}
	if p.Days != nil {
		if *p.Days < 0 {
			unset = append(unset, bson.E{Key: "days", Value: ""}, bson.E{Key: "days_set", Value: ""})
		} else {
			set = append(set, bson.E{Key: "days", Value: *p.Days}, bson.E{Key: "days_set", Value: true})
		}
	}
	if p.Messages != nil {
		if *p.Messages < 0 {
			unset = append(unset, bson.E{Key: "msgs", Value: ""}, bson.E{Key: "msgs_set", Value: ""})
		} else {
			set = append(set, bson.E{Key: "msgs", Value: *p.Messages}, bson.E{Key: "msgs_set", Value: true})
		}
	}
	if p.Hold != nil {
		set = append(set, bson.E{Key: "hold", Value: *p.Hold})
	}
	upd := bson.D{{Key: "$set", Value: set}}
	if len(unset) > 0 {
		upd = append(upd, bson.E{Key: "$unset", Value: unset})
	}
	if err := s.retUpdate(ctx, retConvID(conv), upd); err != nil {
		return ConvRetention{}, fmt.Errorf("store: set retention of %s: %w", conv, err)
	}
	r, _, err := s.ConvRetention(ctx, conv)
	return r, err
}

// SetRetentionFloor records conv's floor and how far its removal got
// (never lowering either).
func (s *Store) SetRetentionFloor(ctx context.Context, conv string, floor, done uint64) error {
	upd := bson.D{{Key: "$set", Value: bson.D{{Key: "conv", Value: conv}}},
		{Key: "$max", Value: bson.D{{Key: "floor", Value: int64(floor)}, {Key: "done", Value: int64(done)}}}}
	if err := s.retUpdate(ctx, retConvID(conv), upd); err != nil {
		return fmt.Errorf("store: retention floor of %s: %w", conv, err)
	}
	return nil
}

// ScheduleRetention lists conv in slot (and no longer in the slot it was
// listed in, when another); RetentionParked lists it nowhere.
func (s *Store) ScheduleRetention(ctx context.Context, conv string, slot int64) error {
	r, _, err := s.ConvRetention(ctx, conv)
	if err != nil {
		return err
	}
	if r.Slot == slot && slot != 0 {
		return nil
	}
	if slot > 0 {
		if err := s.retUpdate(ctx, retSlotID(slot), bson.D{{Key: "$addToSet", Value: bson.D{{Key: "convs", Value: conv}}}}); err != nil {
			return fmt.Errorf("store: schedule %s: %w", conv, err)
		}
	}
	if err := s.retUpdate(ctx, retConvID(conv), bson.D{{Key: "$set", Value: bson.D{{Key: "conv", Value: conv}, {Key: "slot", Value: slot}}}}); err != nil {
		return fmt.Errorf("store: schedule %s: %w", conv, err)
	}
	if r.Slot > 0 && r.Slot != slot {
		// The old listing is dropped last: a crash before leaves the
		// conversation listed twice (checked twice), never in none.
		if err := s.retUpdate(ctx, retSlotID(r.Slot), bson.D{{Key: "$pull", Value: bson.D{{Key: "convs", Value: conv}}}}); err != nil {
			return fmt.Errorf("store: schedule %s: %w", conv, err)
		}
	}
	return nil
}

// RetentionSlot returns the conversations listed in slot.
func (s *Store) RetentionSlot(ctx context.Context, slot int64) ([]string, error) {
	var d retSlotDoc
	err := s.retention().FindOne(ctx, bson.D{{Key: "_id", Value: retSlotID(slot)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: retention slot %d: %w", slot, err)
	}
	return d.Convs, nil
}

// DropRetentionSlot deletes slot's list (once every conversation in it was
// checked and scheduled again).
func (s *Store) DropRetentionSlot(ctx context.Context, slot int64) error {
	return s.wgate.do(ctx, func() error {
		_, err := s.retention().DeleteOne(ctx, bson.D{{Key: "_id", Value: retSlotID(slot)}})
		if err != nil {
			return fmt.Errorf("store: drop retention slot %d: %w", slot, err)
		}
		return nil
	})
}

// RetentionSweepState returns where the sweeps got to (zero before the first).
func (s *Store) RetentionSweepState(ctx context.Context) (RetentionSweep, error) {
	var d retSweepDoc
	err := s.retention().FindOne(ctx, bson.D{{Key: "_id", Value: retSweepID}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return RetentionSweep{}, nil
	}
	if err != nil {
		return RetentionSweep{}, fmt.Errorf("store: retention sweep: %w", err)
	}
	return d.RetentionSweep, nil
}

// SetRetentionSweep records where the sweeps got to.
func (s *Store) SetRetentionSweep(ctx context.Context, w RetentionSweep) error {
	upd := bson.D{{Key: "$set", Value: bson.D{{Key: "tail", Value: int64(w.Tail)}, {Key: "slot", Value: w.Slot}, {Key: "defaults", Value: w.Defaults}}}}
	if err := s.retUpdate(ctx, retSweepID, upd); err != nil {
		return fmt.Errorf("store: retention sweep: %w", err)
	}
	return nil
}

// RetainedConversations lists every conversation with retention state
// (scans the collection: only when the class policies changed).
func (s *Store) RetainedConversations(ctx context.Context) ([]string, error) {
	cur, err := s.retention().Find(ctx, bson.D{{Key: "conv", Value: bson.D{{Key: "$exists", Value: true}}}},
		options.Find().SetProjection(bson.D{{Key: "conv", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("store: retained conversations: %w", err)
	}
	var docs []struct {
		ID   string `bson:"_id"`
		Conv string `bson:"conv"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("store: retained conversations: %w", err)
	}
	out := make([]string, 0, len(docs))
	for _, d := range docs {
		if d.ID == retConvID(d.Conv) {
			out = append(out, d.Conv)
		}
	}
	return out, nil
}

// retUpdate upserts the retention document id with upd, one at a time per
// process.
func (s *Store) retUpdate(ctx context.Context, id string, upd bson.D) error {
	retMu.Lock()
	defer retMu.Unlock()
	return s.wgate.do(ctx, func() error {
		_, err := s.retention().UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, upd, options.Update().SetUpsert(true))
		return err
	})
}

// ExpireArchived removes the archived messages of conv with seqs from..to
// (msgs, read by the caller from the blocks, the hot tier or the messages
// collection: their ids) and the blocks that lie wholly in the range; the
// block that holds to but goes on past it is rewritten with the removed
// messages blanked (id, seq, sender and time stay until the whole block
// goes). Every delete is by _id, in one delete command per collection.
// It returns how many messages and blocks it deleted.
func (s *Store) ExpireArchived(ctx context.Context, conv string, from, to uint64, msgs []natter.Message) (nm, nb int64, err error) {
	if to < from {
		return 0, 0, nil
	}
	var models []mongo.WriteModel
	for _, m := range msgs {
		if m.Conv == conv && m.Seq >= from && m.Seq <= to {
			models = append(models, mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: m.ID}}))
		}
	}
	if nm, err = s.bulkDelete(ctx, s.msgs, models); err != nil {
		return 0, 0, fmt.Errorf("store: expire messages of %s: %w", conv, err)
	}
	models = models[:0]
	k1 := BlockOf(to)
	partial := to != BlockFirst(k1)+BlockSize-1 // k1 goes on past to
	for k := BlockOf(from); k <= k1; k++ {
		if k == k1 && partial {
			break
		}
		models = append(models, mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: blockID(conv, k)}}))
	}
	if nb, err = s.bulkDelete(ctx, s.blocks, models); err != nil {
		return nm, 0, fmt.Errorf("store: expire blocks of %s: %w", conv, err)
	}
	if !partial {
		return nm, nb, nil
	}
	// The partial block: rewritten with seqs up to to blanked.
	blk, ok, err := s.ArchiveRange(ctx, conv, BlockFirst(k1), BlockFirst(k1)+BlockSize-1)
	if err != nil || !ok {
		return nm, nb, err
	}
	changed := false
	for i := range blk {
		if blk[i].Seq <= to {
			if e := Expired(blk[i]); !reflect.DeepEqual(e, blk[i]) {
				blk[i], changed = e, true
			}
		}
	}
	if !changed {
		return nm, nb, nil
	}
	if err := s.wgate.do(ctx, func() error {
		_, err := s.blocks.DeleteOne(ctx, bson.D{{Key: "_id", Value: blockID(conv, k1)}})
		return err
	}); err != nil {
		return nm, nb, fmt.Errorf("store: expire: drop block %s: %w", blockID(conv, k1), err)
	}
	if _, err := s.InsertBlocks(ctx, []Block{{Conv: conv, K: k1, Msgs: blk}}); err != nil {
		return nm, nb, fmt.Errorf("store: expire: rewrite block %s: %w", blockID(conv, k1), err)
	}
	return nm, nb, nil
}

// Expired is what an archive block keeps of a message the retention
// policy removed while other messages of its block are kept: id, seq,
// sender, type and time; no body, cmid, reference, mentions or
// attachments.
func Expired(m natter.Message) natter.Message {
	return natter.Message{ID: m.ID, Conv: m.Conv, Seq: m.Seq, From: m.From, Type: m.Type, TS: m.TS}
}

// ExpireRangeScan deletes the archived messages of conv with seqs
// from..to with one range filter: the {conv, seq} index on MongoDB, a scan
// of the collection on the embedded store. For ranges whose ids the
// caller could not read (neither blocks nor hot tier hold them).
func (s *Store) ExpireRangeScan(ctx context.Context, conv string, from, to uint64) (int64, error) {
	var n int64
	err := s.wgate.do(ctx, func() error {
		r, err := s.msgs.DeleteMany(ctx, bson.D{{Key: "conv", Value: conv}, {Key: "seq", Value: bson.D{{Key: "$gte", Value: from}, {Key: "$lte", Value: to}}}})
		if r != nil {
			n = r.DeletedCount
		}
		return err
	})
	if err != nil {
		return n, fmt.Errorf("store: expire messages of %s: %w", conv, err)
	}
	return n, nil
}

// bulkDelete runs models (DeleteOne by _id) as one unordered command.
func (s *Store) bulkDelete(ctx context.Context, coll *mongo.Collection, models []mongo.WriteModel) (int64, error) {
	if len(models) == 0 {
		return 0, nil
	}
	var n int64
	err := s.wgate.do(ctx, func() error {
		r, err := coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
		if r != nil {
			n = r.DeletedCount
		}
		return err
	})
	return n, err
}

// retLock names the lock one sweep holds, so that replicas of the role
// sweep one at a time.
const retLock = "retention/sweep"

// RetentionLock takes the sweep's lock, waiting until ctx ends while
// another replica holds it, and returns its release.
func (s *Store) RetentionLock(ctx context.Context) (release func(), err error) {
	h, err := s.lock(ctx, retLock)
	if err != nil {
		return nil, err
	}
	return h.release, nil
}

// RetentionMove moves Conv's listing from slot From (0 or
// RetentionParked: none) to slot To (RetentionParked: none).
type RetentionMove struct {
	Conv     string
	From, To int64
}

// MoveRetention applies a sweep's schedule changes in few commands: each
// slot gets its new conversations in one update, the conversations'
// documents their slot (an update by _id each), the
// slots left keep them until one update each removes them (a crash in
// between lists a conversation twice, never in none). Slots in drop are
// deleted after (the sweep read them all).
func (s *Store) MoveRetention(ctx context.Context, moves []RetentionMove, drop []int64) error {
	add := map[int64][]string{}
	pull := map[int64][]string{}
	for _, m := range moves {
		if m.To > 0 && m.To != m.From {
			add[m.To] = append(add[m.To], m.Conv)
		}
		if m.From > 0 && m.From != m.To {
			pull[m.From] = append(pull[m.From], m.Conv)
		}
	}
	for slot, convs := range add {
		if err := s.retUpdate(ctx, retSlotID(slot), bson.D{{Key: "$addToSet", Value: bson.D{{Key: "convs", Value: bson.D{{Key: "$each", Value: convs}}}}}}); err != nil {
			return fmt.Errorf("store: schedule slot %d: %w", slot, err)
		}
	}
	// One update by _id each: FerretDB v1 did not answer a bulk write of
	// 100 upserts (minutes, then still waiting).
	for _, m := range moves {
		if m.To == m.From {
			continue
		}
		if err := s.retUpdate(ctx, retConvID(m.Conv), bson.D{{Key: "$set", Value: bson.D{{Key: "conv", Value: m.Conv}, {Key: "slot", Value: m.To}}}}); err != nil {
			return fmt.Errorf("store: schedule %s: %w", m.Conv, err)
		}
	}
	dropped := map[int64]bool{}
	for _, k := range drop {
		dropped[k] = true
	}
	for slot, convs := range pull {
		if dropped[slot] {
			continue
		}
		if err := s.retUpdate(ctx, retSlotID(slot), bson.D{{Key: "$pullAll", Value: bson.D{{Key: "convs", Value: convs}}}}); err != nil {
			return fmt.Errorf("store: unschedule slot %d: %w", slot, err)
		}
	}
	for _, k := range drop {
		if err := s.DropRetentionSlot(ctx, k); err != nil {
			return err
		}
	}
	return nil
}
