package retention

import "errors"

// ErrInvalid is a Config the role cannot run with.
var ErrInvalid = errors.New("retention: invalid configuration")
