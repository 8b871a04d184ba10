package convsvc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/natter-im/natter/jetstream/convapi"
	"math"
	"slices"
	"time"
	"unicode/utf8"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/workers/events"
	"github.com/natter-im/natter/workers/store"
)

// maxSeq is the largest seq the store can hold (BSON int64).
const maxSeq = math.MaxInt64

type empty struct{}

func (s *service) create(ctx context.Context, in *convapi.CreateRequest) (any, error) {
	if err := validIDs("user", in.User); err != nil {
		return nil, err
	}
	c := natter.Conversation{Kind: in.Kind, CreatedBy: in.User, CreatedAt: time.Now().UnixMilli()}
	switch in.Kind {
	case natter.KindDirect:
		if err := validIDs("with", in.With); err != nil {
			return nil, err
		}
		if in.With == in.User {
			return nil, badFrame("with", "cannot start a direct conversation with yourself")
		}
		if in.Name != "" {
			return nil, badFrame("name", "a direct conversation has no name")
		}
		if len(in.Members) > 0 {
			return nil, badFrame("members", "a direct conversation has two members: use with")
		}
		if err := s.blockedBy(ctx, in.User, in.With); err != nil {
			return nil, err
		}
		c.ID = natter.DirectID(in.User, in.With)
		c.Members = []string{in.User, in.With}
	case natter.KindGroup:
		if in.With != "" {
			return nil, badFrame("with", "only for a direct conversation: use members")
		}
		if len(in.Name) > convapi.MaxNameLen || !utf8.ValidString(in.Name) {
			return nil, badFrame("name", fmt.Sprintf("must be valid UTF-8 of at most %d bytes", convapi.MaxNameLen))
		}
		if len(in.Members) > s.cfg.MaxUsersPerRequest {
			return nil, tooManyUsers("members", len(in.Members), s.cfg.MaxUsersPerRequest)
		}
		members, err := userList("members", in.Members, in.User)
		if err != nil {
			return nil, err
		}
		if len(members) > s.cfg.MaxGroupSize {
			return nil, groupTooBig(len(members), s.cfg.MaxGroupSize)
		}
		id, err := groupID()
		if err != nil {
			return nil, err
		}
		c.ID, c.Name, c.Members = id, in.Name, members
	case "":
		return nil, badFrame("kind", `missing: "direct" or "group"`)
	default:
		return nil, badFrame("kind", fmt.Sprintf(`%q: want "direct" or "group"`, in.Kind))
	}
	return s.store(ctx, c)
}

// store writes a new conversation with its conversation_created event in
// its outbox, publishes its notice and, when it is new, the event and the
// added push (created) to every member. Creating a direct conversation
// that exists returns the existing one (no event, no push: they went out
// when it was created).
func (s *service) store(ctx context.Context, c natter.Conversation) (any, error) {
	outbox, err := s.createdOutbox(c)
	if err != nil {
		return nil, err
	}
	have, err := s.st.CreateConversation(ctx, c, outbox...)
	exists := errors.Is(err, store.ErrExists) && c.Kind == natter.KindDirect
	s.notify(c.ID, c.Members, err == nil || exists)
	switch {
	case exists:
		have.MemberCount = len(have.Members)
		return have, nil // idempotent: the pair's one direct conversation
	case err != nil:
		return nil, err
	}
	s.flush(ctx, have.ID, outbox)
	s.push(ctx, have.ID, c.Members, protocol.ConvPush(protocol.ConvFrame{Conv: have.ID, Event: protocol.ConvAdded, By: have.CreatedBy, Created: true}), nil, 0)
	have.MemberCount = len(have.Members)
	if have.Kind == natter.KindGroup {
		have.Owner = have.CreatedBy // a new group's owner is its creator
	}
	return s.fitMembers(have), nil
}

// fitMembers drops the member list of a create reply that would not fit the
// max payload (a create whose request nearly filled it); members.list
// pages through it.
func (s *service) fitMembers(c natter.Conversation) natter.Conversation {
	n := 512 + len(c.Name)
	for _, m := range c.Members {
		n += len(m) + 3
	}
	if int64(n) > s.nc.MaxPayload() {
		c.Members = nil
	}
	return c
}

func groupID() (string, error) {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("group id: %w", err)
	}
	return "g_" + hex.EncodeToString(b[:]), nil
}

