package edge

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/natter-im/natter/edge/limits"
	"github.com/natter-im/natter/edge/protocol"
)

// Deployment-wide limits (edge/limits): the per-user message rate is taken
// in send (WebSocket and REST alike), the REST rate in restAuth, the
// connections per user when a session is set up, and the per-IP limits
// before a socket is upgraded. None of them costs a NATS round trip.

// rateLimited is a request refused by a rate limit: rate_limited, and
// after wait a token is there again (REST: Retry-After).
type rateLimited struct {
	msg  string
	wait time.Duration
}

func (r *rateLimited) Error() string { return r.msg }

// takeMessage takes a token of user's deployment-wide message bucket.
func (e *Edge) takeMessage(user string) error {
	ok, wait := e.limits.Take(limits.Msg, user, time.Now())
	if ok {
		return nil
	}
	l := e.limits.Config()
	return &rateLimited{wait: wait, msg: "rate limit exceeded: at most " + strconv.FormatFloat(l.UserRate, 'f', -1, 64) +
		" messages per second per user over all connections (burst " + strconv.Itoa(l.UserBurst) + "); nothing was stored: retry after " +
		strconv.FormatInt(max(1, wait.Milliseconds()), 10) + " ms"}
}

// tooManyConns is the message of a connection refused by UserConns.
func (e *Edge) tooManyConns(user string, n int) string {
	return "too many connections: user " + user + " has " + strconv.Itoa(n) + " open (at most " +
		strconv.Itoa(e.limits.Config().UserConns) + " over all edges): close one first"
}

// clientIP is the client address of c: the peer, or with a trusted proxy
// the address it forwarded (limits.Proxies.ClientIP).
func (e *Edge) clientIP(c *fiber.Ctx) netip.Addr {
	peer, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	if len(e.proxies) == 0 {
		return peer.Unmap()
	}
	return e.proxies.ClientIP(peer, c.Get(fiber.HeaderXForwardedFor))
}

// tooMany answers a refused connection: 429 with code (rate_limited with
// Retry-After for the connection rate, too_many for a count).
func tooMany(c *fiber.Ctx, code protocol.Code, retryAfter int, msg string) error {
	if retryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(retryAfter))
	}
	return restError(c, fiber.StatusTooManyRequests, code, msg)
}
