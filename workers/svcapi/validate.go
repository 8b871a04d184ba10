package svcapi

import (
	"fmt"
	"github.com/natter-im/natter/jetstream/convapi"
	"strconv"
	"strings"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/subjects"
)

func badFrame(field, why string) *convapi.Error {
	return &convapi.Error{Code: convapi.CodeBadFrame, Msg: field + ": " + why}
}

// checkID checks a required id field.
func checkID(field, v string) *convapi.Error {
	if v == "" {
		return badFrame(field, "required")
	}
	if err := subjects.ValidID(v); err != nil {
		return badFrame(field, "must be 1..64 characters of [A-Za-z0-9_-]")
	}
	return nil
}

// CheckBody checks a message body: required, at most max bytes (too_big).
func CheckBody(body string, max int) *convapi.Error {
	if body == "" {
		return badFrame("body", "required")
	}
	if len(body) > max {
		return &convapi.Error{Code: convapi.CodeTooBig, Msg: "body: " + strconv.Itoa(len(body)) + " bytes, max " + strconv.Itoa(max)}
	}
	return nil
}

// CheckType checks an application-defined message type: at most MaxType
// bytes and not one of the types natter gives a meaning (edit, delete).
func CheckType(typ string) *convapi.Error {
	if len(typ) > MaxType {
		return badFrame("type", fmt.Sprintf("longer than %d bytes", MaxType))
	}
	switch strings.ToLower(typ) {
	case natter.TypeEdit, natter.TypeDelete:
		return badFrame("type", strconv.Quote(typ)+" is reserved: use msg.edit or msg.delete")
	}
	return nil
}

// CheckSend validates a send as the service API and the ingest role take
// it; identity names the field of the sender ("service" or "from").
func CheckSend(identity, from, conv, cmid, body, typ string, maxBody int) *convapi.Error {
	if err := checkID(identity, from); err != nil {
		return err
	}
	if err := checkID("conv", conv); err != nil {
		return err
	}
	if err := checkID("cmid", cmid); err != nil {
		return err
	}
	if err := CheckType(typ); err != nil {
		return err
	}
	return CheckBody(body, maxBody)
}
