package edge

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/natter-im/natter/edge/limits"
	"github.com/natter-im/natter/edge/protocol"
)

// retryAfter is d in whole seconds, at least 1: a Retry-After header.
func retryAfter(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// REST for clients without a socket. Same auth (Authorization: Bearer),
// same validation, same idempotency and the same error codes as the
// WebSocket protocol; errors are {"code","msg"} with the code's HTTP status.
func (e *Edge) registerREST(app *fiber.App) {
	g := app.Group("/v1/conversations", e.restAuth)
	g.Get("/", e.restHandler(func(c *fiber.Ctx) (*protocol.Request, error) {
		r := &protocol.Request{Op: protocol.OpConvList, Page: c.Query("page")}
		n, err := queryUint(c, "page_size")
		if n != nil {
			r.PageSize = int(min(*n, 1<<20))
		}
		return r, err
	}, fiber.StatusOK))
	g.Post("/", e.restHandler(func(c *fiber.Ctx) (*protocol.Request, error) {
		r := &protocol.Request{}
		if err := bodyInto(c, r); err != nil {
			return nil, err
		}
		r.Op = protocol.OpConvCreate
		return r, nil
	}, fiber.StatusCreated))
	g.Get("/:conv", e.restHandler(func(c *fiber.Ctx) (*protocol.Request, error) {
		return &protocol.Request{Op: protocol.OpConvGet, Conv: c.Params("conv")}, nil
	}, fiber.StatusOK))
	g.Patch("/:conv", e.restHandler(func(c *fiber.Ctx) (*protocol.Request, error) {
		r := &protocol.Request{}
		if err := bodyInto(c, r); err != nil {
			return nil, err
		}
		r.Op, r.Conv = protocol.OpConvRename, c.Params("conv")
		return r, nil
	}, fiber.StatusOK))
	g.Get("/:conv/messages", e.restHandler(func(c *fiber.Ctx) (*protocol.Request, error) {
		r := &protocol.Request{Op: protocol.OpHistory, Conv: c.Params("conv")}
		var err error
		if r.Before, err = queryUint(c, "before"); err != nil {
			return nil, err
		}
		if r.After, err = queryUint(c, "after"); err != nil {
			return nil, err
		}
		l, err := queryUint(c, "limit")
		if l != nil {
			r.Limit = int(min(*l, 1<<20))
		}
		return r, err
	}, fiber.StatusOK))
	g.Post("/:conv/messages", e.restHandler(func(c *fiber.Ctx) (*protocol.Request, error) {
		r := &protocol.Request{}
		if err := bodyInto(c, r); err != nil {
			return nil, err
		}
		r.Op, r.Conv = protocol.OpSend, c.Params("conv")
		return r, idempotencyKey(c, r)
	}, fiber.StatusCreated))
	e.registerReceiptsREST(g)
	e.registerActionsREST(g)
	e.registerThreadsREST(g)
	e.registerReactionsREST(g)
}

// idempotencyKey takes the cmid from the Idempotency-Key header: the header
// and the body field are two spellings of the cmid, both may be given only
// with the same value.
func idempotencyKey(c *fiber.Ctx, r *protocol.Request) error {
	switch k := c.Get("Idempotency-Key"); {
	case k == "":
	case r.Cmid == "":
		r.Cmid = k
	case r.Cmid != k:
		return &protocol.Error{Code: protocol.CodeBadFrame, Msg: "cmid: differs from the Idempotency-Key header (send one, or both with the same value)"}
	}
	return nil
}

// restAuth checks Origin, the bearer token and the user's rate limit
// (429 rate_limited with Retry-After) and stores the user.
func (e *Edge) restAuth(c *fiber.Ctx) error {
	if !e.originAllowed(c) {
		return originRefused(c)
	}
	cl, err := e.verify(c.Get(fiber.HeaderAuthorization))
	if err != nil {
		return restError(c, fiber.StatusUnauthorized, protocol.CodeUnauthorized, err.Error())
	}
	if a := e.admit(tokenOf(cl, "")); a != nil {
		e.m.errors.WithLabelValues(string(a.code)).Inc()
		return restError(c, a.status, a.code, a.msg)
	}
	if ok, d := e.limits.Take(limits.REST, cl.User, time.Now()); !ok {
		e.m.errors.WithLabelValues(string(protocol.CodeRateLimited)).Inc()
		wait := retryAfter(d)
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(wait))
		return restError(c, fiber.StatusTooManyRequests, protocol.CodeRateLimited,
			"rate limit exceeded: at most "+strconv.FormatFloat(e.cfg.RESTRate, 'f', -1, 64)+" requests per second per user over all edges (burst "+strconv.Itoa(e.cfg.RESTBurst)+"); retry after "+strconv.Itoa(wait)+" s")
	}
	c.Locals("user", cl.User)
	c.Locals("device", cl.Device)
	return c.Next()
}

func (e *Edge) restHandler(build func(*fiber.Ctx) (*protocol.Request, error), okStatus int) fiber.Handler {
	return func(c *fiber.Ctx) error {
		r, err := build(c)
		if err == nil {
			err = r.Validate()
		}
		if err != nil {
			return e.restErr(c, err)
		}
		ctx, cancel := context.WithTimeout(c.UserContext(), 15*time.Second)
		defer cancel()
		user, _ := c.Locals("user").(string)
		device, _ := c.Locals("device").(string)
		if device == "" {
			device = "rest"
		}
		res, err := e.do(ctx, user, device, r)
		if err != nil {
			return e.restErr(c, err)
		}
		status := okStatus
		if isDup(res) {
			status = fiber.StatusOK
		}
		c.Status(status)
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		b, err := json.Marshal(res)
		if err != nil {
			return e.restErr(c, err)
		}
		return c.Send(b)
	}
}

func (e *Edge) restErr(c *fiber.Ctx, err error) error {
	code, msg := e.errorCode(err)
	var rl *rateLimited
	if errors.As(err, &rl) {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(retryAfter(rl.wait)))
	}
	e.m.errors.WithLabelValues(string(code)).Inc()
	return restError(c, code.HTTPStatus(), code, msg)
}

func bodyInto(c *fiber.Ctx, r *protocol.Request) error {
	if len(c.Body()) > 0 {
		if err := json.Unmarshal(c.Body(), r); err != nil {
			return &protocol.Error{Code: protocol.CodeBadJSON, Msg: "request body is not a JSON object: " + err.Error()}
		}
	}
	return nil
}

// queryUint reads an optional integer query parameter: nil when it is
// absent or empty, so that ?after=0 differs from no after.
func queryUint(c *fiber.Ctx, name string) (*uint64, error) {
	v := c.Query(name)
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return nil, &protocol.Error{Code: protocol.CodeBadFrame, Msg: name + ": " + strconv.Quote(v) + " is not a non-negative integer"}
	}
	return &n, nil
}
