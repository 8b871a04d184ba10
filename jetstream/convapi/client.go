package convapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/subjects"
)

// WaitHeader carries, in milliseconds, how long the caller of a request
// waits for its reply (what is left of its timeout when it sends). The
// service does not start a request that waited that long for a worker: its
// caller has gone (a request without it is taken as waited for
// DefaultWait).
const WaitHeader = "Natter-Wait"

// DefaultWait is how long the service takes the caller of a request
// without WaitHeader to wait: the [Client]'s default timeout.
const DefaultWait = 5 * time.Second

// Client calls the conversations service. It is safe for concurrent use.
//
// Every method returns an [*Error] for a service error; no responders and
// timeouts come back as [CodeUnavailable]. Other errors (a closed
// connection, a canceled ctx) are wrapped as they are.
type Client struct {
	ncs     []*nats.Conn
	next    atomic.Uint32
	timeout time.Duration
}

// NewClient returns a client on nc whose requests time out after timeout
// (zero means DefaultWait, 5s), or earlier if the ctx of a call says so.
// Every request carries WaitHeader.
func NewClient(nc *nats.Conn, timeout time.Duration) *Client {
	return NewPoolClient([]*nats.Conn{nc}, timeout)
}

// NewPoolClient is NewClient with its requests spread round robin over
// ncs (at least one): every request on a connection takes the
// connection's lock a few times (send, reply, bookkeeping), and an edge
// answering a reconnect storm's thousands of requests at once had them
// queue on the lock of its one connection.
func NewPoolClient(ncs []*nats.Conn, timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = DefaultWait
	}
	return &Client{ncs: slices.Clone(ncs), timeout: timeout}
}

// conn is the connection of the next request.
func (c *Client) conn() *nats.Conn {
	if len(c.ncs) == 1 {
		return c.ncs[0]
	}
	return c.ncs[c.next.Add(1)%uint32(len(c.ncs))]
}

