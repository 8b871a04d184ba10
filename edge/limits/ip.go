package limits

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// IPs keeps the per-IP connection limits of one edge: a token bucket of
// connection attempts and a count of open connections per client IP. Its
// memory is bounded by the IPs seen within the buckets' refill time plus
// those with open connections. It is safe for concurrent use; a nil *IPs
// limits nothing.
type IPs struct {
	rate  float64
	burst int
	max   int
	idle  time.Duration

	mu        sync.Mutex
	ips       map[netip.Addr]*ipEntry
	lastSweep time.Time
}

type ipEntry struct {
	b     bucket
	conns int
}

// NewIPs returns the per-IP limits of cfg (defaults applied).
func NewIPs(cfg Config) *IPs {
	cfg = cfg.WithDefaults()
	l := &IPs{rate: cfg.IPConnRate, burst: cfg.IPConnBurst, max: cfg.IPConns, ips: map[netip.Addr]*ipEntry{}, idle: time.Minute}
	if l.rate > 0 {
		l.idle = max(l.idle, time.Duration(float64(l.burst)/l.rate*float64(time.Second)))
	}
	return l
}

// Attempt takes a connection attempt of ip at now; when the bucket is
// empty it returns false and the seconds until it is not (Retry-After).
func (l *IPs) Attempt(ip netip.Addr, now time.Time) (bool, int) {
	if l == nil || l.rate < 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(now)
	e := l.getLocked(ip)
	if e.b.take(l.rate, l.burst, now) {
		return true, 0
	}
	return false, retryAfter(e.b.wait(l.rate))
}

// Open counts an open connection of ip unless ip has IPConns already
// (then false). A true answer must be followed by one Close.
func (l *IPs) Open(ip netip.Addr) bool {
	if l == nil || l.max < 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.getLocked(ip)
	if e.conns >= l.max {
		return false
	}
	e.conns++
	return true
}

// Close takes back one Open of ip.
func (l *IPs) Close(ip netip.Addr) {
	if l == nil || l.max < 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.ips[ip]; e != nil && e.conns > 0 {
		e.conns--
	}
}

// Max is the per-IP connection bound (negative: off).
func (l *IPs) Max() int { return l.max }

// Len is how many IPs are kept.
func (l *IPs) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ips)
}

func (l *IPs) getLocked(ip netip.Addr) *ipEntry {
	e := l.ips[ip]
	if e == nil {
		e = &ipEntry{}
		l.ips[ip] = e
	}
	return e
}

// sweepLocked drops, at most once per idle, the IPs without open
// connections whose bucket is full again. l.mu is held.
func (l *IPs) sweepLocked(now time.Time) {
	if now.Sub(l.lastSweep) < l.idle {
		return
	}
	l.lastSweep = now
	for ip, e := range l.ips {
		if e.conns == 0 && now.Sub(e.b.last) >= l.idle {
			delete(l.ips, ip)
		}
	}
}

// Proxies is the set of trusted proxies (Config.TrustedProxies).
type Proxies []netip.Prefix

// ParseProxies parses a list of IPs and CIDRs.
func ParseProxies(list []string) (Proxies, error) {
	var out Proxies
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("limits: trusted proxy %q is not an IP or a CIDR", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func (p Proxies) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, pr := range p {
		if pr.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP is the client address of a request from peer carrying the
// X-Forwarded-For header xff: peer itself unless it is a trusted proxy;
// then the rightmost address of xff that is not a trusted proxy (an
// address a client put further left could be forged). An unreadable entry
// stops the walk at the last trusted address.
func (p Proxies) ClientIP(peer netip.Addr, xff string) netip.Addr {
	peer = peer.Unmap()
	if len(p) == 0 || !p.trusted(peer) || xff == "" {
		return peer
	}
	ip := peer
	for xff != "" {
		i := strings.LastIndexByte(xff, ',')
		part := strings.TrimSpace(xff[i+1:])
		if i < 0 {
			xff = ""
		} else {
			xff = xff[:i]
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			// Some proxies append the client's port.
			ap, perr := netip.ParseAddrPort(part)
			if perr != nil {
				return ip
			}
			a = ap.Addr()
		}
		ip = a.Unmap()
		if !p.trusted(ip) {
			return ip
		}
	}
	return ip
}
