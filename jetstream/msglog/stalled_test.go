package msglog

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestStalledTemporarilyUnavailable: a JetStream API error with status 503
// (no leader during an election, as the retry check's stream and consumer
// info requests get while the MSGS leader is frozen) is retried like a
// stall, not returned to the client (it reached clients as "internal").
func TestStalledTemporarilyUnavailable(t *testing.T) {
	t.Parallel()
	unavailable := &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("retry check: persist ack floor: %w", unavailable), true},
		{fmt.Errorf("publish: %w", jetstream.ErrNoStreamResponse), true},
		{fmt.Errorf("publish: %w", &jetstream.APIError{Code: 400, ErrorCode: 10071, Description: "wrong last sequence"}), false},
		{errors.New("something else"), false},
	} {
		if got := stalled(tc.err); got != tc.want {
			t.Errorf("stalled(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
