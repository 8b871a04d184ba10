package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/natter-im/natter/jetstream/convapi"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/runner"
	"github.com/natter-im/natter/workers/svcapi"
)

// Payload is the JSON of an ingest message.
type Payload struct {
	// From is the sending service identity.
	From string `json:"from"`
	// Body is the message text.
	Body string `json:"body"`
	// Type is application-defined (empty means "text").
	Type string `json:"type,omitempty"`
}

// Config of the handler. Zero values take the documented defaults.
type Config struct {
	// MaxBody is the largest body in bytes. Zero means svcapi.DefaultMaxBody.
	MaxBody int
	// Parallel is how many conversations of one batch are appended at once.
	// Zero means 16.
	Parallel int
	// Frozen reports whether an operator froze a conversation (admin API):
	// a message to it is then poison (dead-lettered, forbidden). Nil means
	// none is.
	Frozen func(conv string) (bool, string)
	// Logger; nil means discard.
	Logger *slog.Logger
}

// Handler appends ingested messages to the conversation log.
type Handler struct {
	log     *msglog.Log
	members *convapi.MemberCache
	cfg     Config
}

var _ runner.Handler = (*Handler)(nil)

// New returns the ingest handler.
func New(l *msglog.Log, members *convapi.MemberCache, cfg Config) *Handler {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = svcapi.DefaultMaxBody
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 16
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{log: l, members: members, cfg: cfg}
}

// Handle appends each message; the messages of one conversation in order,
// conversations in parallel.
func (h *Handler) Handle(ctx context.Context, msgs []jetstream.Msg) []runner.Result {
	res := make([]runner.Result, len(msgs))
	var order []string
	byConv := map[string][]int{}
	for i, m := range msgs {
		conv := subjects.ConvFromIngest(m.Subject())
		if _, ok := byConv[conv]; !ok {
			order = append(order, conv)
		}
		byConv[conv] = append(byConv[conv], i)
	}
	sem := make(chan struct{}, h.cfg.Parallel)
	var wg sync.WaitGroup
	for _, conv := range order {
		sem <- struct{}{}
		wg.Add(1)
		go func(idx []int) {
			defer func() { <-sem; wg.Done() }()
			for _, i := range idx {
				res[i] = h.one(ctx, msgs[i])
			}
		}(byConv[conv])
	}
	wg.Wait()
	return res
}

// one appends one ingested message.
func (h *Handler) one(ctx context.Context, m jetstream.Msg) runner.Result {
	conv := subjects.ConvFromIngest(m.Subject())
	var p Payload
	if err := json.Unmarshal(m.Data(), &p); err != nil {
		return poison("payload: not a JSON object: " + err.Error())
	}
	cmid := m.Headers().Get(jetstream.MsgIDHeader)
	if cmid == "" {
		return poison("Nats-Msg-Id: required (the message's cmid)")
	}
	if err := subjects.ValidID(cmid); err != nil {
		return poison("Nats-Msg-Id: must be 1..64 characters of [A-Za-z0-9_-]")
	}
	if err := svcapi.CheckSend("from", p.From, conv, cmid, p.Body, p.Type, h.cfg.MaxBody); err != nil {
		return poison(err.Code + ": " + err.Msg)
	}
	if h.cfg.Frozen != nil {
		if ok, reason := h.cfg.Frozen(conv); ok {
			return poison("forbidden: conversation " + conv + " is frozen by an operator (" + reason + ")")
		}
	}
	if _, err := h.members.Members(ctx, conv); err != nil {
		if errors.Is(err, convapi.ErrNotFound) {
			return poison("not_found: no conversation " + conv)
		}
		return runner.Result{Outcome: runner.Retry, Reason: "ingest: conversation lookup: " + err.Error()}
	}
	ack, err := h.log.Append(ctx, msglog.Send{Conv: conv, From: p.From, Cmid: cmid, Type: p.Type, Body: p.Body})
	switch {
	case errors.Is(err, msglog.ErrInvalid):
		return poison(err.Error())
	case err != nil:
		return runner.Result{Outcome: runner.Retry, Reason: "ingest: append: " + err.Error()}
	}
	if ack.Dup {
		h.cfg.Logger.Debug("ingest duplicate", "conv", conv, "from", p.From, "cmid", cmid, "id", ack.ID)
	}
	return runner.Result{Outcome: runner.Ack}
}

func poison(reason string) runner.Result {
	return runner.Result{Outcome: runner.Poison, Reason: "ingest: " + reason}
}
