package client_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/edge/auth"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/node"
)

// startNatter runs a whole natter in this process (what `natter dev` runs:
// embedded NATS and store, every worker, one edge) for the examples. It
// returns the edge's WebSocket URL, a token minter and a stop function.
func startNatter() (url string, token func(user string) string, stop func()) {
	dir, err := os.MkdirTemp("", "natter-example")
	if err != nil {
		log.Fatal(err)
	}
	key := auth.Key{ID: "dev", Alg: auth.AlgHS256, Secret: []byte("example-secret-example-secret-012345")}
	n, err := node.Start(context.Background(), node.Config{
		Mode: node.ModeDev, DataDir: dir, NATSPort: -1, HTTPAddr: "127.0.0.1:0",
		Edge: node.EdgeConfig{Auth: auth.Config{Keys: []auth.Key{key}}, LameDuck: 100 * time.Millisecond},
	})
	if err != nil {
		log.Fatal(err)
	}
	token = func(user string) string {
		tok, err := auth.Mint(key, nil, auth.MintClaims{User: user, TTL: time.Hour})
		if err != nil {
			log.Fatal(err)
		}
		return tok
	}
	stop = func() {
		_ = n.Shutdown(context.Background())
		_ = os.RemoveAll(dir)
	}
	return "ws://" + n.Addr() + protocol.Path, token, stop
}

