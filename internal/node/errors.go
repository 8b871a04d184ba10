package node

import (
	"errors"
	"fmt"
)

// SettingError is a start-up failure caused by one setting: the binary prints
// it as one line and exits 2.
type SettingError struct {
	// Setting names the flag and environment variable, e.g. "--http (NATTER_HTTP_ADDR)".
	Setting string
	Err     error
}

func (e *SettingError) Error() string { return e.Setting + ": " + e.Err.Error() }
func (e *SettingError) Unwrap() error { return e.Err }

// Setting names used in SettingError; the flag names are defined in cmd/natter.
const (
	SettingData      = "--data (NATTER_DATA)"
	SettingNATSURL   = "--nats-url (NATTER_NATS_URL)"
	SettingNATSPort  = "--nats-port (NATTER_NATS_PORT)"
	SettingNATSCreds = "--nats-creds (NATTER_NATS_CREDS)"
	SettingNATSTLS   = "--nats-tls-* (NATTER_NATS_TLS_*)"
	SettingNATSNkey  = "--nats-nkey (NATTER_NATS_NKEY)"
	SettingMongoURI  = "--mongo-uri (NATTER_MONGO_URI)"
	SettingHTTP      = "--http (NATTER_HTTP_ADDR)"
	SettingAdmin     = "--admin (NATTER_ADMIN_ADDR)"
	SettingRoles     = "--roles (NATTER_ROLES)"
	SettingAuth      = "--jwt-* (NATTER_JWT_*)"
	SettingWebhooks  = "--webhooks (NATTER_WEBHOOKS)"
	SettingAdminAuth = "--admin-token-file (NATTER_ADMIN_TOKEN_FILE)"
	SettingPush      = "--push-* (NATTER_PUSH_*)"
	SettingAttachS3  = "--attachments-s3-* (NATTER_ATTACHMENTS_S3_*)"
	SettingRetention = "--retention-* (NATTER_RETENTION_*)"
	SettingTLS       = "--tls-cert, --tls-key (NATTER_TLS_CERT, NATTER_TLS_KEY)"
)

func settingErr(setting string, format string, args ...any) error {
	return &SettingError{Setting: setting, Err: fmt.Errorf(format, args...)}
}

// ErrShutdown is returned by Shutdown when the node did not stop in time.
var ErrShutdown = errors.New("node: shutdown timed out")

// ErrDataDirInUse is returned by Start (in a *SettingError for --data) when
// another process, or another node of this process, runs on the same data
// dir.
var ErrDataDirInUse = errors.New("data dir in use")
