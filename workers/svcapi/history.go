package svcapi

import (
	"context"
	"errors"
	"fmt"
	"github.com/natter-im/natter/jetstream/convapi"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/msglog"
)

// history reads a page from the hot tier, filling from the archive (through
// the conversations service) what was trimmed from it, like the edge.
func (s *service) history(ctx context.Context, in *HistoryRequest) (any, error) {
	if err := checkID("service", in.Service); err != nil {
		return nil, err
	}
	if err := checkID("conv", in.Conv); err != nil {
		return nil, err
	}
	limit := in.Limit
	switch {
	case limit == 0:
		limit = DefaultHistoryLimit
	case limit < 0 || limit > MaxHistoryLimit:
		return nil, badFrame("limit", fmt.Sprintf("must be 1..%d (0 means %d)", MaxHistoryLimit, DefaultHistoryLimit))
	}
	if in.After != nil && in.Before != 0 {
		return nil, badFrame("before", "not together with after")
	}
	if err := s.exists(ctx, in.Conv); err != nil {
		return nil, err
	}
	var (
		out HistoryReply
		err error
	)
	if in.After != nil {
		out, err = s.after(ctx, in.Conv, *in.After, limit)
	} else {
		out, err = s.before(ctx, in.Conv, in.Before, limit)
	}
	if out.Msgs == nil {
		out.Msgs = []natter.Message{}
	}
	return out, err
}

// after is the page of messages with seq > after.
func (s *service) after(ctx context.Context, conv string, after uint64, limit int) (HistoryReply, error) {
	msgs, head, err := s.d.Log.After(ctx, conv, after, limit)
	var te *msglog.TrimmedError
	if errors.As(err, &te) {
		from := after
		page, err := s.d.Convs.Messages(ctx, convapi.MessagesRequest{Conv: conv, After: &from, Before: te.Oldest, Limit: min(limit, convapi.MaxHistoryLimit)})
		if err != nil {
			return HistoryReply{}, err
		}
		msgs = page.Msgs
		if n := len(msgs); n < limit && !page.More && (n == 0 || msgs[n-1].Seq == te.Oldest-1) {
			hot, h2, err := s.d.Log.After(ctx, conv, te.Oldest-1, limit-n)
			if err != nil && !errors.Is(err, msglog.ErrTrimmed) {
				return HistoryReply{}, err
			}
			msgs = append(msgs, hot...)
			head = max(head, h2)
		}
	} else if err != nil {
		return HistoryReply{}, err
	}
	last := after
	if n := len(msgs); n > 0 {
		last = msgs[n-1].Seq
	}
	return HistoryReply{Msgs: msgs, More: last < head}, nil
}

// before is the newest page of messages with seq < before (0: the newest).
func (s *service) before(ctx context.Context, conv string, before uint64, limit int) (HistoryReply, error) {
	msgs, err := s.d.Log.Before(ctx, conv, before, limit)
	var te *msglog.TrimmedError
	if errors.As(err, &te) {
		need := limit - len(msgs)
		page, err := s.d.Convs.Messages(ctx, convapi.MessagesRequest{Conv: conv, Before: te.Oldest, Limit: min(need, convapi.MaxHistoryLimit)})
		if err != nil {
			return HistoryReply{}, err
		}
		return HistoryReply{Msgs: append(page.Msgs, msgs...), More: page.More}, nil
	}
	if err != nil {
		return HistoryReply{}, err
	}
	return HistoryReply{Msgs: msgs, More: len(msgs) > 0 && msgs[0].Seq > 1}, nil
}
