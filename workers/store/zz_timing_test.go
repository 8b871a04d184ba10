package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	natter "github.com/natter-im/natter"
)

func TestZZTiming(t *testing.T) {
	s := openEmbedded(t)
	ctx := context.Background()
	time.Sleep(3 * time.Second)
	for round := range 3 {
		start := time.Now()
		for i := range 100 {
			u := fmt.Sprintf("p%d_%d", round, i)
			c := natter.Conversation{ID: natter.DirectID("me", u), Kind: natter.KindDirect, CreatedBy: "me", Members: []string{"me", u}}
			if _, err := s.CreateConversation(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("100 creates: %v", time.Since(start))
		start = time.Now()
		for i := range 100 {
			if _, err := s.IsMember(ctx, natter.DirectID("me", fmt.Sprintf("p%d_%d", round, i)), "me"); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("100 point reads: %v", time.Since(start))
		start = time.Now()
		unlock, err := s.DB().Collection("locks").InsertOne(ctx, map[string]any{"_id": fmt.Sprint("x", round), "at": 1})
		_ = unlock
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("1 insert: %v", time.Since(start))
	}
}
