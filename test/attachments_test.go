package test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/attachments"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/svcapi"
)

var attachSecret = []byte("attach-test-secret-0123456789abcdef")

// attachMesh is a dev node with a known signed-URL secret and small limits.
func attachMesh(t *testing.T, maxSize, quota int64) *mesh {
	t.Helper()
	ec := edgeConfig()
	ec.Attach = edge.AttachConfig{MaxSize: maxSize, Quota: quota, URLSecret: attachSecret}
	return newMesh(t, meshOpts{edge: &ec})
}

func pngOf(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.NRGBA{uint8(x), uint8(y), uint8(x + y), 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// upload posts body as an attachment and returns the status, code and answer.
func upload(t testing.TB, n *node.Node, tok, ctype, name string, body []byte) (int, string, natter.Attachment) {
	t.Helper()
	st, code, b := restCall(t, http.MethodPost, "http://"+n.Addr()+edge.AttachPath+"?name="+name, tok, string(body), "Content-Type", ctype)
	var a natter.Attachment
	if st == http.StatusCreated {
		if err := json.Unmarshal(b, &a); err != nil {
			t.Fatalf("upload answer %s: %v", b, err)
		}
	}
	return st, code, a
}

func get(t testing.TB, url, tok string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func directWith(t testing.TB, n *node.Node, tok, with string) string {
	t.Helper()
	st, _, b := restCall(t, http.MethodPost, "http://"+n.Addr()+"/v1/conversations/", tok, `{"kind":"direct","with":"`+with+`"}`)
	var c natter.Conversation
	if st/100 != 2 || json.Unmarshal(b, &c) != nil {
		t.Fatalf("create direct with %s: %d %s", with, st, b)
	}
	return c.ID
}

// TestAttachmentRoundTrip: an image is uploaded (type sniffed, dimensions
// read), sent in a message that the other member receives with its
// metadata, and read by both members with ranges, ETag and 304, while a
// non-member is refused; a thumbnail appears without delaying anything.
func TestAttachmentRoundTrip(t *testing.T) {
	t.Parallel()
	m := attachMesh(t, 0, 0)
	n := m.dev
	alice, bob, carol := token(t, "alice"), token(t, "bob"), token(t, "carol")
	img := pngOf(t, 640, 480)
	st, code, a := upload(t, n, alice, "image/png", "cat%20%22one%22.png", img)
	if st != http.StatusCreated {
		t.Fatalf("upload: %d %s", st, code)
	}
	if a.Size != int64(len(img)) || a.Type != "image/png" || a.Width != 640 || a.Height != 480 || a.Name != `cat "one".png` || !strings.HasPrefix(a.ID, "a_") {
		t.Fatalf("upload answer %+v", a)
	}
	base := "http://" + n.Addr() + edge.AttachPath + "/" + a.ID

	// The uploader reads it before it is sent anywhere.
	resp, b := get(t, base, alice)
	if resp.StatusCode != 200 || !bytes.Equal(b, img) || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("owner download: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(b))
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, `inline; filename="cat _one_.png"; filename*=UTF-8''cat%20%22one%22.png`) {
		t.Fatalf("Content-Disposition %q", cd)
	}
	etag := resp.Header.Get("ETag")
	if sum := sha256.Sum256(img); etag != fmt.Sprintf(`"%x"`, sum) {
		t.Fatalf("ETag %s", etag)
	}
	// bob is in no conversation it was sent in yet.
	if resp, _ := get(t, base, bob); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("bob before the send: %d, want 403", resp.StatusCode)
	}

	conv := directWith(t, n, alice, "bob")
	bobWS := mustDial(t, n, "bob")
	st, code, body := restCall(t, http.MethodPost, "http://"+n.Addr()+"/v1/conversations/"+conv+"/messages", alice,
		`{"cmid":"att-1","body":"look","attachments":[{"id":"`+a.ID+`"}]}`)
	if st != http.StatusCreated {
		t.Fatalf("send: %d %s %s", st, code, body)
	}
	got := bobWS.collect(conv, 1)[1]
	if len(got.Attachments) != 1 || got.Attachments[0] != a {
		t.Fatalf("bob's push: attachments %+v, want %+v", got.Attachments, a)
	}
	hist, _ := get(t, "http://"+n.Addr()+"/v1/conversations/"+conv+"/messages", bob)
	if hist.StatusCode != 200 {
		t.Fatalf("history %d", hist.StatusCode)
	}

	// bob may read it now; carol still not.
	resp, b = get(t, base, bob, "Range", "bytes=100-199")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, img[100:200]) ||
		resp.Header.Get("Content-Range") != "bytes 100-199/"+strconv.Itoa(len(img)) {
		t.Fatalf("range: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Range"), len(b))
	}
	resp, b = get(t, base, bob, "Range", "bytes=-10")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, img[len(img)-10:]) {
		t.Fatalf("suffix range: %d, %d bytes", resp.StatusCode, len(b))
	}
	if resp, _ := get(t, base, bob, "Range", "bytes=0-1,5-6"); resp.StatusCode != 200 {
		t.Fatalf("multi-range: %d, want the whole file (200)", resp.StatusCode)
	}
	if resp, _ := get(t, base, bob, "Range", "bytes="+strconv.Itoa(len(img))+"-"); resp.StatusCode != http.StatusRequestedRangeNotSatisfiable ||
		resp.Header.Get("Content-Range") != "bytes */"+strconv.Itoa(len(img)) {
		t.Fatalf("unsatisfiable range: %d %q", resp.StatusCode, resp.Header.Get("Content-Range"))
	}
	if resp, b := get(t, base, bob, "If-None-Match", etag); resp.StatusCode != http.StatusNotModified || len(b) != 0 {
		t.Fatalf("If-None-Match: %d, %d bytes", resp.StatusCode, len(b))
	}
	if resp, _ := get(t, base, carol); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("carol: %d, want 403", resp.StatusCode)
	}
	head, _ := http.NewRequest(http.MethodHead, base, nil)
	head.Header.Set("Authorization", "Bearer "+bob)
	if resp, err := http.DefaultClient.Do(head); err != nil || resp.StatusCode != 200 || resp.ContentLength != int64(len(img)) || resp.Header.Get("ETag") != etag {
		t.Fatalf("HEAD: %v %+v", err, resp)
	} else {
		resp.Body.Close()
	}

	// Over the WebSocket, with no body: bob sends a file of his own.
	_, _, note := upload(t, n, bob, "text/plain", "note.txt", []byte("bob's note"))
	bobWS.write(`{"op":"send","id":"s1","conv":"` + conv + `","cmid":"b-1","attachments":[{"id":"` + note.ID + `","name":"n.txt"}]}`)
	if f := bobWS.reply("s1"); f.Err != nil {
		t.Fatalf("ws send: %+v", f.Err)
	}
	if resp, b := get(t, "http://"+n.Addr()+edge.AttachPath+"/"+note.ID, alice); resp.StatusCode != 200 || string(b) != "bob's note" ||
		!strings.HasPrefix(resp.Header.Get("Content-Disposition"), `attachment; filename="note.txt"`) {
		t.Fatalf("alice reads bob's note: %d %s %q", resp.StatusCode, b, resp.Header.Get("Content-Disposition"))
	}
	bobWS.write(`{"op":"send","id":"s2","conv":"` + conv + `","cmid":"b-2","attachments":[{"id":"` + a.ID + `"}]}`)
	if f := bobWS.reply("s2"); f.Err == nil || f.Err.Code != "forbidden" {
		t.Fatalf("bob sends alice's upload: %+v", f.Err)
	}

	// The thumbnail comes on its own.
	testenv.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		resp, b := get(t, base+"/thumb", bob)
		if resp.StatusCode != 200 {
			return fmt.Errorf("thumb: %d %s", resp.StatusCode, b)
		}
		ic, err := png.DecodeConfig(bytes.NewReader(b))
		if err != nil || ic.Width != 320 || ic.Height != 240 || resp.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("thumb: %v %dx%d %s", err, ic.Width, ic.Height, resp.Header.Get("Content-Type"))
		}
		return nil
	})
}

