package limits

import (
	"encoding/json"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/jetstream/subjects"
)

// Kind is what a shared rate counts.
type Kind int

const (
	// Msg: a send, over WebSocket or REST.
	Msg Kind = iota
	// REST: a REST request with a valid token.
	REST
)

const (
	shards = 32
	// snapshotEvery: every this many share intervals an edge reports the
	// connection counts of all its users, not only the changed ones, so
	// that a lost report is repaired; a remote count not refreshed for
	// remoteTTL snapshots is forgotten (its edge is gone, or the user
	// left it and the report of that was lost).
	snapshotEvery = 25
	remoteTTL     = 3
	// maxEntries is the most users one report message holds; more go in
	// further messages (a report stays well under NATS's 1 MiB payload).
	maxEntries = 4096
)

// Shared keeps the per-user limits of one edge and shares its users' usage
// with the other edges. It is safe for concurrent use; a nil *Shared
// limits nothing.
type Shared struct {
	cfg  Config
	nc   *nats.Conn
	edge string
	log  *slog.Logger
	seed maphash.Seed
	sh   [shards]shard
	sub  *nats.Subscription

	// reports counts the usage messages published (tests, metrics).
	reports atomic.Int64

	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

type shard struct {
	mu      sync.Mutex
	users   map[string]*entry
	changed map[string]struct{} // users whose local connection count changed
}

// entry is one user's state on this edge.
type entry struct {
	msg, rest         bucket
	msgUsed, restUsed uint32 // taken here since the last report
	conns             int32  // connections here
	remote            map[string]remote
	last              time.Time // last take or debit
}

// remote is the connection count another edge reported.
type remote struct {
	n  int32
	at time.Time
}

// report is one usage message (JSON on subjects.LimitsUsage).
type report struct {
	Edge string `json:"e"`
	// Msgs and REST are the tokens each user took since the last report.
	Msgs map[string]uint32 `json:"m,omitempty"`
	REST map[string]uint32 `json:"r,omitempty"`
	// Conns are the users' connection counts on the edge: those that
	// changed, or all (non-zero) in a snapshot.
	Conns map[string]int32 `json:"c,omitempty"`
}

// Start subscribes to the other edges' reports and starts sharing edge's
// usage every cfg.Share. The subscription is in place when Start returns.
func Start(nc *nats.Conn, edge string, cfg Config, log *slog.Logger) (*Shared, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Shared{cfg: cfg.WithDefaults(), nc: nc, edge: edge, log: log, seed: maphash.MakeSeed(), done: make(chan struct{})}
	for i := range s.sh {
		s.sh[i].users = map[string]*entry{}
		s.sh[i].changed = map[string]struct{}{}
	}
	sub, err := nc.Subscribe(subjects.LimitsUsage, s.receive)
	if err == nil {
		err = nc.FlushTimeout(5 * time.Second)
	}
	if err != nil {
		if sub != nil {
			_ = sub.Unsubscribe()
		}
		return nil, fmt.Errorf("limits: subscribe %s: %w", subjects.LimitsUsage, err)
	}
	s.sub = sub
	s.wg.Add(1)
	go s.share()
	return s, nil
}

// Stop publishes what changed since the last report and ends the sharing.
// Safe to call twice, and on nil.
func (s *Shared) Stop() {
	if s == nil {
		return
	}
	s.once.Do(func() {
		close(s.done)
		s.wg.Wait()
		_ = s.sub.Unsubscribe()
	})
}

// Config is the configuration in use (defaults applied).
func (s *Shared) Config() Config { return s.cfg }

// Reports is how many usage messages this edge has published.
func (s *Shared) Reports() int64 { return s.reports.Load() }

func (s *Shared) shard(user string) *shard {
	return &s.sh[maphash.String(s.seed, user)%shards]
}

func (s *Shared) rate(k Kind) (float64, int) {
	if k == REST {
		return s.cfg.RESTRate, s.cfg.RESTBurst
	}
	return s.cfg.UserRate, s.cfg.UserBurst
}

// getLocked returns user's entry, creating it. The shard is locked.
func (sh *shard) getLocked(user string) *entry {
	e := sh.users[user]
	if e == nil {
		e = &entry{}
		sh.users[user] = e
	}
	return e
}

// Take takes a token of user's k bucket at now. When none is left it
// returns false and how long until one is. A limit that is off (negative
// rate) always answers true.
func (s *Shared) Take(k Kind, user string, now time.Time) (bool, time.Duration) {
	if s == nil {
		return true, 0
	}
	rate, burst := s.rate(k)
	if rate < 0 {
		return true, 0
	}
	sh := s.shard(user)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.getLocked(user)
	e.last = now
	b, used := &e.msg, &e.msgUsed
	if k == REST {
		b, used = &e.rest, &e.restUsed
	}
	if !b.take(rate, burst, now) {
		return false, b.wait(rate)
	}
	*used++
	return true, 0
}

// Connect counts a new connection of user, unless that would pass
// UserConns over all edges: then it returns false and the count there is.
// A true answer must be followed by one Disconnect. With the limit off it
// answers true and counts nothing (Disconnect then does nothing either).
func (s *Shared) Connect(user string, now time.Time) (bool, int) {
	if s == nil || s.cfg.UserConns < 0 {
		return true, 0
	}
	sh := s.shard(user)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.getLocked(user)
	e.last = now
	n := int(e.conns)
	for _, r := range e.remote {
		n += int(r.n)
	}
	if n >= s.cfg.UserConns {
		return false, n
	}
	e.conns++
	sh.changed[user] = struct{}{}
	return true, n + 1
}

// Disconnect takes back one Connect of user.
func (s *Shared) Disconnect(user string) {
	if s == nil || s.cfg.UserConns < 0 {
		return
	}
	sh := s.shard(user)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.users[user]; e != nil && e.conns > 0 {
		e.conns--
		sh.changed[user] = struct{}{}
	}
}

// share publishes the usage every Share until Stop.
func (s *Shared) share() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.Share)
	defer t.Stop()
	for tick := 1; ; tick++ {
		select {
		case <-t.C:
		case <-s.done:
			// What changed since the last report (the connections a
			// stopping edge closed) goes out before it stops.
			s.publish(time.Now(), false)
			return
		}
		s.publish(time.Now(), tick%snapshotEvery == 0)
	}
}

