package push_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/natter-im/natter/jetstream/pushreg"
	"github.com/natter-im/natter/workers/push"
	"github.com/natter-im/natter/workers/push/pushtest"
)

func ctx5(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var note = push.Notification{Conv: "g_team", Seq: 7, From: "bob", ID: "m_1", Text: "hello", Badge: 3}

func TestAPNsSend(t *testing.T) {
	t.Parallel()
	srv := pushtest.NewAPNs(t)
	p, err := push.NewAPNs(srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	tok := pushtest.Token()
	dev := pushreg.Device{User: "alice", Device: "phone", Registration: pushreg.Registration{Provider: pushreg.APNs, Token: tok}}
	for range 2 {
		if err := p.Send(ctx5(t), dev, note); err != nil {
			t.Fatalf("send: %v (stand-in: %v)", err, srv.Errors())
		}
	}
	got := srv.Received()
	if len(got) != 2 || got[0].Device != tok || got[0].Collapse != "g_team" {
		t.Fatalf("received %+v", got)
	}
	var body struct {
		APS struct {
			Alert    struct{ Body string } `json:"alert"`
			Badge    uint64                `json:"badge"`
			ThreadID string                `json:"thread-id"`
		} `json:"aps"`
		Natter struct {
			Conv string `json:"conv"`
			Seq  uint64 `json:"seq"`
		} `json:"natter"`
	}
	if err := json.Unmarshal(got[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.APS.Alert.Body != "hello" || body.APS.Badge != 3 || body.APS.ThreadID != "g_team" || body.Natter.Seq != 7 {
		t.Fatalf("payload %s", got[0].Body)
	}
	if errs := srv.Errors(); len(errs) > 0 {
		t.Fatalf("stand-in refused requests: %v", errs)
	}
}

// TestAPNsAnswers: unregistered answers, retryable ones with Retry-After,
// and a refused provider token renewed once.
func TestAPNsAnswers(t *testing.T) {
	t.Parallel()
	srv := pushtest.NewAPNs(t)
	p, err := push.NewAPNs(srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		a     pushtest.Answer
		check func(error) bool
	}{
		{"410 Unregistered", pushtest.Answer{Status: 410, Body: `{"reason":"Unregistered"}`}, func(err error) bool { return errors.Is(err, push.ErrUnregistered) }},
		{"400 BadDeviceToken", pushtest.Answer{Status: 400, Body: `{"reason":"BadDeviceToken"}`}, func(err error) bool { return errors.Is(err, push.ErrUnregistered) }},
		{"400 PayloadEmpty", pushtest.Answer{Status: 400, Body: `{"reason":"PayloadEmpty"}`}, func(err error) bool { return errors.Is(err, push.ErrRejected) }},
		{"429 Retry-After", pushtest.Answer{Status: 429, Body: `{"reason":"TooManyRequests"}`, RetryAfter: "7"}, func(err error) bool {
			var re *push.RetryError
			return errors.As(err, &re) && re.After == 7*time.Second
		}},
		{"503", pushtest.Answer{Status: 503, Body: `{"reason":"ServiceUnavailable"}`}, func(err error) bool {
			var re *push.RetryError
			return errors.As(err, &re)
		}},
		{"403 ExpiredProviderToken once", pushtest.Answer{Status: 403, Body: `{"reason":"ExpiredProviderToken"}`, Times: 1}, func(err error) bool { return err == nil }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok := pushtest.Token()
			srv.Answer(tok, tt.a)
			err := p.Send(ctx5(t), pushreg.Device{User: "u", Device: "d", Registration: pushreg.Registration{Provider: pushreg.APNs, Token: tok}}, note)
			if !tt.check(err) {
				t.Fatalf("Send: %v", err)
			}
		})
	}
}

func TestFCMSend(t *testing.T) {
	t.Parallel()
	srv := pushtest.NewFCM(t)
	p, err := push.NewFCM(srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	tok := pushtest.FCMToken()
	dev := pushreg.Device{User: "alice", Device: "android", Registration: pushreg.Registration{Provider: pushreg.FCM, Token: tok}}
	for range 3 {
		if err := p.Send(ctx5(t), dev, note); err != nil {
			t.Fatalf("send: %v (stand-in: %v)", err, srv.Errors())
		}
	}
	got := srv.Received()
	if len(got) != 3 || got[0].Device != tok || got[0].Collapse != "g_team" {
		t.Fatalf("received %+v", got)
	}
	if !strings.Contains(string(got[0].Body), `"tag":"g_team"`) || !strings.Contains(string(got[0].Body), `"badge":"3"`) {
		t.Fatalf("message %s", got[0].Body)
	}
	if n := srv.Issued(); n != 1 {
		t.Fatalf("%d access tokens exchanged for 3 sends, want 1 (cached until expiry)", n)
	}
	if errs := srv.Errors(); len(errs) > 0 {
		t.Fatalf("stand-in refused requests: %v", errs)
	}
	srv.Answer(tok, pushtest.Answer{Status: 404, Body: pushtest.Unregistered})
	if err := p.Send(ctx5(t), dev, note); !errors.Is(err, push.ErrUnregistered) {
		t.Fatalf("UNREGISTERED answered %v", err)
	}
}

// TestFCMTokenRenewed: an access token within a minute of its expiry is
// exchanged again.
func TestFCMTokenRenewed(t *testing.T) {
	t.Parallel()
	srv := pushtest.NewFCM(t)
	srv.ExpiresIn = 30
	p, err := push.NewFCM(srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	dev := pushreg.Device{User: "alice", Device: "android", Registration: pushreg.Registration{Provider: pushreg.FCM, Token: pushtest.FCMToken()}}
	for range 2 {
		if err := p.Send(ctx5(t), dev, note); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.Issued(); n != 2 {
		t.Fatalf("%d exchanges, want 2", n)
	}
}

func TestWebPushSend(t *testing.T) {
	t.Parallel()
	srv := pushtest.NewWebPush(t)
	p, err := push.NewWebPush(srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	sub := srv.Subscribe("browser1")
	dev := pushreg.Device{User: "alice", Device: "web", Registration: pushreg.Registration{Provider: pushreg.WebPush,
		Endpoint: sub.Endpoint, P256dh: sub.Keys.P256dh, Auth: sub.Keys.Auth}}
	if err := p.Send(ctx5(t), dev, note); err != nil {
		t.Fatalf("send: %v (stand-in: %v)", err, srv.Errors())
	}
	got := srv.Received()
	if len(got) != 1 || got[0].Device != "browser1" || len(got[0].Collapse) != 32 {
		t.Fatalf("received %+v", got)
	}
	var payload struct {
		Conv  string `json:"conv"`
		Seq   uint64 `json:"seq"`
		Text  string `json:"text"`
		Badge uint64 `json:"badge"`
	}
	if err := json.Unmarshal(got[0].Body, &payload); err != nil || payload.Conv != "g_team" || payload.Text != "hello" || payload.Badge != 3 {
		t.Fatalf("decrypted payload %s (%v)", got[0].Body, err)
	}
	for _, status := range []int{http.StatusGone, http.StatusNotFound} {
		srv.Answer("browser1", pushtest.Answer{Status: status, Times: 1})
		if err := p.Send(ctx5(t), dev, note); !errors.Is(err, push.ErrUnregistered) {
			t.Fatalf("%d answered %v", status, err)
		}
	}
	srv.Answer("browser1", pushtest.Answer{Status: 429, RetryAfter: "2", Times: 1})
	var re *push.RetryError
	if err := p.Send(ctx5(t), dev, note); !errors.As(err, &re) || re.After != 2*time.Second {
		t.Fatalf("429 answered %v", err)
	}
}

// TestStandInsRefuse: the stand-ins check what they are sent: a provider
// token or VAPID signature by another key is refused.
func TestStandInsRefuse(t *testing.T) {
	t.Parallel()
	apns, other := pushtest.NewAPNs(t), pushtest.NewAPNs(t)
	cfg := apns.Config()
	cfg.Key = other.Config().Key
	p, err := push.NewAPNs(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Send(ctx5(t), pushreg.Device{User: "u", Device: "d", Registration: pushreg.Registration{Provider: pushreg.APNs, Token: pushtest.Token()}}, note)
	if !errors.Is(err, push.ErrRejected) || len(apns.Errors()) == 0 {
		t.Fatalf("APNs with a foreign key: %v, stand-in errors %v", err, apns.Errors())
	}
	wp, wother := pushtest.NewWebPush(t), pushtest.NewWebPush(t)
	wcfg := wp.Config()
	wcfg.PrivateKey = wother.Config().PrivateKey
	w, err := push.NewWebPush(wcfg)
	if err != nil {
		t.Fatal(err)
	}
	sub := wp.Subscribe("b")
	err = w.Send(ctx5(t), pushreg.Device{User: "u", Device: "d", Registration: pushreg.Registration{Provider: pushreg.WebPush, Endpoint: sub.Endpoint, P256dh: sub.Keys.P256dh, Auth: sub.Keys.Auth}}, note)
	if !errors.Is(err, push.ErrRejected) || len(wp.Errors()) == 0 {
		t.Fatalf("Web Push with a foreign VAPID key: %v, stand-in errors %v", err, wp.Errors())
	}
}