// TestAttachmentBadInput: every refusal has its status and code, and
// leaves nothing stored.
func TestAttachmentBadInput(t *testing.T) {
	t.Parallel()
	const maxSize, quota = 100_000, 150_000
	m := attachMesh(t, maxSize, quota)
	n := m.dev
	alice, carol := token(t, "alice"), token(t, "carol")
	svc := newSvcEnv(t, n)
	meta, err := attachments.OpenBucket(ctx10(t), svc.js)
	if err != nil {
		t.Fatal(err)
	}
	used := func(user string) int64 {
		u, err := meta.Used(ctx10(t), user)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	blobs := func() uint64 {
		s, err := svc.js.Stream(ctx10(t), "OBJ_"+subjects.ObjectAttach)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx10(t))
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}

	t.Run("types", func(t *testing.T) {
		pdf := []byte("%PDF-1.4\n" + strings.Repeat("x", 100))
		for _, c := range []struct{ ctype, code string }{
			{"image/png", "unsupported_type"}, // the bytes are a PDF
			{"text/x-shellscript", "unsupported_type"},
			{"not a type", "unsupported_type"},
		} {
			st, code, _ := upload(t, n, alice, c.ctype, "x", pdf)
			if st != http.StatusUnsupportedMediaType || code != c.code {
				t.Errorf("%s: %d %s, want 415 %s", c.ctype, st, code, c.code)
			}
		}
		// An image declared as something else.
		if st, code, _ := upload(t, n, alice, "application/pdf", "x", pngOf(t, 4, 4)); st != 415 || code != "unsupported_type" {
			t.Errorf("png as pdf: %d %s", st, code)
		}
		big := []byte("%PDF-1.4\n" + strings.Repeat("z", 90_000))
		if st, _, _ := upload(t, n, alice, "application/pdf", "x", big); st != http.StatusCreated {
			t.Fatalf("a real pdf: %d", st)
		}
	})
	base := blobs()
	usedBefore := used("alice")

	t.Run("oversize refused before the body", func(t *testing.T) {
		// Headers and one byte (fasthttp reads one before the handler
		// runs): the answer comes without the rest of the body.
		c, err := net.Dial("tcp", n.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n\x89", edge.AttachPath, alice, maxSize+1)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no answer before the body: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), `"too_big"`) {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	})
	t.Run("chunked body cut at the limit", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+n.Addr()+edge.AttachPath, io.MultiReader(bytes.NewReader([]byte("%PDF-1.4\n")), strings.NewReader(strings.Repeat("y", maxSize))))
		req.ContentLength = -1 // chunked
		// erin has her whole quota: the size limit cuts it.
		req.Header.Set("Authorization", "Bearer "+token(t, "erin"))
		req.Header.Set("Content-Type", "application/pdf")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), `"too_big"`) {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	})
	t.Run("quota", func(t *testing.T) {
		big := []byte("%PDF-1.4\n" + strings.Repeat("z", 90_000))
		if st, code, _ := upload(t, n, alice, "application/pdf", "big", big); st != http.StatusRequestEntityTooLarge || code != "quota_exceeded" {
			t.Fatalf("past the quota: %d %s", st, code)
		}
	})
	if got := blobs(); got != base {
		t.Fatalf("object store: %d messages after refused uploads, %d before", got, base)
	}
	if got := used("alice"); got != usedBefore {
		t.Fatalf("alice's quota: %d after refused uploads, %d before", got, usedBefore)
	}
	if got := used("erin"); got != 0 {
		t.Fatalf("erin's quota: %d after a refused upload", got)
	}

	t.Run("another user's attachment", func(t *testing.T) {
		_, _, a := upload(t, n, alice, "text/plain", "note.txt", []byte("alice's note"))
		conv := directWith(t, n, carol, "dave")
		st, code, _ := restCall(t, http.MethodPost, "http://"+n.Addr()+"/v1/conversations/"+conv+"/messages", carol,
			`{"cmid":"steal","body":"mine now","attachments":[{"id":"`+a.ID+`"}]}`)
		if st != http.StatusForbidden || code != "forbidden" {
			t.Fatalf("send with alice's attachment: %d %s", st, code)
		}
		if hist := svc.history(t, conv); len(hist) != 0 {
			t.Fatalf("stored %d messages", len(hist))
		}
		mm, _, err := meta.Get(ctx10(t), a.ID)
		if err != nil || len(mm.Convs) != 0 || len(mm.Msgs) != 0 {
			t.Fatalf("metadata after the refused send: %+v %v", mm, err)
		}
		for _, bad := range []string{`[{"id":"nope"}]`, `"x"`, `[{"id":"` + a.ID + `"},{"id":"` + a.ID + `"}]`} {
			st, code, b := restCall(t, http.MethodPost, "http://"+n.Addr()+"/v1/conversations/"+conv+"/messages", carol, `{"cmid":"bad","body":"x","attachments":`+bad+`}`)
			if st != 400 || code != "bad_frame" && code != "bad_json" {
				t.Errorf("attachments %s: %d %s %s", bad, st, code, b)
			}
		}
	})

	t.Run("signed urls", func(t *testing.T) {
		_, _, a := upload(t, n, alice, "text/plain", "n.txt", []byte("signed"))
		st, _, b := restCall(t, http.MethodPost, "http://"+n.Addr()+edge.AttachPath+"/"+a.ID+"/url?ttl=60", alice, "")
		var su edge.SignedURL
		if st != 200 || json.Unmarshal(b, &su) != nil || su.Expires <= time.Now().Unix() {
			t.Fatalf("sign: %d %s", st, b)
		}
		resp, body := get(t, "http://"+n.Addr()+su.URL, "")
		if resp.StatusCode != 200 || string(body) != "signed" || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment;") {
			t.Fatalf("signed get: %d %s %q", resp.StatusCode, body, resp.Header.Get("Content-Disposition"))
		}
		// carol may not get a URL for it.
		if st, code, _ := restCall(t, http.MethodPost, "http://"+n.Addr()+edge.AttachPath+"/"+a.ID+"/url", carol, ""); st != 403 || code != "forbidden" {
			t.Fatalf("carol's sign: %d %s", st, code)
		}
		sign := func(user string, exp int64) string {
			mac := hmac.New(sha256.New, attachSecret)
			mac.Write([]byte("natter-attachment-v1\n" + a.ID + "\nfile\n" + user + "\n" + strconv.FormatInt(exp, 10)))
			return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
		}
		past := time.Now().Add(-time.Minute).Unix()
		future := time.Now().Add(time.Minute).Unix()
		for _, c := range []struct{ what, query string }{
			{"expired", fmt.Sprintf("exp=%d&u=alice&sig=%s", past, sign("alice", past))},
			{"tampered user", fmt.Sprintf("exp=%d&u=carol&sig=%s", future, sign("alice", future))},
			{"tampered expiry", fmt.Sprintf("exp=%d&u=alice&sig=%s", future+3600, sign("alice", future))},
			{"too far", fmt.Sprintf("exp=%d&u=alice&sig=%s", future+86400, sign("alice", future+86400))},
		} {
			resp, b := get(t, "http://"+n.Addr()+edge.AttachPath+"/"+a.ID+"?"+c.query, "")
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "signed url") {
				t.Errorf("%s: %d %s", c.what, resp.StatusCode, b)
			}
		}
	})
}