func groupTooBig(n, max int) *convapi.Error {
	return &convapi.Error{Code: convapi.CodeTooBig, Msg: fmt.Sprintf("group would have %d members, at most %d", n, max)}
}

func tooManyUsers(field string, n, max int) *convapi.Error {
	return &convapi.Error{Code: convapi.CodeTooBig, Msg: fmt.Sprintf("%s: %d users in one request, at most %d: send several requests", field, n, max)}
}

func (s *service) get(ctx context.Context, in *convapi.ConvRequest) (any, error) {
	if err := validIDs("user", in.User, "conv", in.Conv); err != nil {
		return nil, err
	}
	if err := s.requireMember(ctx, in.User, in.Conv); err != nil {
		return nil, err
	}
	c, err := s.st.ConversationSummary(ctx, in.Conv, convapi.MaxInlineMembers)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotMember
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (s *service) list(ctx context.Context, in *convapi.ListRequest) (any, error) {
	if err := validIDs("user", in.User); err != nil {
		return nil, err
	}
	if in.After != "" {
		if err := validIDs("after", in.After); err != nil {
			return nil, err
		}
	}
	limit := in.Limit
	switch {
	case limit == 0:
		limit = convapi.ListPageSize
	case limit < 0 || limit > convapi.ListPageSize:
		return nil, badFrame("limit", fmt.Sprintf("must be 1..%d (0 means %d)", convapi.ListPageSize, convapi.ListPageSize))
	}
	ids, err := s.userConvs(ctx, in.User)
	if err != nil {
		return nil, err
	}
	page, next := pageAfter(ids, in.After, limit)
	if in.IDs {
		revs, err := s.groupRevs(ctx, page)
		if err != nil {
			return nil, err
		}
		return convapi.ListReply{Convs: []natter.Conversation{}, IDs: slices.Clone(page), Revs: revs, Next: next}, nil
	}
	convs, found, err := s.pageSummaries(ctx, page)
	if err != nil {
		return nil, err
	}
	out := convapi.ListReply{Convs: make([]natter.Conversation, 0, len(page)), Next: next}
	budget := int(s.nc.MaxPayload()) - 1024
	for i, c := range convs {
		if !found[i] {
			continue
		}
		b, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("encode conversation %s: %w", c.ID, err)
		}
		if budget -= len(b) + 1; budget < 0 && i > 0 {
			out.Next = page[i-1] // the rest comes in the next page
			break
		}
		out.Convs = append(out.Convs, c)
	}
	return out, nil
}

// forEach runs fn(i) for i in [0, n) on up to 8 goroutines and returns the
// first error.
func forEach(n int, fn func(i int) error) error {
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := range n {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			errs <- fn(i)
		}()
	}
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// pageAfter returns up to n of the sorted ids that come after after, and
// the last of them as next when more follow.
func pageAfter(sorted []string, after string, n int) (page []string, next string) {
	start := 0
	if after != "" {
		i, found := slices.BinarySearch(sorted, after)
		if found {
			i++
		}
		start = i
	}
	end := min(start+n, len(sorted))
	page = sorted[start:end]
	if end < len(sorted) && len(page) > 0 {
		next = page[len(page)-1]
	}
	return page, next
}

func (s *service) read(ctx context.Context, in *convapi.ReadRequest) (any, error) {
	if err := validIDs("user", in.User, "conv", in.Conv); err != nil {
		return nil, err
	}
	if in.Seq == 0 || in.Seq > maxSeq {
		return nil, badFrame("seq", fmt.Sprintf("must be 1..%d", uint64(maxSeq)))
	}
	if err := s.requireMember(ctx, in.User, in.Conv); err != nil {
		return nil, err
	}
	old, err := s.st.ReadCursor(ctx, in.User, in.Conv)
	if err != nil {
		return nil, err
	}
	if err := s.st.SetReadCursor(ctx, in.User, in.Conv, in.Seq); err != nil {
		return nil, err
	}
	// The copy in CURSORS, which sync and conv.list pages read, is raised
	// whether or not the store's moved: a retry of a read whose raise
	// failed raises it.
	if err := s.raiseRead(ctx, in.User, in.Conv, in.Seq); err != nil {
		return nil, err
	}
	if in.Seq > old {
		s.pushRead(ctx, in.Conv, in.User, in.Seq) // receipts.go
	}
	// The event id is read:<conv>:<user>:<seq>, so a retried read (same
	// seq, cursor already there) publishes the same event again and
	// JetStream stores it once; a publish that fails fails the request,
	// and the caller's retry publishes it.
	if s.cfg.Events != nil && in.Seq >= old {
		ev, err := events.ReadMoved(in.Conv, in.User, in.Seq, time.Now().UnixMilli())
		if err == nil {
			err = s.cfg.Events.Publish(ctx, ev)
		}
		if err != nil {
			s.log.Warn("read_moved not published: the caller retries", "conv", in.Conv, "err", err)
			return nil, convapi.Unavailable("event stream unavailable, retry", err)
		}
	}
	return empty{}, nil
}

