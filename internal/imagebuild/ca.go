package imagebuild

import (
	"bytes"
	"encoding/pem"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// CABundlePath is where the images keep their CA roots: Debian's path, which Go's
// crypto/x509 reads.
const CABundlePath = "/etc/ssl/certs/ca-certificates.crt"

// CABundle returns the PEM CA roots the images carry: the Mozilla NSS roots of the
// golang.org/x/crypto/x509roots/fallback module pinned in go.mod, in the module's order,
// so that the file is the same on every build machine (the host's own
// /etc/ssl/certs/ca-certificates.crt depends on its ca-certificates package). Roots with a
// constraint that a PEM file cannot express (a distrust-after date) are left out.
func CABundle() []byte {
	var b bytes.Buffer
	b.WriteString("# Mozilla NSS roots from golang.org/x/crypto/x509roots/fallback (pinned in Plinth's go.mod)\n")
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue
		}
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate})
	}
	return b.Bytes()
}
