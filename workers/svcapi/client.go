package svcapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/natter-im/natter/jetstream/convapi"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/subjects"
)

// Client calls the service API: a Go service's way onto the mesh. It is
// safe for concurrent use.
//
// Every method returns a [*convapi.Error] for an error reply (match codes
// with errors.Is against convapi.ErrNotFound ...); no responders and
// timeouts come back as unavailable.
type Client struct {
	nc      *nats.Conn
	timeout time.Duration
}

// NewClient returns a client on nc whose requests time out after timeout
// (zero means 5s), or earlier if the ctx of a call says so.
func NewClient(nc *nats.Conn, timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &Client{nc: nc, timeout: timeout}
}

// Call sends the raw JSON request data to op and returns the raw reply, or
// the error reply as a [*convapi.Error].
func (c *Client) Call(ctx context.Context, op string, data []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	msg, err := c.nc.RequestWithContext(ctx, subjects.APIEndpoint(op), data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, &convapi.Error{Code: convapi.CodeUnavailable, Msg: "no service API is answering " + op}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return nil, &convapi.Error{Code: convapi.CodeUnavailable, Msg: "service API timed out on " + op}
	case err != nil:
		return nil, fmt.Errorf("svcapi: %s: %w", op, err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		return nil, &convapi.Error{Code: code, Msg: msg.Header.Get(micro.ErrorHeader)}
	}
	return msg.Data, nil
}

func (c *Client) call(ctx context.Context, op string, in, out any) error {
	data, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("svcapi: %s: %w", op, err)
	}
	reply, err := c.Call(ctx, op, data)
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(reply, out); err != nil {
		return fmt.Errorf("svcapi: %s: decode reply: %w", op, err)
	}
	return nil
}

// Send appends a message as req.Service; retry with the same Cmid until it
// returns an ack (Dup set when it was stored before).
func (c *Client) Send(ctx context.Context, req SendRequest) (natter.Ack, error) {
	var ack natter.Ack
	err := c.call(ctx, OpSend, req, &ack)
	return ack, err
}

// CreateConversation creates a direct or group conversation.
func (c *Client) CreateConversation(ctx context.Context, req CreateRequest) (natter.Conversation, error) {
	var conv natter.Conversation
	err := c.call(ctx, OpConvCreate, req, &conv)
	return conv, err
}

// AddMembers adds users to group conv.
func (c *Client) AddMembers(ctx context.Context, service, conv string, users ...string) error {
	return c.call(ctx, OpMembersAdd, MembersRequest{Service: service, Conv: conv, Users: users}, nil)
}

// RemoveMembers removes users from group conv.
func (c *Client) RemoveMembers(ctx context.Context, service, conv string, users ...string) error {
	return c.call(ctx, OpMembersRemove, MembersRequest{Service: service, Conv: conv, Users: users}, nil)
}

// Members returns the sorted members of conv.
func (c *Client) Members(ctx context.Context, service, conv string) ([]string, error) {
	var r MembersReply
	err := c.call(ctx, OpMembersList, MembersRequest{Service: service, Conv: conv}, &r)
	return r.Members, err
}

// History returns one page of messages (see [HistoryRequest]).
func (c *Client) History(ctx context.Context, req HistoryRequest) (HistoryReply, error) {
	var r HistoryReply
	err := c.call(ctx, OpHistory, req, &r)
	return r, err
}

// Edit appends an edit entry replacing the body of req.Ref.
func (c *Client) Edit(ctx context.Context, req EditRequest) (natter.Ack, error) {
	var ack natter.Ack
	err := c.call(ctx, OpEdit, req, &ack)
	return ack, err
}

// Delete appends a delete entry for req.Ref.
func (c *Client) Delete(ctx context.Context, req DeleteRequest) (natter.Ack, error) {
	var ack natter.Ack
	err := c.call(ctx, OpDelete, req, &ack)
	return ack, err
}
