package client

import (
	"context"

	"github.com/natter-im/natter/edge/protocol"
)

// RegisterPush registers this client's device for push notifications
// through APNs ([protocol.PushAPNs], token: the device token in hex) or FCM
// ([protocol.PushFCM], token: the registration token), replacing what the
// device had registered. While the device is connected it gets messages
// over the socket and no push. An unknown provider or a malformed token
// is refused with bad_frame (a [*protocol.Error]) and nothing is stored.
func (c *Client) RegisterPush(ctx context.Context, provider, token string) error {
	return c.call(ctx, protocol.Request{Op: protocol.OpPushRegister, Provider: provider, Token: token}, true, nil)
}

// RegisterWebPush registers this client's device for Web Push with the
// browser's subscription (PushSubscription.toJSON()), replacing what the
// device had registered.
func (c *Client) RegisterWebPush(ctx context.Context, sub protocol.PushSubscription) error {
	return c.call(ctx, protocol.Request{Op: protocol.OpPushRegister, Provider: protocol.PushWebPush, Subscription: &sub}, true, nil)
}

// UnregisterPush removes this device's push registration (call it at
// logout); none is not an error.
func (c *Client) UnregisterPush(ctx context.Context) error {
	return c.call(ctx, protocol.Request{Op: protocol.OpPushUnregister}, true, nil)
}
