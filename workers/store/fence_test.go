package store_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/workers/store"
	"github.com/natter-im/natter/workers/store/storetest"
)

// holdProxy forwards MongoDB wire messages between a store and the embedded
// FerretDB on 127.0.0.1, and can hold back the first client message that
// contains all of a set of byte strings: the client sees no answer (its
// request times out), the server gets the message only when released, and
// then runs it whatever the client did meanwhile. That is how a store write
// whose request timed out still lands in FerretDB later.
type holdProxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	match   [][]byte
	held    chan struct{} // closed once a message is held
	release chan struct{} // close to forward it
	done    chan struct{} // closed once the server answered it
}

func newHoldProxy(t *testing.T, target string) *holdProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &holdProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

// arm makes the proxy hold the next client message containing all of match.
func (p *holdProxy) arm(match ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.match = nil
	for _, m := range match {
		p.match = append(p.match, []byte(m))
	}
	p.held, p.release, p.done = make(chan struct{}), make(chan struct{}), make(chan struct{})
}

func (p *holdProxy) serve(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer s.Close()
	var answered chan struct{} // set while a held message awaits its answer
	var amu sync.Mutex
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		buf := make([]byte, 64<<10)
		for {
			n, err := s.Read(buf)
			if n > 0 {
				amu.Lock()
				if answered != nil {
					close(answered)
					answered = nil
				}
				amu.Unlock()
				_, _ = c.Write(buf[:n]) // the client may be gone
			}
			if err != nil {
				c.Close()
				return
			}
		}
	}()
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			// Keep the server side open until it answered what it got.
			if tc, ok := s.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			<-readerDone
			return
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		m := make([]byte, n)
		copy(m, hdr[:])
		if _, err := io.ReadFull(c, m[4:]); err != nil {
			return
		}
		p.mu.Lock()
		hold := p.match != nil
		for _, want := range p.match {
			hold = hold && bytes.Contains(m, want)
		}
		var release, done chan struct{}
		if hold {
			p.match = nil
			close(p.held)
			release, done = p.release, p.done
		}
		p.mu.Unlock()
		if hold {
			<-release
			amu.Lock()
			answered = done
			amu.Unlock()
		}
		if _, err := s.Write(m); err != nil {
			return
		}
	}
}

// TestStaleWriteAfterTimeout: a member change whose request timed out while
// its write of the member list was on its way to the store, followed by a
// change of another replica, loses neither change: the late write cannot
// overwrite the later change (the lock is held until every write of the
// change was answered), and the final members, count and users' lists
// agree. Deterministic: the proxy holds the write until the other replica
// tried its change. Before the fix, A gave up at its deadline and released
// its lock, B went ahead, and A's write then removed yvonne from the list.
func TestStaleWriteAfterTimeout(t *testing.T) {
	t.Parallel()
	testStaleWrite(t, store.LockLease)
}

// TestLockLeaseRenewed: the same with a lease far shorter than the held
// write: the holder renews its lock while it waits for the write's answer,
// so the other replica does not take the lock for a dead holder's (as it
// did when a lease was never renewed) and nothing is lost.
func TestLockLeaseRenewed(t *testing.T) {
	t.Parallel()
	testStaleWrite(t, 1500*time.Millisecond) // the write is held 5 s
}

func testStaleWrite(t *testing.T, lease time.Duration) {
	emb := storetest.StartEmbedded(t, t.TempDir())
	direct := storetest.Open(t, store.Config{URI: emb.URI()})
	addr := strings.TrimPrefix(emb.URI(), "mongodb://")
	addr = addr[:strings.IndexAny(addr, "/?")]
	p := newHoldProxy(t, addr)
	viaProxy := storetest.Open(t, store.Config{URI: "mongodb://" + p.ln.Addr().String() + "/"})
	store.SetLockLease(direct, lease)
	store.SetLockLease(viaProxy, lease)

	ctx := context.Background()
	g := "g_fence"
	if _, err := direct.CreateConversation(ctx, natter.Conversation{ID: g, Kind: natter.KindGroup, CreatedBy: "alice", Members: []string{"alice", "bob"}}); err != nil {
		t.Fatal(err)
	}
	// Replica A adds xavier; its rewrite of the member chunk is held.
	p.arm("memberlists", g+"#0", "\x02update\x00")
	actx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	aerr := make(chan error, 1)
	go func() {
		_, err := viaProxy.AddMembers(actx, g, []string{"xavier"}, 0, nil)
		aerr <- err
	}()
	select {
	case <-p.held:
	case err := <-aerr:
		t.Fatalf("add of A ended before its chunk write: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("chunk write of A never seen")
	}
	// Replica A's caller gives up at its deadline; meanwhile (or after A
	// answered) replica B adds yvonne: it waits for A's lock (and times
	// out: its caller retries) or goes ahead.
	var aDone bool
	var aAnswer error
	select {
	case aAnswer = <-aerr:
		aDone = true
	case <-time.After(3 * time.Second):
	}
	bctx, bcancel := context.WithTimeout(ctx, 2*time.Second)
	_, berr := direct.AddMembers(bctx, g, []string{"yvonne"}, 0, nil)
	bcancel()
	close(p.release)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the held write was never answered")
	}
	if !aDone {
		aAnswer = <-aerr
	}
	// Both callers retry as a client does, until their change goes through.
	retry := func(st *store.Store, user string) {
		testenv.CheckFor(t, 30*time.Second, 10*time.Millisecond, func() error {
			rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
			defer rcancel()
			_, err := st.AddMembers(rctx, g, []string{user}, 0, nil)
			return err
		})
	}
	if berr != nil {
		retry(direct, "yvonne")
	}
	if aAnswer != nil {
		t.Errorf("A answered %v: a change that took its lock answers its outcome, not its deadline", aAnswer)
		retry(viaProxy, "xavier")
	}
	want := []string{"alice", "bob", "xavier", "yvonne"}
	c, err := direct.GetConversation(ctx, g, true)
	if err != nil || !slices.Equal(c.Members, want) {
		t.Fatalf("members %v (%v), want %v (A answered %v, B first %v)", c.Members, err, want, aAnswer, berr)
	}
	if n, err := direct.MemberCount(ctx, g); err != nil || n != len(want) {
		t.Fatalf("member count %d (%v), want %d", n, err, len(want))
	}
	for _, u := range want {
		if ok, err := direct.IsMember(ctx, g, u); !ok || err != nil {
			t.Fatalf("%s is no member (%v)", u, err)
		}
		if convs, err := direct.UserConversations(ctx, u); err != nil || !slices.Equal(convs, []string{g}) {
			t.Fatalf("%s's list %v (%v), want [%s]", u, convs, err, g)
		}
	}
}
