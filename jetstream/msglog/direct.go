package msglog

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
)

// directReq is the JSON of a direct get request (server JSApiMsgGetRequest).
type directReq struct {
	Seq       uint64   `json:"seq,omitempty"`
	NextFor   string   `json:"next_by_subj,omitempty"`
	Batch     int      `json:"batch,omitempty"`
	MultiLast []string `json:"multi_last,omitempty"`
	NoHeaders bool     `json:"no_hdr,omitempty"`
	MaxBytes  int      `json:"max_bytes,omitempty"`
}

// eob is what the end-of-batch status reports.
type eob struct {
	pending uint64 // entries matching the request after the last one sent (no_hdr: an upper bound)
	last    uint64 // stream sequence of the last entry sent
}

// directBatch sends a batched direct get to MSGS and hands each returned
// entry to fn, in order, until the end-of-batch status (204 EOB, returned),
// "no messages" (404) or fn returning false or an error.
func (l *Log) directBatch(ctx context.Context, req directReq, fn func(*nats.Msg) (bool, error)) (eob, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.timeout)
		defer cancel()
	}
	body, err := json.Marshal(req)
	if err != nil {
		return eob{}, err
	}
	reply, r := l.mux.Open()
	defer l.mux.Done(reply)
	if err := l.nc.PublishRequest(l.directGet, reply, body); err != nil {
		return eob{}, fmt.Errorf("direct get: %w", err)
	}
	var buf []*nats.Msg
	for {
		if buf, err = r.Take(ctx, buf); err != nil {
			return eob{}, fmt.Errorf("direct get: %w", err)
		}
		for _, m := range buf {
			if st := m.Header.Get("Status"); len(m.Data) == 0 && st != "" {
				switch st {
				case "204":
					var e eob
					e.pending, _ = strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
					e.last, _ = strconv.ParseUint(m.Header.Get("Nats-Last-Sequence"), 10, 64)
					return e, nil
				case "404": // no (more) messages
					return eob{}, nil
				case "503":
					return eob{}, fmt.Errorf("direct get: %w", nats.ErrNoResponders)
				default:
					return eob{}, fmt.Errorf("direct get: status %s %s", st, m.Header.Get("Description"))
				}
			}
			if more, err := fn(m); err != nil || !more {
				return eob{}, err
			}
		}
	}
}
