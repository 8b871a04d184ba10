package node

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/cursors"
	"github.com/natter-im/natter/jetstream/pushreg"
	"github.com/natter-im/natter/jetstream/settings"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/push"
)

// pushProviders builds the configured providers (a bad setting is a
// *SettingError).
func (c PushConfig) pushProviders() (map[string]push.Provider, error) {
	out := map[string]push.Provider{}
	if c.APNs != nil {
		p, err := push.NewAPNs(*c.APNs)
		if err != nil {
			return nil, &SettingError{Setting: SettingPush, Err: err}
		}
		out[pushreg.APNs] = p
	}
	if c.FCM != nil {
		p, err := push.NewFCM(*c.FCM)
		if err != nil {
			return nil, &SettingError{Setting: SettingPush, Err: err}
		}
		out[pushreg.FCM] = p
	}
	if c.WebPush != nil {
		p, err := push.NewWebPush(*c.WebPush)
		if err != nil {
			return nil, &SettingError{Setting: SettingPush, Err: err}
		}
		out[pushreg.WebPush] = p
	}
	return out, nil
}

// mutedBySettings reports a conversation muted by a user while the user's
// settings of it (conv.settings, the SETTINGS bucket) have a muted_until
// in the future.
func mutedBySettings(sets *settings.Bucket) func(ctx context.Context, conv, user string) (bool, error) {
	return func(ctx context.Context, conv, user string) (bool, error) {
		got, err := sets.Get(ctx, user, []string{conv})
		if err != nil {
			return false, err
		}
		return got[conv].MutedUntil > time.Now().UnixMilli(), nil
	}
}

// startPush starts the push role on its durable consumer PUSH, if a provider
// is configured: without one it does not consume (push.Handler.Consumes).
func (n *Node) startPush(ctx context.Context, lg *slog.Logger) error {
	providers, err := n.cfg.Push.pushProviders()
	if err != nil {
		return err
	}
	members, err := n.memberCache(ctx)
	if err != nil {
		return err
	}
	mlog, err := n.msgLog(ctx)
	if err != nil {
		return err
	}
	cur, err := cursors.Open(ctx, n.nc, n.js)
	if err != nil {
		return fmt.Errorf("node: push: %w", err)
	}
	muted := n.cfg.Push.Muted
	if muted == nil {
		sets, err := settings.Open(ctx, n.nc, n.js)
		if err != nil {
			return fmt.Errorf("node: push: %w", err)
		}
		muted = mutedBySettings(sets)
	}
	h, err := push.New(ctx, push.Config{
		Providers: providers, Preview: n.cfg.Push.Preview, SkipOnlineUsers: n.cfg.Push.SkipOnlineUsers,
		MaxAge: n.cfg.Push.MaxAge, Muted: muted, Logger: lg, Registerer: n.reg,
	}, push.Deps{NC: n.nc, JS: n.js, Members: members, Badge: push.UnreadBadge(convapi.NewClient(n.nc, 0), mlog, cur)})
	if err != nil {
		return fmt.Errorf("node: push: %w", err)
	}
	if !h.Consumes() {
		// Replicas share PUSH: taking entries without a provider would
		// acknowledge the notifications of replicas that have one.
		lg.Info("push role: no provider configured, not consuming " + subjects.ConsumerPush + " (natter_push_providers 0)")
		// Still listed by natter services, saying so.
		svc, err := n.register(RolePush, "natter push worker: not consuming "+subjects.ConsumerPush+": no provider configured",
			func() any { return map[string]any{"consuming": false, "reason": "no provider configured"} })
		if err != nil {
			return err
		}
		n.workers = append(n.workers, stopFunc(func(context.Context) error { return svc.Stop() }))
		return nil
	}
	names := make([]string, 0, len(providers))
	for name := range providers {
		names = append(names, name)
	}
	slices.Sort(names)
	lg.Info("push role", "providers", names, "preview", n.cfg.Push.Preview)
	return n.startRunner(ctx, lingering(n.runnerConfig(RolePush, subjects.StreamMsgs, subjects.ConsumerPush, 64, 1), nil), h,
		"sends push notifications to the members' offline devices")
}
