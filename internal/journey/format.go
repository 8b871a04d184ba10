package journey

import (
	"fmt"
	"io"
	"strings"
)

// timeFormat is how a report prints times: UTC, milliseconds.
const timeFormat = "2006-01-02T15:04:05.000Z"

// WriteText writes r for a person: one fact a line, each marked "exact"
// (what the data says as it is), "by" (an upper bound: it happened at or
// before that time), "yes" (it happened; when is not kept), "no" (not yet)
// or "none".
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	m := r.Msg
	fmt.Fprintf(&b, "message %s seq %d: id %s from %s (cmid %s, type %s)\n", r.Conv, r.Seq, m.ID, m.From, m.Cmid, m.Type)
	if r.HotTier {
		fmt.Fprintf(&b, "appended   exact  %s  MSGS stream seq %d (JetStream's store time; the edge's clock said %s)\n",
			r.Appended.Format(timeFormat), r.StreamSeq, r.AppendedTS.Format(timeFormat))
	} else {
		fmt.Fprintf(&b, "appended   exact  %s  (the edge's clock; the entry is trimmed from the hot tier)\n", r.AppendedTS.Format(timeFormat))
	}
	switch {
	case r.Edge != "":
		fmt.Fprintf(&b, "           edge   %s (recorded: the send was sampled for tracing)\n", r.Edge)
	default:
		fmt.Fprintf(&b, "           edge   not recorded (only sends sampled for tracing record it)\n")
	}
	if r.TraceParent != "" {
		fmt.Fprintf(&b, "           trace  %s (look it up in your tracing backend)\n", traceID(r.TraceParent))
	}
	a := r.Archive
	switch {
	case !r.HotTier:
		fmt.Fprintf(&b, "archived   yes    (trimmed from the hot tier, read from the archive; time not kept)\n")
	case a.Persisted && !a.By.IsZero():
		fmt.Fprintf(&b, "archived   by     %s  persist's ack floor at stream seq %d >= %d (time of its last ack)%s\n",
			a.By.Format(timeFormat), a.Floor, r.StreamSeq, stored(a.Stored))
	case a.Persisted:
		fmt.Fprintf(&b, "archived   yes    persist's ack floor at stream seq %d >= %d%s\n", a.Floor, r.StreamSeq, stored(a.Stored))
	case a.Stored:
		fmt.Fprintf(&b, "archived   yes    the archive holds it; persist's ack floor (stream seq %d) is not past it yet\n", a.Floor)
	default:
		fmt.Fprintf(&b, "archived   no     persist's ack floor at stream seq %d < %d (not archived yet)\n", a.Floor, r.StreamSeq)
	}
	fmt.Fprintf(&b, "members    %d", r.Members)
	if r.CursorsOf < r.Members {
		fmt.Fprintf(&b, " (cursors of the first %d read)", r.CursorsOf)
	}
	b.WriteString("\n")
	if len(r.Delivered) == 0 {
		b.WriteString("delivered  none   no member device has acknowledged anything in this conversation\n")
	}
	for _, d := range r.Delivered {
		if d.Passed {
			fmt.Fprintf(&b, "delivered  by     %s  %s/%s (delivered cursor %d >= %d, last written then)\n", d.By.Format(timeFormat), d.User, d.Device, d.Cursor, r.Seq)
		} else {
			fmt.Fprintf(&b, "delivered  no     %s/%s (delivered cursor %d < %d: not acknowledged yet)\n", d.User, d.Device, d.Cursor, r.Seq)
		}
	}
	if len(r.Read) == 0 {
		b.WriteString("read       none   no member has a read cursor in this conversation\n")
	}
	for _, rd := range r.Read {
		if rd.Passed {
			fmt.Fprintf(&b, "read       by     %s  %s (read cursor %d >= %d, last written then)\n", rd.By.Format(timeFormat), rd.User, rd.Cursor, r.Seq)
		} else {
			fmt.Fprintf(&b, "read       no     %s (read cursor %d < %d: not read yet)\n", rd.User, rd.Cursor, r.Seq)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func stored(ok bool) string {
	if ok {
		return "; the archive holds it"
	}
	return "; not found in the archive"
}

// traceID returns the trace id of a traceparent (version-traceid-spanid-flags).
func traceID(tp string) string {
	parts := strings.Split(tp, "-")
	if len(parts) == 4 {
		return parts[1]
	}
	return tp
}
