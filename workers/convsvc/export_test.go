package convsvc

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// ListCache exposes the service's list cache to the tests.
type ListCache = listCache

// NewListCache is newListCache for the tests; nc must be flushed after it.
func NewListCache(nc *nats.Conn, load func(context.Context, string) ([]string, error), ttl time.Duration, max, buffer int) (*ListCache, error) {
	return newListCache(nc, load, ttl, max, 5*time.Second, buffer)
}

// NewListCacheTimeout is NewListCache whose loads time out after timeout.
func NewListCacheTimeout(nc *nats.Conn, load func(context.Context, string) ([]string, error), ttl time.Duration, max, buffer int, timeout time.Duration) (*ListCache, error) {
	return newListCache(nc, load, ttl, max, timeout, buffer)
}

// StoreLoads is storeLoads.
const StoreLoads = storeLoads

// Hold has every worker of svc (a service Start returned) run fn first.
func Hold(svc micro.Service, fn func(op string)) { svc.(*running).s.hold.Store(&fn) }

// Get is get.
func (c *listCache) Get(ctx context.Context, user string) ([]string, error) { return c.get(ctx, user) }

// NoticeBodies is noticeBodies.
var NoticeBodies = noticeBodies