// TestAttachmentStreamedUpload: an upload reaches the object store while
// its body is still arriving, so the edge never holds it whole.
func TestAttachmentStreamedUpload(t *testing.T) {
	t.Parallel()
	m := attachMesh(t, 0, 0)
	n := m.dev
	svc := newSvcEnv(t, n)
	stored := func() uint64 {
		s, err := svc.js.Stream(ctx10(t), "OBJ_"+subjects.ObjectAttach)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx10(t))
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Bytes
	}
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, "http://"+n.Addr()+edge.AttachPath+"?name=big.bin", pr)
	req.Header.Set("Authorization", "Bearer "+token(t, "alice"))
	req.Header.Set("Content-Type", "application/octet-stream")
	const total = 12 << 20
	req.ContentLength = total
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- nil
			return
		}
		done <- resp
	}()
	chunk := bytes.Repeat([]byte{0xAB}, 1<<20)
	for range 4 {
		if _, err := pw.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	// 4 of 12 MiB sent: most of it must be in the store already.
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if s := stored(); s < 3<<20 {
			return fmt.Errorf("object store holds %d bytes while 4 MiB were sent", s)
		}
		return nil
	})
	for range 8 {
		if _, err := pw.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	pw.Close()
	resp := <-done
	if resp == nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %v", resp)
	}
	var a natter.Attachment
	_ = json.NewDecoder(resp.Body).Decode(&a)
	resp.Body.Close()
	if a.Size != total {
		t.Fatalf("size %d", a.Size)
	}
}

