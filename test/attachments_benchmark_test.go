package test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge"
	"github.com/natter-im/natter/jetstream/attachments"
)

// BenchmarkAttachments measures upload and download through the edge
// against the raw object-store put and get they wrap, in the same process
// and run: MB/s of each for a 4 MiB file.
//
//	go test -run '^$' -bench BenchmarkAttachments -benchtime 20x -count 3 ./test/
func BenchmarkAttachments(b *testing.B) {
	ec := edgeConfig()
	ec.Attach = edge.AttachConfig{Quota: -1}
	m := newMesh(b, meshOpts{edge: &ec})
	n := m.dev
	svc := newSvcEnv(b, n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	st, err := attachments.OpenObjectStore(ctx, svc.js)
	if err != nil {
		b.Fatal(err)
	}
	const size = 4 << 20
	data := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	tok := token(b, "alice")
	hc := &http.Client{}
	upload := func() natter.Attachment {
		req, _ := http.NewRequest(http.MethodPost, "http://"+n.Addr()+edge.AttachPath+"?name=bench.bin", bytes.NewReader(data))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		var a natter.Attachment
		if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&a) != nil {
			b.Fatalf("upload: %d", resp.StatusCode)
		}
		return a
	}
	b.Run("put=raw", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := st.Put(ctx, "bench-raw", bytes.NewReader(data), size, "application/octet-stream"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("put=upload", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			a := upload()
			b.StopTimer()
			_ = st.Delete(ctx, a.ID) // keep the store's size flat
			b.StartTimer()
		}
	})
	a := upload()
	b.Run("get=raw", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			rc, err := st.Get(ctx, a.ID, 0, -1)
			if err != nil {
				b.Fatal(err)
			}
			if k, _ := io.Copy(io.Discard, rc); k != size {
				b.Fatalf("got %d bytes", k)
			}
			rc.Close()
		}
	})
	b.Run("get=download", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			req, _ := http.NewRequest(http.MethodGet, "http://"+n.Addr()+edge.AttachPath+"/"+a.ID, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			if k, _ := io.Copy(io.Discard, resp.Body); k != size || resp.StatusCode != 200 {
				b.Fatalf("download: %d, %d bytes", resp.StatusCode, k)
			}
			resp.Body.Close()
		}
	})
}
