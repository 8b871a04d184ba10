package convsvc

import (
	"context"

	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/subjects"
)

// raiseRead raises user's read cursor in conv to seq in the CURSORS bucket
// (never back), after the store has it: the bucket is what the edge's sync
// and conv.list pages read, one batched read per page, together with the
// heads and the device's delivered cursors. A failure is unavailable: the
// caller's retry writes both again (both writes only move forward).
func (s *service) raiseRead(ctx context.Context, user, conv string, seq uint64) error {
	if s.cfg.Cursors == nil {
		return nil
	}
	if _, err := s.cfg.Cursors.Raise(ctx, subjects.ReadKey(user, conv), seq); err != nil {
		s.log.Warn("read cursor not raised in the cursors bucket: the caller retries", "conv", conv, "err", err)
		return convapi.Unavailable("cursors bucket unavailable, retry", err)
	}
	return nil
}
