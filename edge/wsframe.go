package edge

import "encoding/binary"

// WebSocket opcodes (RFC 6455 section 5.2) of the frames the edge writes itself.
const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// appendFrame appends one final, unmasked server-to-client WebSocket frame
// (RFC 6455 section 5.2) carrying payload. The edge frames its own writes so
// that every frame waiting for a socket goes out in one write system call
// (fasthttp/websocket writes each message with a call of its own); no
// extension is negotiated, so the frame has no RSV bits.
func appendFrame(b []byte, op byte, payload []byte) []byte {
	b = append(b, 0x80|op)
	switch n := len(payload); {
	case n <= 125:
		b = append(b, byte(n))
	case n <= 0xFFFF:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}
