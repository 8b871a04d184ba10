package edge

import (
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/convapi"
)

// convCodes maps every error code of the conversations service
// (jetstream/convapi) to the protocol code a client gets.
// TestConvCodesCoverContract fails when convapi gains a code that is
// missing here, so a new service code cannot reach a client unmapped.
var convCodes = map[string]protocol.Code{
	convapi.CodeBadFrame:    protocol.CodeBadFrame,
	convapi.CodeNotFound:    protocol.CodeNotFound,
	convapi.CodeNotMember:   protocol.CodeNotMember,
	convapi.CodeForbidden:   protocol.CodeForbidden,
	convapi.CodeTooBig:      protocol.CodeTooBig,
	convapi.CodeInternal:    protocol.CodeInternal,
	convapi.CodeUnavailable: protocol.CodeUnavailable,
}

// convError maps a conversations-service error to the client's code and
// message. A code the table does not know (a newer service than this
// edge) is internal, with the service's message kept for the log.
func convError(ce *convapi.Error) (protocol.Code, string, bool) {
	c, ok := convCodes[ce.Code]
	if !ok {
		return protocol.CodeInternal, "internal error", false
	}
	return c, ce.Msg, true
}
