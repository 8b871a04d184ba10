package node

import (
	"crypto/tls"
	"time"

	"github.com/natter-im/natter/internal/certreload"
)

// EdgeTLS serves the edge's listener (HTTPAddr) over TLS.
type EdgeTLS struct {
	// CertFile is the PEM certificate chain, leaf first. Empty (with
	// KeyFile empty) means plain HTTP.
	CertFile string
	// KeyFile is the PEM private key of the leaf.
	KeyFile string
	// ReloadInterval is how often both files are read; a changed pair is
	// served to every new connection from then on, while the connections
	// up keep theirs. A changed pair that does not load is logged and the
	// previous one kept. Zero means 5s.
	ReloadInterval time.Duration
}

func (t EdgeTLS) on() bool { return t.CertFile != "" || t.KeyFile != "" }

// serveTLS wraps n.ln in TLS with the pair of cfg.EdgeTLS, watched for
// changes until Shutdown.
func (n *Node) serveTLS() error {
	t := n.cfg.EdgeTLS
	if t.CertFile == "" || t.KeyFile == "" {
		return settingErr(SettingTLS, "give both the certificate and the key file (got cert %q, key %q)", t.CertFile, t.KeyFile)
	}
	r, err := certreload.Load(certreload.Config{CertFile: t.CertFile, KeyFile: t.KeyFile, Interval: t.ReloadInterval,
		Logger: n.log.With("component", "tls")})
	if err != nil {
		return settingErr(SettingTLS, "%v", err)
	}
	r.Start()
	n.certs = r
	n.ln = tls.NewListener(n.ln, r.TLSConfig())
	return nil
}

// scheme is "https" when the edge serves TLS, else "http".
func (n *Node) scheme() string {
	if n.certs != nil {
		return "https"
	}
	return "http"
}

// TLSCertificate is the certificate the edge serves now; nil without TLS.
func (n *Node) TLSCertificate() *tls.Certificate {
	if n.certs == nil {
		return nil
	}
	return n.certs.Certificate()
}
