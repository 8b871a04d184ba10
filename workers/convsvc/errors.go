package convsvc

import (
	"errors"
	"strings"

	"github.com/natter-im/natter/jetstream/convapi"
)

func badFrame(field, why string) *convapi.Error {
	return &convapi.Error{Code: convapi.CodeBadFrame, Msg: field + ": " + why}
}

func badID(field string, err error) *convapi.Error {
	return badFrame(field, strings.TrimPrefix(err.Error(), "subjects: "))
}

var errNotMember = &convapi.Error{Code: convapi.CodeNotMember, Msg: "not a member of this conversation"}

// errCacheClosed fails a store load that waited for its slot until the
// list cache closed.
var errCacheClosed = errors.New("convsvc: list cache closed")
