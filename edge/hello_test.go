package edge

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natter-im/natter/edge/auth"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/delivery"
	"github.com/natter-im/natter/jetstream/subjects"
)

// TestHelloComesFirst: a session's first frame is its hello even when
// deliveries for its user arrive while it registers (the subscription and
// its flush). Deliveries flood each user's subject from before the session
// is set up.
func TestHelloComesFirst(t *testing.T) {
	t.Parallel()
	// A queue the flood cannot fill: no slow-consumer close in this test.
	e, srv := testHubEdgeConfig(t, Config{PingInterval: time.Hour, SendQueue: 1 << 20})
	pub := testenv.Connect(t, srv.ClientURL())
	const users = 100
	for i := range users {
		user := "hello" + strconv.Itoa(i)
		s, client := dialSession(t, e, user)
		p := delivery.Pack([][]byte{[]byte(`{"id":"m1","seq":1}`)}, 1<<20)[0]
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // bounded: until stop, at most 1,000,000 publishes
			defer wg.Done()
			for n := 0; n < 1_000_000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if pub.PublishMsg(p.Msg(subjects.Deliver(user))) != nil {
					return
				}
			}
		}()
		ok := s.setup(&auth.Claims{User: user, ExpiresAt: time.Now().Add(time.Hour)}, "d1")
		close(stop)
		wg.Wait()
		_ = client.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, first, rerr := client.ReadMessage()
		if !ok || rerr != nil {
			t.Fatalf("user %d: setup %v, first frame: %v", i, ok, rerr)
		}
		if !strings.HasPrefix(string(first), `{"t":"hello"`) {
			t.Fatalf("user %d: first frame %.80s, want the hello", i, first)
		}
		s.end()
	}
}