// call sends one request to op and decodes the reply into out (if not nil).
func (c *Client) call(ctx context.Context, op string, in, out any) error {
	data, err := json.Marshal(in)
	if err != nil {
		return wrapOp(op, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req := &nats.Msg{Subject: subjects.ConvEndpoint(op), Data: data, Header: nats.Header{}}
	if dl, ok := ctx.Deadline(); ok {
		req.Header.Set(WaitHeader, strconv.FormatInt(max(time.Until(dl).Milliseconds(), 0), 10))
	}
	msg, err := c.conn().RequestMsgWithContext(ctx, req)
	if err != nil {
		return requestError(op, err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		return &Error{Code: code, Msg: msg.Header.Get(micro.ErrorHeader)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(msg.Data, out); err != nil {
		return wrapOp(op, fmt.Errorf("decode reply: %w", err))
	}
	return nil
}

// Create creates a direct or group conversation (see [CreateRequest]) and
// returns it with its members. Creating a direct conversation that exists
// returns the existing one.
func (c *Client) Create(ctx context.Context, req CreateRequest) (natter.Conversation, error) {
	var conv natter.Conversation
	err := c.call(ctx, OpCreate, req, &conv)
	return conv, err
}

// Get returns conversation conv, if user is a member, with its member count
// and, for a direct conversation or a group of at most MaxInlineMembers, its
// members.
func (c *Client) Get(ctx context.Context, user, conv string) (natter.Conversation, error) {
	var out natter.Conversation
	err := c.call(ctx, OpGet, ConvRequest{User: user, Conv: conv}, &out)
	return out, err
}

// List returns the conversations of user, sorted by id, with members as Get
// has them.
// It follows the pages of the list op.
func (c *Client) List(ctx context.Context, user string) ([]natter.Conversation, error) {
	all := []natter.Conversation{}
	err := c.ListPages(ctx, user, func(page []natter.Conversation) error {
		all = append(all, page...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return all, nil
}

// ListPage returns one page of the list op as it answers req.
func (c *Client) ListPage(ctx context.Context, req ListRequest) (ListReply, error) {
	var page ListReply
	err := c.call(ctx, OpList, req, &page)
	return page, err
}

// ListPages calls fn with each page of user's conversations (sorted by id
// across pages) as the list op answers it, before asking for the next
// page, and stops at fn's first error, returned as is. A page belongs to
// fn.
func (c *Client) ListPages(ctx context.Context, user string, fn func(page []natter.Conversation) error) error {
	req := ListRequest{User: user}
	for {
		var page ListReply
		if err := c.call(ctx, OpList, req, &page); err != nil {
			return err
		}
		if err := fn(page.Convs); err != nil {
			return err
		}
		if page.Next == "" {
			return nil
		}
		if page.Next <= req.After {
			return wrapOp(OpList, fmt.Errorf("page cursor went back from %q to %q", req.After, page.Next))
		}
		req.After = page.Next
	}
}

// AddMembers adds users to group conv on behalf of user, a member.
func (c *Client) AddMembers(ctx context.Context, user, conv string, users []string) error {
	return c.call(ctx, OpMembersAdd, ChangeMembersRequest{User: user, Conv: conv, Users: users}, nil)
}

// RemoveMembers removes users from group conv on behalf of user: themselves,
// or anyone if user created the group.
func (c *Client) RemoveMembers(ctx context.Context, user, conv string, users []string) error {
	return c.call(ctx, OpMembersRemove, ChangeMembersRequest{User: user, Conv: conv, Users: users}, nil)
}

// Rename renames group conv to name on behalf of user, a member. Renaming
// to the current name is no change.
func (c *Client) Rename(ctx context.Context, user, conv, name string) error {
	return c.call(ctx, OpRename, RenameRequest{User: user, Conv: conv, Name: name}, nil)
}

// MembersList returns the sorted members of conv if user is one of them.
func (c *Client) MembersList(ctx context.Context, user, conv string) ([]string, error) {
	return c.members(ctx, OpMembersList, MembersRequest{User: user, Conv: conv}, nil)
}

// Members returns the sorted members of conv, for internal callers (fan-out,
// member caches): no acting user, and [ErrNotFound] for an unknown
// conversation. If the members change between two pages of a large group,
// the result mixes both states; a [MemberCache] does not keep such a
// result (the change notice drops it).
func (c *Client) Members(ctx context.Context, conv string) ([]string, error) {
	return c.members(ctx, OpMembers, MembersRequest{Conv: conv}, nil)
}

// MembersMod is [Client.Members] with the group's moderation (zero for a
// direct conversation), as the first page of the members op carries it.
func (c *Client) MembersMod(ctx context.Context, conv string) ([]string, Moderation, error) {
	var mod Moderation
	m, err := c.members(ctx, OpMembers, MembersRequest{Conv: conv}, &mod)
	return m, mod, err
}

func (c *Client) members(ctx context.Context, op string, req MembersRequest, mod *Moderation) ([]string, error) {
	var all []string
	for {
		var page MembersReply
		if err := c.call(ctx, op, req, &page); err != nil {
			return nil, err
		}
		if mod != nil && req.After == "" && page.Mod != nil {
			*mod = *page.Mod
		}
		if all == nil {
			all = page.Members
		} else {
			all = append(all, page.Members...)
		}
		if page.Next == "" {
			if all == nil {
				all = []string{}
			}
			return all, nil
		}
		if page.Next <= req.After {
			return nil, wrapOp(op, fmt.Errorf("page cursor went back from %q to %q", req.After, page.Next))
		}
		req.After = page.Next
	}
}

// SetRead moves user's read cursor in conv forward to seq (never back).
func (c *Client) SetRead(ctx context.Context, user, conv string, seq uint64) error {
	return c.call(ctx, OpRead, ReadRequest{User: user, Conv: conv, Seq: seq}, nil)
}

// History returns one page of archived messages (see [HistoryRequest]).
func (c *Client) History(ctx context.Context, req HistoryRequest) (HistoryPage, error) {
	var page HistoryPage
	err := c.call(ctx, OpHistory, req, &page)
	if page.Msgs == nil {
		page.Msgs = []natter.Message{}
	}
	return page, err
}

// ServiceCreate creates a conversation on behalf of a service identity,
// which becomes its creator but not a member (see [ServiceCreateRequest]).
func (c *Client) ServiceCreate(ctx context.Context, req ServiceCreateRequest) (natter.Conversation, error) {
	var conv natter.Conversation
	err := c.call(ctx, OpServiceCreate, req, &conv)
	return conv, err
}

// ServiceAddMembers adds users to group conv on behalf of service;
// [ErrNotFound] for an unknown conversation.
func (c *Client) ServiceAddMembers(ctx context.Context, service, conv string, users []string) error {
	return c.call(ctx, OpServiceMembersAdd, ServiceMembersRequest{Service: service, Conv: conv, Users: users}, nil)
}

// ServiceRemoveMembers removes users from group conv on behalf of service.
func (c *Client) ServiceRemoveMembers(ctx context.Context, service, conv string, users []string) error {
	return c.call(ctx, OpServiceMembersRemove, ServiceMembersRequest{Service: service, Conv: conv, Users: users}, nil)
}

// Messages returns one page of archived messages of conv for internal
// callers: no acting user, [ErrNotFound] for an unknown conversation.
func (c *Client) Messages(ctx context.Context, req MessagesRequest) (HistoryPage, error) {
	var page HistoryPage
	err := c.call(ctx, OpMessages, req, &page)
	if page.Msgs == nil {
		page.Msgs = []natter.Message{}
	}
	return page, err
}

// Message returns the archived message id of conv, or [ErrNotFound].
func (c *Client) Message(ctx context.Context, conv, id string) (natter.Message, error) {
	var m natter.Message
	err := c.call(ctx, OpMessage, MessageRequest{Conv: conv, ID: id}, &m)
	return m, err
}

// ArchivedMessage is [Client.Message] as msglog.Archive wants it: found is
// false for [ErrNotFound]. It is the append's retry check against the
// archive (the service reads MongoDB's primary).
func (c *Client) ArchivedMessage(ctx context.Context, conv, id string) (natter.Message, bool, error) {
	m, err := c.Message(ctx, conv, id)
	if errors.Is(err, ErrNotFound) {
		return natter.Message{}, false, nil
	}
	if err != nil {
		return natter.Message{}, false, err
	}
	return m, true, nil
}

// Moderate makes a moderation change (see [ModerateRequest]) on behalf of
// req.User; no change (the state it asks for) is no error.
func (c *Client) Moderate(ctx context.Context, req ModerateRequest) error {
	return c.call(ctx, OpModerate, req, nil)
}

// Block makes user block users (their direct conversations with user
// refuse their sends; they no longer see user's presence) and returns the
// users user blocks after it.
func (c *Client) Block(ctx context.Context, user string, users []string) ([]string, error) {
	var r BlocksReply
	err := c.call(ctx, OpBlock, BlockRequest{User: user, Users: users}, &r)
	return r.Users, err
}

// Unblock ends user's blocks of users and returns the users user blocks
// after it.
func (c *Client) Unblock(ctx context.Context, user string, users []string) ([]string, error) {
	var r BlocksReply
	err := c.call(ctx, OpUnblock, BlockRequest{User: user, Users: users}, &r)
	return r.Users, err
}

// Blocks returns the users user blocks, sorted.
func (c *Client) Blocks(ctx context.Context, user string) ([]string, error) {
	var r BlocksReply
	err := c.call(ctx, OpBlocks, BlockRequest{User: user}, &r)
	return r.Users, err
}
