package convsvc_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/convsvc"
)

// TestDroppedWhenCallerGone: with every worker busy, a request waits at
// most as long as its caller (convapi.WaitHeader) and is then dropped
// unanswered without being worked on (its user's list is never loaded);
// past maxWaiting waiting, a request is answered unavailable at
// once.
func TestDroppedWhenCallerGone(t *testing.T) {
	t.Parallel()
	const maxWaiting = 64
	e := newEnv(t, envConfig{svc: convsvc.Config{Concurrency: 1, MaxWaiting: maxWaiting}})
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	convsvc.Hold(e.svc, func(string) { once.Do(func() { close(entered); <-release }) }) // the first request holds the only worker
	u := names("holder", "late")
	short := convapi.NewClient(e.nc, 200*time.Millisecond)
	before := listStats(t, e.svc)
	// The holder takes the worker; the late request waits behind it and
	// its caller gives up.
	holder := make(chan error, 1)
	go func() { _, err := e.cl.List(ctxT(t), u[0]); holder <- err }()
	<-entered
	_, err := short.List(ctxT(t), u[1])
	wantCode(t, err, convapi.CodeUnavailable)

	// Past the bound of waiting requests: answered at once.
	inbox := nats.NewInbox()
	replies, err := e.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(convapi.ListRequest{User: u[0]})
	for range maxWaiting + 1 {
		m := &nats.Msg{Subject: subjects.ConvEndpoint(convapi.OpList), Reply: inbox, Data: body, Header: nats.Header{convapi.WaitHeader: []string{"2000"}}}
		if err := e.nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	m, err := replies.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no busy reply: %v", err)
	}
	if code, msg := m.Header.Get(micro.ErrorCodeHeader), m.Header.Get(micro.ErrorHeader); code != convapi.CodeUnavailable || !strings.Contains(msg, "busy") {
		t.Fatalf("reply %q %q, want unavailable: busy", code, msg)
	}

	// Every waiting request's caller has gone (200 ms and 2 s): all are
	// dropped while the worker is still held. The late request may still
	// have held a place when the burst came (it is dropped when its turn
	// comes), so a second one may have been answered busy: every request,
	// the late one and the burst, is either dropped or answered busy.
	busy := 1
	testenv.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		for {
			m, err := replies.NextMsg(time.Millisecond)
			if err != nil {
				break
			}
			if code := m.Header.Get(micro.ErrorCodeHeader); code != convapi.CodeUnavailable {
				t.Fatalf("reply %q, want unavailable: busy", code)
			}
			busy++
		}
		s := listStats(t, e.svc)
		if dropped := int(s.DroppedRequests - before.DroppedRequests); dropped+busy != maxWaiting+2 || busy > 2 {
			return fmt.Errorf("stats %+v, %d busy, want %d dropped or busy (at most 2 busy)", s, busy, maxWaiting+2)
		}
		return nil
	})
	close(release)
	if err := <-holder; err != nil {
		t.Fatalf("the holder's list: %v", err)
	}
	// None was worked on: the late user's list was never loaded.
	if s := listStats(t, e.svc); s.Loads-before.Loads != 1 {
		t.Fatalf("stats %+v (before %+v): want the holder's load only", s, before)
	}
}
