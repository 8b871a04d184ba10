package limits

import "time"

// Defaults of Config.
const (
	DefaultUserRate    = 20
	DefaultUserBurst   = 100
	DefaultRESTRate    = 20
	DefaultRESTBurst   = 100
	DefaultUserConns   = 20
	DefaultIPConnRate  = 20
	DefaultIPConnBurst = 200
	DefaultIPConns     = 1000
	DefaultShare       = 200 * time.Millisecond
)

// Config of the limits. Every limit is on by default; a negative value
// turns it off, zero means its default.
//
// The shared limits (UserRate, RESTRate, UserConns) hold across the
// deployment within a slack: a user's usage on one edge reaches the others
// within Share plus the NATS latency, so with E edges a user can get at most
// E x burst at once (each edge's bucket full) plus rate x Share x (E-1) more
// than one bucket would allow; the buckets may go into debt (down to
// -burst), so the surplus is paid back and the rate over a longer window
// holds. A connection count reaches the other edges the same way: E users'
// devices connecting at the same instant on E edges may pass UserConns by
// up to E-1.
type Config struct {
	// UserRate is the messages (send, over WebSocket or REST) per second
	// per user over all connections and edges (token bucket refill). Zero
	// means 20.
	UserRate float64
	// UserBurst is the per-user message bucket size. Zero means 100.
	UserBurst int
	// RESTRate is the REST requests per second per user over all edges
	// (every request with a valid token counts). Zero means 20.
	RESTRate float64
	// RESTBurst is the per-user REST bucket size. Zero means 100.
	RESTBurst int
	// UserConns is the most WebSocket connections one user may hold over
	// all edges. Zero means 20.
	UserConns int
	// IPConnRate is the WebSocket connection attempts per second per client
	// IP on each edge (token bucket refill). Zero means 20.
	IPConnRate float64
	// IPConnBurst is the per-IP connection attempt bucket size. Zero means
	// 200.
	IPConnBurst int
	// IPConns is the most concurrent WebSocket connections per client IP on
	// each edge. Zero means 1000.
	IPConns int
	// TrustedProxies are the addresses (IPs or CIDRs) of the proxies in
	// front of the edge: a request from one of them is counted against the
	// client IP in its X-Forwarded-For (the rightmost address not itself a
	// trusted proxy). Empty means none: X-Forwarded-For is ignored and the
	// peer address is the client IP.
	TrustedProxies []string
	// Share is how often an edge publishes its users' usage to the other
	// edges. Zero means 200ms.
	Share time.Duration
}

// WithDefaults returns c with zero values replaced by their defaults.
func (c Config) WithDefaults() Config {
	if c.UserRate == 0 {
		c.UserRate = DefaultUserRate
	}
	if c.UserBurst == 0 {
		c.UserBurst = DefaultUserBurst
	}
	if c.RESTRate == 0 {
		c.RESTRate = DefaultRESTRate
	}
	if c.RESTBurst == 0 {
		c.RESTBurst = DefaultRESTBurst
	}
	if c.UserConns == 0 {
		c.UserConns = DefaultUserConns
	}
	if c.IPConnRate == 0 {
		c.IPConnRate = DefaultIPConnRate
	}
	if c.IPConnBurst == 0 {
		c.IPConnBurst = DefaultIPConnBurst
	}
	if c.IPConns == 0 {
		c.IPConns = DefaultIPConns
	}
	if c.Share <= 0 {
		c.Share = DefaultShare
	}
	return c
}
