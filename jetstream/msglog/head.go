package msglog

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/jetstream/subjects"
)

// head is the newest entry of a conversation, all an append needs to stamp
// the next one. The zero value is an empty conversation.
type head struct {
	stream uint64 // stream sequence of the entry
	seq    uint64 // its conversation seq
	blk    uint64 // stream sequence of the first entry of its block
	pblk   uint64 // stream sequence of the first entry of the previous block
	prev   string // its back window (HeaderPrev), "" if it has none
}

// next returns the seq and anchors (header values) of the entry after h.
func (h head) next() (seq, blk, pblk uint64) {
	seq = h.seq + 1
	if (seq-1)%BlockSize == 0 {
		return seq, 0, h.blk // first of a new block; h.blk is 0 for an empty conversation
	}
	return seq, h.blk, h.pblk
}

// anchors parses the seq and anchors of an entry stored at stream sequence sseq.
func anchors(hdr nats.Header, sseq uint64) (head, error) {
	var h head
	var err error
	parse := func(name string) uint64 {
		v, e := strconv.ParseUint(hdr.Get(name), 10, 64)
		if e != nil && err == nil {
			err = fmt.Errorf("%w: stream seq %d: header %s %q", ErrCorrupt, sseq, name, hdr.Get(name))
		}
		return v
	}
	h.stream, h.seq, h.blk, h.pblk = sseq, parse(HeaderSeq), parse(HeaderBlk), parse(HeaderPBlk)
	h.prev = hdr.Get(HeaderPrev)
	if err != nil {
		return head{}, err
	}
	if h.seq == 0 {
		return head{}, fmt.Errorf("%w: stream seq %d: seq 0", ErrCorrupt, sseq)
	}
	if h.blk == 0 {
		h.blk = sseq
	}
	return h, nil
}

// readHead reads the newest entry of conv from the stream (one direct get).
func (l *Log) readHead(ctx context.Context, conv string) (head, error) {
	raw, err := l.stream.GetLastMsgForSubject(ctx, subjects.Msg(conv))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return head{}, nil
	}
	if err != nil {
		return head{}, err
	}
	return anchors(raw.Header, raw.Sequence)
}

const cacheShards = 64

// headCache is a sharded LRU of conversation heads.
type headCache struct {
	seed   maphash.Seed
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu  sync.Mutex
	cap int
	ll  *list.List // front = most recently used; values are *cacheEntry
	m   map[string]*list.Element
}

type cacheEntry struct {
	conv string
	h    head
}

func newHeadCache(size int) *headCache {
	c := &headCache{seed: maphash.MakeSeed()}
	per := max(1, size/cacheShards)
	for i := range c.shards {
		c.shards[i] = cacheShard{cap: per, ll: list.New(), m: make(map[string]*list.Element)}
	}
	return c
}

func (c *headCache) shard(conv string) *cacheShard {
	return &c.shards[maphash.String(c.seed, conv)%cacheShards]
}

func (c *headCache) get(conv string) (head, bool) {
	s := c.shard(conv)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[conv]
	if !ok {
		return head{}, false
	}
	s.ll.MoveToFront(e)
	return e.Value.(*cacheEntry).h, true
}

func (c *headCache) put(conv string, h head) {
	s := c.shard(conv)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[conv]; ok {
		e.Value.(*cacheEntry).h = h
		s.ll.MoveToFront(e)
		return
	}
	s.m[conv] = s.ll.PushFront(&cacheEntry{conv: conv, h: h})
	for s.ll.Len() > s.cap {
		old := s.ll.Remove(s.ll.Back()).(*cacheEntry)
		delete(s.m, old.conv)
	}
}

func (c *headCache) drop(conv string) {
	s := c.shard(conv)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[conv]; ok {
		s.ll.Remove(e)
		delete(s.m, conv)
	}
}