// publish sends what was taken since the last report and the changed
// connection counts (all of them in a snapshot, which also forgets stale
// remote counts and idle users).
func (s *Shared) publish(now time.Time, snapshot bool) {
	r := report{Edge: s.edge}
	n := 0
	flush := func() {
		if n == 0 {
			return
		}
		b, err := json.Marshal(r)
		if err == nil {
			err = s.nc.Publish(subjects.LimitsUsage, b)
		}
		if err != nil {
			s.log.Warn("limits: usage report not published", "err", err)
		} else {
			s.reports.Add(1)
		}
		r, n = report{Edge: s.edge}, 0
	}
	ttl := time.Duration(remoteTTL*snapshotEvery) * s.cfg.Share
	idle := s.idle()
	for i := range s.sh {
		sh := &s.sh[i]
		sh.mu.Lock()
		for u, e := range sh.users {
			_, changed := sh.changed[u]
			if e.msgUsed > 0 {
				r.Msgs = put(r.Msgs, u, e.msgUsed)
				e.msgUsed = 0
				n++
			}
			if e.restUsed > 0 {
				r.REST = put(r.REST, u, e.restUsed)
				e.restUsed = 0
				n++
			}
			if changed || (snapshot && e.conns > 0) {
				r.Conns = put(r.Conns, u, e.conns)
				n++
			}
			if snapshot {
				for edge, rc := range e.remote {
					if now.Sub(rc.at) > ttl {
						delete(e.remote, edge)
					}
				}
				if e.conns == 0 && len(e.remote) == 0 && now.Sub(e.last) > idle {
					delete(sh.users, u)
				}
			}
			if n >= maxEntries {
				sh.mu.Unlock()
				flush()
				sh.mu.Lock()
			}
		}
		clear(sh.changed)
		sh.mu.Unlock()
	}
	flush()
}

// idle is how long a user's buckets must go unused before they are full
// again (and can be dropped): the longer refill, from debt, of the two.
func (s *Shared) idle() time.Duration {
	d := s.cfg.Share * snapshotEvery
	for _, k := range []Kind{Msg, REST} {
		if rate, burst := s.rate(k); rate > 0 {
			d = max(d, time.Duration(2*float64(burst)/rate*float64(time.Second)))
		}
	}
	return d
}

func put[V any](m map[string]V, k string, v V) map[string]V {
	if m == nil {
		m = map[string]V{}
	}
	m[k] = v
	return m
}

// receive applies another edge's report.
func (s *Shared) receive(m *nats.Msg) {
	var r report
	if err := json.Unmarshal(m.Data, &r); err != nil {
		s.log.Warn("limits: unreadable usage report", "err", err)
		return
	}
	if r.Edge == s.edge || r.Edge == "" {
		return
	}
	now := time.Now()
	for u, n := range r.Msgs {
		s.debit(Msg, u, n, now)
	}
	for u, n := range r.REST {
		s.debit(REST, u, n, now)
	}
	for u, n := range r.Conns {
		sh := s.shard(u)
		sh.mu.Lock()
		e := sh.users[u]
		if e == nil && n > 0 {
			e = sh.getLocked(u)
			e.last = now
		}
		if e != nil {
			if n > 0 {
				if e.remote == nil {
					e.remote = map[string]remote{}
				}
				e.remote[r.Edge] = remote{n: n, at: now}
			} else {
				delete(e.remote, r.Edge)
			}
		}
		sh.mu.Unlock()
	}
}

func (s *Shared) debit(k Kind, user string, n uint32, now time.Time) {
	rate, burst := s.rate(k)
	if rate < 0 {
		return
	}
	sh := s.shard(user)
	sh.mu.Lock()
	e := sh.getLocked(user)
	e.last = now
	b := &e.msg
	if k == REST {
		b = &e.rest
	}
	b.debit(rate, burst, float64(n), now)
	sh.mu.Unlock()
}
