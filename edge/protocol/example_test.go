package protocol_test

import (
	"encoding/json"
	"fmt"

	"github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
)

// The edge decodes a client frame and answers it.
func ExampleDecode() {
	req, err := protocol.Decode([]byte(`{"op":"send","id":"2","conv":"g_7f3a9c","cmid":"c-1001","body":"hi all"}`))
	if err != nil {
		fmt.Printf("%s\n", protocol.ErrFrame("", err))
		return
	}
	if err := protocol.CheckBody(req.Body, protocol.DefaultMaxBody); err != nil {
		fmt.Printf("%s\n", protocol.ErrFrame(req.ID, err))
		return
	}
	ack := natter.Ack{ID: "m_K5QWY3DFMZXGC4TBNFZGK2LMNQ", Conv: req.Conv, Seq: 42, TS: 1767225600000}
	fmt.Printf("%s\n", protocol.Result(req.ID, ack))

	_, err = protocol.Decode([]byte(`{"op":"send","id":"3","conv":"g_7f3a9c","body":"hi"}`))
	fmt.Printf("%s\n", protocol.ErrFrame("", err))
	// Output:
	// {"t":"res","id":"2","data":{"id":"m_K5QWY3DFMZXGC4TBNFZGK2LMNQ","conv":"g_7f3a9c","seq":42,"ts":1767225600000}}
	// {"t":"err","id":"3","code":"bad_frame","msg":"cmid: required"}
}

// A client encodes a request and reads the server's frames.
func ExampleDecodeServer() {
	req := protocol.Request{Op: protocol.OpHistory, ID: "8", Conv: "g_7f3a9c", Limit: 2}
	frame, err := req.Encode()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s\n", frame)

	for _, in := range []string{
		`{"t":"msg","msg":{"id":"m_K5QWY3DFMZXGC4TBNFZGK2LMNQ","conv":"g_7f3a9c","seq":42,"from":"alice","cmid":"c-1001","body":"hi all","ts":1767225600000}}`,
		`{"t":"res","id":"8","data":{"msgs":[],"more":false}}`,
		`{"t":"err","id":"9","code":"rate_limited","msg":"slow down"}`,
	} {
		f, err := protocol.DecodeServer([]byte(in))
		if err != nil {
			fmt.Println(err)
			continue
		}
		switch f.T {
		case protocol.FrameMsg:
			fmt.Println("push", f.Message.Conv, f.Message.Seq, f.Message.Body)
		case protocol.FrameRes:
			var page protocol.HistoryResult
			if err := json.Unmarshal(f.Data, &page); err == nil {
				fmt.Println("reply", f.ID, len(page.Msgs), page.More)
			}
		case protocol.FrameErr:
			fmt.Println("error", f.ID, f.Err.Code, f.Err.Code.Retryable())
		}
	}
	// Output:
	// {"op":"history","id":"8","conv":"g_7f3a9c","limit":2}
	// push g_7f3a9c 42 hi all
	// reply 8 0 false
	// error 9 rate_limited true
}