func ExampleDial() {
	url, token, stop := startNatter()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := client.Dial(ctx, client.Config{
		URLs:   []string{url}, // several edges: reconnects rotate through them
		Token:  token("alice"),
		Device: "laptop",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	fmt.Println(c.User(), c.Device())

	// A rejected token is an error with a stable code.
	_, err = client.Dial(ctx, client.Config{URLs: []string{url}, Token: "expired"})
	fmt.Println(protocol.CodeOf(err))
	// Output:
	// alice laptop
	// unauthorized
}

func ExampleClient_Send() {
	url, token, stop := startNatter()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alice, err := client.Dial(ctx, client.Config{URLs: []string{url}, Token: token("alice")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer alice.Close()

	conv, err := alice.CreateDirect(ctx, "bob")
	if err != nil {
		fmt.Println(err)
		return
	}
	// Persist the cmid with the outgoing message: sending it again, even
	// after a restart, stores it once.
	cmid := client.NewCmid()
	for range 2 {
		ack, err := alice.Send(ctx, conv.ID, "hi bob", client.WithCmid(cmid))
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("seq %d dup %v\n", ack.Seq, ack.Dup)
	}
	_, err = alice.Send(ctx, conv.ID, "")
	fmt.Println(err)
	// Output:
	// seq 1 dup false
	// seq 1 dup true
	// client: send: bad_frame: body: required (or attachments)
}

func ExampleClient_SendAll() {
	url, token, stop := startNatter()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alice, err := client.Dial(ctx, client.Config{URLs: []string{url}, Token: token("alice")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer alice.Close()
	conv, err := alice.CreateDirect(ctx, "bob")
	if err != nil {
		fmt.Println(err)
		return
	}
	// Three sends in flight at once: one write, stored in this order.
	acks, err := alice.SendAll(ctx, []client.Outgoing{
		{Conv: conv.ID, Body: "one"},
		{Conv: conv.ID, Body: "two"},
		{Conv: conv.ID, Body: "three", Opts: []client.SendOption{client.WithType("note")}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, a := range acks {
		fmt.Println("seq", a.Seq)
	}
	// Output:
	// seq 1
	// seq 2
	// seq 3
}

func ExampleClient_Messages() {
	url, token, stop := startNatter()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alice, err := client.Dial(ctx, client.Config{URLs: []string{url}, Token: token("alice")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer alice.Close()
	bob, err := client.Dial(ctx, client.Config{URLs: []string{url}, Token: token("bob")})
	if err != nil {
		fmt.Println(err)
		return
	}

	conv, _ := alice.CreateDirect(ctx, "bob")
	for _, body := range []string{"hi bob", "lunch?", "12:30"} {
		if _, err := alice.Send(ctx, conv.ID, body); err != nil {
			fmt.Println(err)
			return
		}
	}
	// Every message exactly once, in seq order per conversation.
	for range 3 {
		select {
		case m := <-bob.Messages():
			fmt.Printf("%d %s: %s\n", m.Seq, m.From, m.Body)
		case <-ctx.Done():
			fmt.Println(ctx.Err())
			return
		}
	}
	// Persist the cursors; the next Dial resumes after them.
	cursors := bob.Cursors()
	bob.Close()
	fmt.Println("cursor", cursors[conv.ID])

	if _, err := alice.Send(ctx, conv.ID, "?"); err != nil {
		fmt.Println(err)
		return
	}
	bob, err = client.Dial(ctx, client.Config{URLs: []string{url}, Token: token("bob"), Cursors: cursors, FromStart: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bob.Close()
	select {
	case m := <-bob.Messages():
		fmt.Printf("%d %s: %s\n", m.Seq, m.From, m.Body)
	case <-ctx.Done():
		fmt.Println(ctx.Err())
	}
	// Output:
	// 1 alice: hi bob
	// 2 alice: lunch?
	// 3 alice: 12:30
	// cursor 3
	// 4 alice: ?
}

func ExampleClient_SubscribePresence() {
	url, token, stop := startNatter()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alice, err := client.Dial(ctx, client.Config{URLs: []string{url}, Token: token("alice")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer alice.Close()
	bob, err := client.Dial(ctx, client.Config{URLs: []string{url}, Token: token("bob")})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Presence is visible to users who share a conversation.
	conv, _ := alice.CreateDirect(ctx, "bob")
	states, err := alice.SubscribePresence(ctx, "bob")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(states[0].User, "online:", states[0].Online)

	// Typing signals go to the other members, never stored.
	if err := bob.SetTyping(ctx, conv.ID, true); err != nil {
		fmt.Println(err)
		return
	}
	select {
	case f := <-alice.TypingEvents():
		fmt.Println(f.User, f.State)
	case <-ctx.Done():
		fmt.Println(ctx.Err())
		return
	}

	// Changes come on PresenceEvents (and the current state again after a
	// reconnect: the client subscribes its watched users anew).
	bob.Close()
	select {
	case st := <-alice.PresenceEvents():
		fmt.Println(st.User, "online:", st.Online, "last seen known:", st.LastSeen > 0)
	case <-ctx.Done():
		fmt.Println(ctx.Err())
	}
	// Output:
	// bob online: true
	// bob started
	// bob online: false last seen known: true
}

func ExampleClient_ConvEvents() {
	url, token, stop := startNatter()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alice, err := client.Dial(ctx, client.Config{URLs: []string{url}, Token: token("alice")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer alice.Close()
	bob, err := client.Dial(ctx, client.Config{URLs: []string{url}, Token: token("bob")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bob.Close()
	next := func() {
		select {
		case f := <-bob.ConvEvents():
			fmt.Println(f.Event, "rev", f.Rev, "by", f.By, f.Name, f.Users, f.MemberCount)
		case <-ctx.Done():
			fmt.Println(ctx.Err())
		}
	}
	// Every member's devices hear of a group's creation, its member
	// changes and its renames, each with the group's rev.
	g, err := alice.CreateGroup(ctx, "Team", "bob")
	if err != nil {
		fmt.Println(err)
		return
	}
	next()
	if err := alice.AddMembers(ctx, g.ID, "carol"); err != nil {
		fmt.Println(err)
		return
	}
	next()
	if err := alice.Rename(ctx, g.ID, "Team B"); err != nil {
		fmt.Println(err)
		return
	}
	next()
	// The same state is there after a reconnect, with the same rev.
	conv, _ := bob.Conversation(ctx, g.ID)
	fmt.Println(conv.Name, conv.MemberCount, "rev", conv.Rev)
	// Output:
	// added rev 0 by alice  [] 0
	// members_added rev 1 by alice  [carol] 3
	// renamed rev 2 by alice Team B [] 0
	// Team B 3 rev 2
}