// TestAttachmentDeletedWithMessage: deleting the message that carries an
// attachment deletes the attachment (bytes, thumbnail, quota).
func TestAttachmentDeletedWithMessage(t *testing.T) {
	t.Parallel()
	m := attachMesh(t, 0, 0)
	n := m.dev
	alice, bob := token(t, "alice"), token(t, "bob")
	svc := newSvcEnv(t, n)
	meta, err := attachments.OpenBucket(ctx10(t), svc.js)
	if err != nil {
		t.Fatal(err)
	}
	_, _, a := upload(t, n, alice, "image/png", "p.png", pngOf(t, 50, 50))
	_, _, keep := upload(t, n, alice, "text/plain", "keep.txt", []byte("kept"))
	conv := directWith(t, n, alice, "bob")
	var sent natter.Ack
	st, _, b := restCall(t, http.MethodPost, "http://"+n.Addr()+"/v1/conversations/"+conv+"/messages", alice,
		`{"cmid":"d-1","attachments":[{"id":"`+a.ID+`","name":"renamed.png"}]}`)
	if st != http.StatusCreated || json.Unmarshal(b, &sent) != nil {
		t.Fatalf("send: %d %s", st, b)
	}
	// Also sent in a second message: it stays until both are deleted.
	if st, _, b := restCall(t, http.MethodPost, "http://"+n.Addr()+"/v1/conversations/"+conv+"/messages", alice,
		`{"cmid":"d-2","body":"again","attachments":[{"id":"`+keep.ID+`"}]}`); st != http.StatusCreated {
		t.Fatalf("send 2: %d %s", st, b)
	}
	testenv.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		if resp, _ := get(t, "http://"+n.Addr()+edge.AttachPath+"/"+a.ID+"/thumb", bob); resp.StatusCode != 200 {
			return fmt.Errorf("no thumbnail yet: %d", resp.StatusCode)
		}
		return nil
	})
	before, _ := meta.Used(ctx10(t), "alice")
	if _, err := svc.api.Delete(ctx10(t), svcapi.DeleteRequest{Service: "svc_mod", Conv: conv, Ref: sent.ID, Cmid: "del-1"}); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		if _, _, err := meta.Get(ctx10(t), a.ID); err == nil {
			return fmt.Errorf("attachment %s still there", a.ID)
		}
		return nil
	})
	if resp, _ := get(t, "http://"+n.Addr()+edge.AttachPath+"/"+a.ID, alice); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("download after delete: %d", resp.StatusCode)
	}
	st2, err := newObjectStore(t, svc)
	if err != nil {
		t.Fatal(err)
	}
	// The role deletes the metadata, then the objects, then lowers the
	// quota: wait for the last.
	testenv.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		for _, obj := range []string{subjects.AttachObject(a.ID), subjects.AttachThumbObject(a.ID)} {
			if _, err := st2.Get(ctx10(t), obj, 0, -1); err == nil {
				return fmt.Errorf("object %s still stored", obj)
			}
		}
		if after, _ := meta.Used(ctx10(t), "alice"); after != before-a.Size {
			return fmt.Errorf("quota: %d after, %d before, size %d", after, before, a.Size)
		}
		return nil
	})
	if resp, b := get(t, "http://"+n.Addr()+edge.AttachPath+"/"+keep.ID, bob); resp.StatusCode != 200 || string(b) != "kept" {
		t.Fatalf("the other message's attachment: %d %s", resp.StatusCode, b)
	}
}

