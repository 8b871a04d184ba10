package protocol

import "strings"

// Negotiate picks the subprotocol for an upgrade from the values of the
// client's Sec-WebSocket-Protocol headers (each may be a comma-separated
// list). It returns [Subprotocol] when offered, "" when nothing was offered
// (v1 without a subprotocol), and a [CodeBadVersion] error when subprotocols
// were offered but not natter.v1: the edge answers HTTP 400 before upgrading.
func Negotiate(offered ...string) (string, error) {
	seen := false
	for _, h := range offered {
		for p := range strings.SplitSeq(h, ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			if p == Subprotocol {
				return Subprotocol, nil
			}
			seen = true
		}
	}
	if seen {
		return "", &Error{Code: CodeBadVersion, Msg: "subprotocol " + Subprotocol + " not offered"}
	}
	return "", nil
}
