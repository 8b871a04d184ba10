package capacity

import "errors"

// ErrLoad reports a load the model cannot plan for (a field out of range);
// the error names the field.
var ErrLoad = errors.New("capacity: bad load")