func newObjectStore(t testing.TB, svc *svcEnv) (*attachments.ObjectStore, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return attachments.OpenObjectStore(ctx, svc.js)
}

// TestRESTBodiesWithStreaming: with request bodies streamed (for uploads),
// every other route still gets its body whole and bounded: a chunked body
// works, one over max_body + 4 KiB is 413 too_big, by Content-Length or
// once the chunks pass it.
func TestRESTBodiesWithStreaming(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{})
	n := m.dev
	tok := token(t, "alice")
	post := func(body io.Reader, length int64) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+n.Addr()+"/v1/conversations/", body)
		req.ContentLength = length
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	small := `{"kind":"direct","with":"bob"}`
	if st, b := post(io.MultiReader(strings.NewReader(small[:10]), strings.NewReader(small[10:])), -1); st != http.StatusCreated {
		t.Fatalf("chunked create: %d %s", st, b)
	}
	if st, b := post(strings.NewReader(small), int64(len(small))); st/100 != 2 {
		t.Fatalf("create after it on a kept-alive connection: %d %s", st, b)
	}
	huge := `{"kind":"group","name":"` + strings.Repeat("x", 80<<10) + `"}`
	if st, b := post(io.MultiReader(strings.NewReader(huge)), -1); st != http.StatusRequestEntityTooLarge || !strings.Contains(b, "too_big") {
		t.Fatalf("chunked, too big: %d %s", st, b)
	}
	if st, b := post(strings.NewReader(huge), int64(len(huge))); st != http.StatusRequestEntityTooLarge || !strings.Contains(b, "too_big") {
		t.Fatalf("too big: %d %s", st, b)
	}
}

