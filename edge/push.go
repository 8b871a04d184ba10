package edge

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/pushreg"
	"github.com/natter-im/natter/jetstream/subjects"
)

// pushRegister stores the device's push registration (validated by
// Request.Validate), replacing the one it had.
func (e *Edge) pushRegister(ctx context.Context, user, device string, r *protocol.Request) (any, error) {
	reg := pushreg.Registration{Provider: r.Provider, Token: r.Token, TS: time.Now().UnixMilli()}
	if s := r.Subscription; s != nil {
		reg.Endpoint, reg.P256dh, reg.Auth = s.Endpoint, s.Keys.P256dh, s.Keys.Auth
	}
	if err := e.pushes.Put(ctx, user, device, reg); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// registerPushREST adds PUT and DELETE /v1/push: push.register and
// push.unregister for the device of the token's dev claim, or of the
// X-Natter-Device header (which wins, as at a WebSocket upgrade), else
// the device "rest".
func (e *Edge) registerPushREST(app *fiber.App) {
	g := app.Group("/v1/push", e.restAuth, restDevice)
	g.Put("/", e.restHandler(func(c *fiber.Ctx) (*protocol.Request, error) {
		r := &protocol.Request{}
		if err := bodyInto(c, r); err != nil {
			return nil, err
		}
		r.Op = protocol.OpPushRegister
		return r, nil
	}, fiber.StatusOK))
	g.Delete("/", e.restHandler(func(*fiber.Ctx) (*protocol.Request, error) {
		return &protocol.Request{Op: protocol.OpPushUnregister}, nil
	}, fiber.StatusOK))
}

// restDevice takes the device from the X-Natter-Device header when one is
// given (400 bad_frame when it is not a valid id).
func restDevice(c *fiber.Ctx) error {
	if d := c.Get(protocol.HeaderDevice); d != "" {
		if err := subjects.ValidID(d); err != nil {
			return restError(c, fiber.StatusBadRequest, protocol.CodeBadFrame, protocol.HeaderDevice+": "+err.Error())
		}
		c.Locals("device", string([]byte(d)))
	}
	return c.Next()
}
