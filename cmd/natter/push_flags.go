package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/natter-im/natter/internal/cli"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/workers/push"
)

// pushFlags configure the push role's providers. Credentials come from
// files only, and neither they nor their contents are ever logged.
type pushFlags struct {
	apnsKeyFile, apnsKeyID, apnsTeamID, apnsTopic string
	apnsSandbox                                   bool
	fcmCredentialsFile                            string
	vapidKeyFile, vapidSubject                    string
	preview, skipOnlineUsers                      bool
	maxAge                                        time.Duration
}

func (p *pushFlags) register(fs *cli.FlagSet) {
	fs.String(&p.apnsKeyFile, "push-apns-key-file", "NATTER_PUSH_APNS_KEY_FILE", "", "APNs token signing key (.p8 from Apple); empty = no APNs")
	fs.String(&p.apnsKeyID, "push-apns-key-id", "NATTER_PUSH_APNS_KEY_ID", "", "APNs key id (the JWT kid)")
	fs.String(&p.apnsTeamID, "push-apns-team-id", "NATTER_PUSH_APNS_TEAM_ID", "", "Apple developer team id (the JWT iss)")
	fs.String(&p.apnsTopic, "push-apns-topic", "NATTER_PUSH_APNS_TOPIC", "", "the iOS app's bundle id (apns-topic)")
	fs.Bool(&p.apnsSandbox, "push-apns-sandbox", "NATTER_PUSH_APNS_SANDBOX", false, "send to the APNs development server (apps built for development)")
	fs.String(&p.fcmCredentialsFile, "push-fcm-credentials-file", "NATTER_PUSH_FCM_CREDENTIALS_FILE", "", "Firebase service account key (JSON); empty = no FCM")
	fs.String(&p.vapidKeyFile, "push-webpush-vapid-key-file", "NATTER_PUSH_WEBPUSH_VAPID_KEY_FILE", "", "VAPID private key (PEM, or the base64url key web-push tools print); empty = no Web Push")
	fs.String(&p.vapidSubject, "push-webpush-subject", "NATTER_PUSH_WEBPUSH_SUBJECT", "", "VAPID contact: a mailto: or https: URL (required with a VAPID key)")
	fs.Bool(&p.preview, "push-preview", "NATTER_PUSH_PREVIEW", false, "put message bodies in notifications (off: the text is \""+push.DefaultText+"\" and bodies never reach the push services)")
	fs.Bool(&p.skipOnlineUsers, "push-skip-online-users", "NATTER_PUSH_SKIP_ONLINE_USERS", false, "push to no device of a user connected on any device (off: every device without a socket gets a push)")
	fs.Duration(&p.maxAge, "push-max-age", "NATTER_PUSH_MAX_AGE", time.Hour, "messages older than this are not pushed (a backlog after an outage)", cli.Positive[time.Duration]())
}

func (p *pushFlags) apply(cfg *node.Config) error {
	c := node.PushConfig{Preview: p.preview, SkipOnlineUsers: p.skipOnlineUsers, MaxAge: p.maxAge}
	if p.apnsKeyFile != "" {
		key, err := readSecretFile("push-apns-key-file", "NATTER_PUSH_APNS_KEY_FILE", p.apnsKeyFile)
		if err != nil {
			return err
		}
		if p.apnsKeyID == "" || p.apnsTeamID == "" || p.apnsTopic == "" {
			return usageError{errors.New("--push-apns-key-file needs --push-apns-key-id, --push-apns-team-id and --push-apns-topic")}
		}
		c.APNs = &push.APNsConfig{Key: key, KeyID: p.apnsKeyID, TeamID: p.apnsTeamID, Topic: p.apnsTopic}
		if p.apnsSandbox {
			c.APNs.Endpoint = push.APNsSandbox
		}
	}
	if p.fcmCredentialsFile != "" {
		sa, err := readSecretFile("push-fcm-credentials-file", "NATTER_PUSH_FCM_CREDENTIALS_FILE", p.fcmCredentialsFile)
		if err != nil {
			return err
		}
		c.FCM = &push.FCMConfig{ServiceAccount: sa}
	}
	if p.vapidKeyFile != "" {
		key, err := readSecretFile("push-webpush-vapid-key-file", "NATTER_PUSH_WEBPUSH_VAPID_KEY_FILE", p.vapidKeyFile)
		if err != nil {
			return err
		}
		c.WebPush = &push.WebPushConfig{PrivateKey: key, Subject: p.vapidSubject}
	}
	cfg.Push = c
	return nil
}

// readSecretFile reads a credentials file; the error names the flag and
// the file, never its contents.
func readSecretFile(flag, env, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageError{fmt.Errorf("--%s (%s): %w", flag, env, err)}
	}
	if len(b) == 0 {
		return nil, usageError{fmt.Errorf("--%s (%s): %s is empty", flag, env, path)}
	}
	return b, nil
}