// TestAttachmentsFromTheArchive: a message's attachments come back whole
// once it is only in the archive (MongoDB, read by blocks), in history and
// sync alike.
func TestAttachmentsFromTheArchive(t *testing.T) {
	t.Parallel()
	ec := edgeConfig()
	m := newMesh(t, meshOpts{edge: &ec, streams: streams.Config{HotTier: 2}})
	n := m.dev
	alice := token(t, "alice")
	_, _, a := upload(t, n, alice, "image/png", "old.png", pngOf(t, 8, 6))
	conv := directWith(t, n, alice, "bob")
	msgs := "http://" + n.Addr() + "/v1/conversations/" + conv + "/messages"
	if st, _, b := restCall(t, http.MethodPost, msgs, alice, `{"cmid":"arch-0","body":"first","attachments":[{"id":"`+a.ID+`"}]}`); st != http.StatusCreated {
		t.Fatalf("send: %d %s", st, b)
	}
	for i := 1; i <= 70; i++ {
		if st, _, b := restCall(t, http.MethodPost, msgs, alice, fmt.Sprintf(`{"cmid":"arch-%d","body":"m%d"}`, i, i)); st != http.StatusCreated {
			t.Fatalf("send %d: %d %s", i, st, b)
		}
	}
	// Read until it comes back right, then again: the first read of an
	// archive block may build it from the messages, later ones read it.
	oldest := func() error {
		st, _, b := restCall(t, http.MethodGet, msgs+"?after=0&limit=1", token(t, "bob"), "")
		var page struct{ Msgs []natter.Message }
		if st != 200 || json.Unmarshal(b, &page) != nil || len(page.Msgs) != 1 {
			return fmt.Errorf("oldest page: %d %s", st, b)
		}
		if got := page.Msgs[0].Attachments; len(got) != 1 || got[0] != a {
			return fmt.Errorf("attachments from the archive: %+v, want %+v", got, a)
		}
		return nil
	}
	testenv.CheckFor(t, 30*time.Second, 100*time.Millisecond, oldest)
	for range 3 {
		if err := oldest(); err != nil {
			t.Fatal(err)
		}
	}
}
