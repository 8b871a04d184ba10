package push_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/natter-im/natter/jetstream/pushreg"
	"github.com/natter-im/natter/workers/push"
	"github.com/natter-im/natter/workers/push/pushtest"
)

// BenchmarkSend measures notification sends per second through each
// provider against its local stand-in (which checks every request: the
// ES256 provider token, the OAuth bearer, the VAPID signature and the
// decryption of the Web Push payload), b.RunParallel with 32 senders per
// core as the role sends 32 at once. raw-h2 is the same-run baseline: a
// POST of a payload of the same size over the same kind of server (TLS,
// HTTP/2) that checks nothing.
//
//	go test -run '^$' -bench BenchmarkSend -benchtime 3s -count 3 ./workers/push/
func BenchmarkSend(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B, send func() error) {
		b.SetParallelism(32)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := send(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sends/s")
	}
	b.Run("raw-h2", func(b *testing.B) {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = r.Body.Read(make([]byte, 512))
			w.WriteHeader(http.StatusOK)
		}))
		srv.EnableHTTP2 = true
		srv.StartTLS()
		defer srv.Close()
		client, body := srv.Client(), bytes.Repeat([]byte("x"), 200)
		run(b, func() error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/3/device/x", bytes.NewReader(body))
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			return err
		})
	})
	b.Run("apns", func(b *testing.B) {
		srv := pushtest.NewAPNs(b)
		p, err := push.NewAPNs(srv.Config())
		if err != nil {
			b.Fatal(err)
		}
		dev := pushreg.Device{User: "u", Device: "d", Registration: pushreg.Registration{Provider: pushreg.APNs, Token: pushtest.Token()}}
		run(b, func() error { return p.Send(ctx, dev, note) })
	})
	b.Run("fcm", func(b *testing.B) {
		srv := pushtest.NewFCM(b)
		p, err := push.NewFCM(srv.Config())
		if err != nil {
			b.Fatal(err)
		}
		dev := pushreg.Device{User: "u", Device: "d", Registration: pushreg.Registration{Provider: pushreg.FCM, Token: pushtest.FCMToken()}}
		run(b, func() error { return p.Send(ctx, dev, note) })
	})
	b.Run("webpush", func(b *testing.B) {
		srv := pushtest.NewWebPush(b)
		p, err := push.NewWebPush(srv.Config())
		if err != nil {
			b.Fatal(err)
		}
		sub := srv.Subscribe("b")
		dev := pushreg.Device{User: "u", Device: "d", Registration: pushreg.Registration{Provider: pushreg.WebPush, Endpoint: sub.Endpoint, P256dh: sub.Keys.P256dh, Auth: sub.Keys.Auth}}
		run(b, func() error { return p.Send(ctx, dev, note) })
	})
}
