package edge

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/jetstream/kvbatch"
	"github.com/natter-im/natter/jetstream/presencekv"
	"github.com/natter-im/natter/jetstream/subjects"
)

// TestAnnounceStorm: the users whose first device came in one burst (a
// reconnect storm) all have their lease in the bucket after one
// announcement, however many: the announcer keeps its unacknowledged
// writes under the client's bound of outstanding asynchronous publishes
// (4,000), past which a write failed after a stall and the user's lease
// waited for the next renewal (lease/3 later) while its event said online.
func TestAnnounceStorm(t *testing.T) {
	t.Parallel()
	const users = 12_000
	e, _ := testHubEdgeConfig(t, Config{PingInterval: time.Hour, EdgeID: "estorm", PresenceLease: time.Minute})
	nc := e.hub.nc
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: subjects.BucketPresence, LimitMarkerTTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	names := make([]string, users)
	for i := range names {
		u := "storm" + strconv.Itoa(i)
		names[i] = u
		sh := e.hub.shard(u)
		sh.mu.Lock()
		sh.users[u] = &userEntry{sessions: []*session{{user: u, device: "d1"}}}
		sh.mu.Unlock()
	}
	// The presence goroutines are not started: the test announces itself,
	// as the announcer goroutine does when woken.
	p := e.newPresence(nc, js)
	for _, u := range names {
		p.changed(u)
	}
	p.announceNow()
	online, err := presencekv.Read(ctx, nc, kvbatch.BucketDirectGet(js.Options(), subjects.BucketPresence), names)
	if err != nil {
		t.Fatal(err)
	}
	missing := 0
	for _, u := range names {
		if !online[u].Has("d1") {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d users announced at once have no lease in the bucket", missing, users)
	}
}
