package main

import (
	"time"

	"github.com/natter-im/natter/edge"
	"github.com/natter-im/natter/edge/limits"
	"github.com/natter-im/natter/internal/cli"
	"github.com/natter-im/natter/internal/node"
)

// limitsFlags configure the edge's deployment-wide and per-IP limits
// (edge/limits); 0 turns a limit off.
type limitsFlags struct {
	userRate, ipConnRate float64
	userBurst, userConns int
	ipConnBurst, ipConns int
	trustedProxies       string
	share                time.Duration
}

func (l *limitsFlags) register(fs *cli.FlagSet) {
	fs.Float(&l.userRate, "user-rate", "NATTER_USER_RATE", limits.DefaultUserRate, "messages per second per user over all connections and edges (token bucket refill; 0 = off)", cli.Min[float64](0))
	fs.Int(&l.userBurst, "user-burst", "NATTER_USER_BURST", limits.DefaultUserBurst, "per-user message bucket size", cli.Min(1))
	fs.Int(&l.userConns, "user-conns", "NATTER_USER_CONNS", limits.DefaultUserConns, "WebSocket connections per user over all edges (0 = off)", cli.Min(0))
	fs.Float(&l.ipConnRate, "ip-conn-rate", "NATTER_IP_CONN_RATE", limits.DefaultIPConnRate, "WebSocket connection attempts per second per client IP on each edge (0 = off)", cli.Min[float64](0))
	fs.Int(&l.ipConnBurst, "ip-conn-burst", "NATTER_IP_CONN_BURST", limits.DefaultIPConnBurst, "per-IP connection attempt bucket size", cli.Min(1))
	fs.Int(&l.ipConns, "ip-conns", "NATTER_IP_CONNS", limits.DefaultIPConns, "concurrent WebSocket connections per client IP on each edge (0 = off)", cli.Min(0))
	fs.String(&l.trustedProxies, "trusted-proxies", "NATTER_TRUSTED_PROXIES", "", "IPs or CIDRs of proxies whose X-Forwarded-For names the client IP, comma-separated (empty = none: the peer is the client)")
	fs.Duration(&l.share, "limits-share", "NATTER_LIMITS_SHARE", limits.DefaultShare, "how often an edge shares its users' usage with the other edges", cli.Between(10*time.Millisecond, 10*time.Second))
}

func (l *limitsFlags) apply(cfg *edge.Config) error {
	off := func(v float64) float64 {
		if v == 0 {
			return -1
		}
		return v
	}
	cfg.Limits = limits.Config{
		UserRate: off(l.userRate), UserBurst: l.userBurst, UserConns: int(off(float64(l.userConns))),
		IPConnRate: off(l.ipConnRate), IPConnBurst: l.ipConnBurst, IPConns: int(off(float64(l.ipConns))),
		TrustedProxies: cli.SplitList(l.trustedProxies), Share: l.share,
	}
	if _, err := limits.ParseProxies(cfg.Limits.TrustedProxies); err != nil {
		return &node.SettingError{Setting: "--trusted-proxies (NATTER_TRUSTED_PROXIES)", Err: err}
	}
	return nil
}
