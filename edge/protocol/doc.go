// Package protocol is natter's wire protocol v1 between clients and the edge:
// the frames a client sends ([Request], [Decode], [Request.Encode]), the
// frames the edge sends ([Result], [Err], [Push], [Hello], [Bye],
// [DecodeServer]), the stable error codes ([Code]) and the WebSocket close
// codes. The edge server and the Go client SDK both use it, so that the two
// sides cannot disagree about a frame.
//
// The protocol itself (transport, authentication, every op with examples,
// ordering and sync semantics, limits and the REST equivalents) is described
// in docs/protocol.md; the tests parse that file, so the examples there are
// known to decode.
//
// Decoding and encoding are on the hot path of every connection. [Decode] is
// a one-pass scanner without reflection that allocates only the [Request]
// and its strings (about 10x faster than encoding/json, which a fuzz test
// keeps it equivalent to); [Push], [Err] and [ResultRaw] build their frame
// with a single allocation.
package protocol
