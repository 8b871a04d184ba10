package protocol_test

import (
	"encoding/json"
	"testing"

	"github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
)

// TestHistoryPageFrame checks that a page of stored entries makes the same
// frame, byte for byte, as the HistoryResult of the decoded messages, and
// the same REST body.
func TestHistoryPageFrame(t *testing.T) {
	t.Parallel()
	second := testMsg
	second.Seq, second.Type, second.Ref, second.Body = 43, natter.TypeEdit, testMsg.ID, "& é 😀"
	for _, tc := range []struct {
		name string
		msgs []natter.Message
		more bool
	}{
		{"empty", nil, false},
		{"one", []natter.Message{testMsg}, true},
		{"two", []natter.Message{testMsg, second}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			page := protocol.HistoryPage{More: tc.more}
			for _, m := range tc.msgs {
				b, err := json.Marshal(m) // what the log stores
				if err != nil {
					t.Fatal(err)
				}
				page.Msgs = append(page.Msgs, b)
			}
			want := protocol.Result("r-9", protocol.HistoryResult{Msgs: tc.msgs, More: tc.more})
			if got := protocol.Result("r-9", page); string(got) != string(want) {
				t.Fatalf("frame\n%s\nwant\n%s", got, want)
			}
			rest, err := json.Marshal(page)
			if err != nil {
				t.Fatal(err)
			}
			wantRest, _ := json.Marshal(protocol.HistoryResult{Msgs: tc.msgs, More: tc.more})
			if string(rest) != string(wantRest) {
				t.Fatalf("REST body %s, want %s", rest, wantRest)
			}
		})
	}
}
