package webhooks_test

import (
	"io"
	"net/http"

	"github.com/natter-im/natter/workers/webhooks"
)

// A receiver checks the signature over the raw body before it decodes it,
// and deduplicates on the event id (delivery is at least once).
func ExampleVerify() {
	secret := "the endpoint's secret, 16+ bytes"
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hooks/natter", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read error", http.StatusBadRequest)
			return
		}
		err = webhooks.Verify(secret, r.Header.Get(webhooks.HeaderTimestamp), body, r.Header.Get(webhooks.HeaderSignature), 0)
		if err != nil {
			// A 4xx other than 408/425/429 is permanent: natter
			// dead-letters the event instead of retrying it.
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		_ = r.Header.Get(webhooks.HeaderEventID) // skip it if already handled
		// ... decode and handle body ...
		w.WriteHeader(http.StatusNoContent)
	})
	_ = mux // serve it: http.ListenAndServe(addr, mux)
}
