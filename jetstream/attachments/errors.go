package attachments

import "errors"

var (
	// ErrNotFound: no such attachment, object or message list.
	ErrNotFound = errors.New("attachments: not found")
	// ErrQuota: the user's stored bytes would pass the quota.
	ErrQuota = errors.New("attachments: quota exceeded")
	// ErrInvalidID: not an attachment id (NewID).
	ErrInvalidID = errors.New("attachments: invalid id")
)
