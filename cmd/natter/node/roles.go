package node

import (
	"context"
	"fmt"

	"github.com/natter-im/natter/edge"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/convsvc"
	"github.com/natter-im/natter/workers/fanout"
	"github.com/natter-im/natter/workers/persist"
	"github.com/natter-im/natter/workers/runner"
)

// EdgeConfig configures the edge of natter dev and natter edge.
type EdgeConfig = edge.Config

type stopFunc func(ctx context.Context) error

func (f stopFunc) Stop(ctx context.Context) error { return f(ctx) }

// startRoles starts the configured worker roles. Each role's runner shares
// the role's durable consumer with every other replica.
func (n *Node) startRoles(ctx context.Context) error {
	var members *convsvc.MemberCache
	var mlog *msglog.Log
	for _, role := range n.cfg.Roles {
		lg := n.log.With("role", role)
		switch role {
		case RoleConversations:
			svc, err := convsvc.Start(n.nc, n.store, convsvc.Config{Version: n.cfg.Version, Logger: lg})
			if err != nil {
				return fmt.Errorf("node: conversations service: %w", err)
			}
			n.workers = append(n.workers, stopFunc(func(context.Context) error { return svc.Stop() }))
		case RolePersist:
			if mlog == nil {
				var err error
				if mlog, err = msglog.New(ctx, n.nc, n.js, msglog.Config{Logger: lg}); err != nil {
					return fmt.Errorf("node: %w", err)
				}
			}
			if err := n.startRunner(ctx, runner.Config{Role: role, Stream: subjects.StreamMsgs, Consumer: subjects.ConsumerPersist,
				BatchSize: 256, Concurrency: 2, Logger: n.log, Registerer: n.reg}, persist.New(n.store, mlog, lg)); err != nil {
				return err
			}
		case RoleFanout:
			if members == nil {
				var err error
				if members, err = convsvc.NewMemberCache(ctx, n.nc, convsvc.NewClient(n.nc, 0), 0, 0); err != nil {
					return fmt.Errorf("node: member cache: %w", err)
				}
				n.workers = append(n.workers, stopFunc(func(context.Context) error { return members.Close() }))
			}
			if err := n.startRunner(ctx, runner.Config{Role: role, Stream: subjects.StreamMsgs, Consumer: subjects.ConsumerFanout,
				BatchSize: 64, Concurrency: 1, Logger: n.log, Registerer: n.reg}, fanout.New(n.nc, members, lg)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (n *Node) startRunner(ctx context.Context, cfg runner.Config, h runner.Handler) error {
	r, err := runner.New(n.js, cfg, h)
	if err != nil {
		return fmt.Errorf("node: %s: %w", cfg.Role, err)
	}
	if err := r.Start(ctx); err != nil {
		return fmt.Errorf("node: %s: %w", cfg.Role, err)
	}
	n.workers = append(n.workers, r)
	return nil
}

// startEdge builds the edge and registers its routes.
func (n *Node) startEdge(ctx context.Context) error {
	mlog, err := msglog.New(ctx, n.nc, n.js, msglog.Config{Logger: n.log.With("component", "msglog")})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	client := convsvc.NewClient(n.nc, 0)
	members, err := convsvc.NewMemberCache(ctx, n.nc, client, 0, 0)
	if err != nil {
		return fmt.Errorf("node: member cache: %w", err)
	}
	cfg := n.cfg.Edge
	cfg.Logger = n.log.With("component", "edge")
	e, err := edge.New(context.WithoutCancel(ctx), cfg, edge.Deps{NC: n.nc, JS: n.js, Log: mlog, Convs: client, Members: members, Registerer: n.reg})
	if err != nil {
		members.Close()
		return &SettingError{Setting: SettingAuth, Err: err}
	}
	e.Register(n.app)
	n.edge = stopFunc(func(ctx context.Context) error {
		err := e.Stop(ctx)
		members.Close()
		return err
	})
	return nil
}