type historyReply struct {
	Msgs []json.RawMessage `json:"msgs"`
	More bool              `json:"more"`
	// Floor is the retention floor (convapi.HistoryPage.Floor).
	Floor uint64 `json:"floor,omitempty"`
}

func (s *service) history(ctx context.Context, in *convapi.HistoryRequest) (any, error) {
	if err := validIDs("user", in.User, "conv", in.Conv); err != nil {
		return nil, err
	}
	limit := in.Limit
	switch {
	case limit == 0:
		limit = convapi.DefaultHistoryLimit
	case limit < 0 || limit > convapi.MaxHistoryLimit:
		return nil, badFrame("limit", fmt.Sprintf("must be 1..%d (0 means %d)", convapi.MaxHistoryLimit, convapi.DefaultHistoryLimit))
	}
	if in.Before > maxSeq {
		return nil, badFrame("before", fmt.Sprintf("must be at most %d", uint64(maxSeq)))
	}
	if err := s.requireMember(ctx, in.User, in.Conv); err != nil {
		return nil, err
	}
	return s.page(ctx, in.Conv, in.Before, in.After, limit)
}

// messages is the internal history: no acting user, not_found for an
// unknown conversation.
func (s *service) messages(ctx context.Context, in *convapi.MessagesRequest) (any, error) {
	if err := validIDs("conv", in.Conv); err != nil {
		return nil, err
	}
	limit := in.Limit
	switch {
	case limit == 0:
		limit = convapi.DefaultHistoryLimit
	case limit < 0 || limit > convapi.MaxHistoryLimit:
		return nil, badFrame("limit", fmt.Sprintf("must be 1..%d (0 means %d)", convapi.MaxHistoryLimit, convapi.DefaultHistoryLimit))
	}
	if in.Before > maxSeq {
		return nil, badFrame("before", fmt.Sprintf("must be at most %d", uint64(maxSeq)))
	}
	if _, err := s.st.GetConversation(ctx, in.Conv, false); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, notFound(in.Conv)
		}
		return nil, err
	}
	return s.page(ctx, in.Conv, in.Before, in.After, limit)
}

// message is the internal lookup of one archived message by id.
func (s *service) message(ctx context.Context, in *convapi.MessageRequest) (any, error) {
	if err := validIDs("conv", in.Conv, "id", in.ID); err != nil {
		return nil, err
	}
	m, err := s.st.GetMessage(ctx, in.ID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && m.Conv != in.Conv) {
		return nil, &convapi.Error{Code: convapi.CodeNotFound, Msg: "no message " + in.ID + " in " + in.Conv}
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// fitHistory cuts msgs (oldest first) to limit and to the max payload,
// keeping the end next to the cursor: the oldest when reading forward, the
// newest when reading backward.
func (s *service) fitHistory(msgs []natter.Message, limit int, forward bool) (historyReply, error) {
	out := historyReply{Msgs: make([]json.RawMessage, 0, min(len(msgs), limit))}
	if len(msgs) > limit {
		out.More = true
		if forward {
			msgs = msgs[:limit]
		} else {
			msgs = msgs[len(msgs)-limit:]
		}
	}
	budget := int(s.nc.MaxPayload()) - 1024
	n := len(msgs)
	for i := range n {
		m := msgs[i]
		if !forward {
			m = msgs[n-1-i]
		}
		b, err := json.Marshal(m)
		if err != nil {
			return out, fmt.Errorf("encode message %s: %w", m.ID, err)
		}
		if budget -= len(b) + 1; budget < 0 {
			out.More = true
			break
		}
		out.Msgs = append(out.Msgs, b)
	}
	if !forward {
		slices.Reverse(out.Msgs)
	}
	return out, nil
}
