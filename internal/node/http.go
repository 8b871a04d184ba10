package node

import (
	"context"
	"fmt"
	"net/http/pprof"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newApp builds the process's Fiber app with /healthz, /readyz and /metrics.
// The edge registers its routes on the same app.
func newApp(n *Node) *fiber.App {
	// A socket that has not sent its whole request (or, kept alive, the
	// first byte of its next one) within the bound is closed: fasthttp
	// sets the read deadline once per request, so dripping does not extend
	// it. A hijacked WebSocket clears the deadline (edge/session.go).
	readTimeout := n.cfg.Edge.WithDefaults().RequestReadTimeout
	app := fiber.New(fiber.Config{
		DisableStartupMessage: true,
		AppName:               "natter " + n.cfg.Mode.String() + " " + n.cfg.Version,
		ReadTimeout:           readTimeout,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           readTimeout,
		BodyLimit:             n.cfg.Edge.WithDefaults().MaxBody + 4096,
		ErrorHandler:          errorHandler,
	})
	app.Get("/healthz", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"status": "ok", "mode": n.cfg.Mode.String(), "version": n.cfg.Version})
	})
	app.Get("/readyz", func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), 3*time.Second)
		defer cancel()
		if err := n.Ready(ctx); err != nil {
			return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "error": err.Error()})
		}
		return c.JSON(fiber.Map{"status": "ready"})
	})
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{Registry: n.reg})))
	if n.cfg.Pprof {
		mountPprof(app)
	}
	return app
}

// mountPprof serves net/http/pprof under /debug/pprof/: the index, the
// named profiles (heap, goroutine, allocs, block, mutex, threadcreate),
// cmdline, a CPU profile (profile?seconds=N), symbol and an execution trace
// (trace?seconds=N). A CPU profile or trace holds its request for the
// seconds asked, past the app's 30 s WriteTimeout if more are asked: ask
// for 30 s or fewer.
func mountPprof(app *fiber.App) {
	app.Get("/debug/pprof/", adaptor.HTTPHandlerFunc(pprof.Index))
	app.Get("/debug/pprof/cmdline", adaptor.HTTPHandlerFunc(pprof.Cmdline))
	app.Get("/debug/pprof/profile", adaptor.HTTPHandlerFunc(pprof.Profile))
	app.All("/debug/pprof/symbol", adaptor.HTTPHandlerFunc(pprof.Symbol))
	app.Get("/debug/pprof/trace", adaptor.HTTPHandlerFunc(pprof.Trace))
	// pprof.Index serves every named profile from the path's last element.
	app.Get("/debug/pprof/:name", adaptor.HTTPHandlerFunc(pprof.Index))
}

// errorHandler answers every unhandled error as {"code","msg"} JSON.
func errorHandler(c *fiber.Ctx, err error) error {
	code := fiber.StatusInternalServerError
	name := "internal"
	if fe, ok := err.(*fiber.Error); ok {
		code = fe.Code
		switch code {
		case fiber.StatusNotFound:
			name = "not_found"
		case fiber.StatusRequestEntityTooLarge:
			name = "too_big"
		case fiber.StatusMethodNotAllowed, fiber.StatusBadRequest:
			name = "bad_frame"
		case fiber.StatusRequestTimeout:
			// fasthttp's answer to a socket that did not send its whole
			// request within Edge.RequestReadTimeout; it closes it after.
			name = "request_timeout"
			err = fmt.Errorf("request not complete within %v: connection closed", c.App().Server().ReadTimeout)
		}
	}
	return c.Status(code).JSON(fiber.Map{"code": name, "msg": err.Error()})
}
