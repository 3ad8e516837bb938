package pki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"time"
)

// CAOptions describes a certificate authority created by NewCA.
type CAOptions struct {
	// CommonName is the subject common name of the CA; it must be set.
	CommonName string
	// Organization is the optional subject organization.
	Organization []string
	// Validity is how long the CA is valid from Now, e.g. 10 years; it must
	// be positive.
	Validity time.Duration
	// Now is the issue time; zero means time.Now(). NotBefore is Now minus
	// five minutes to tolerate clock skew.
	Now time.Time
}

// caKeyUsage is the key usage of every CA created by NewCA.
const caKeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature

// NewCA creates a self-signed CA with a new ECDSA P-256 key. The certificate
// has IsCA and BasicConstraintsValid set, key usage CertSign, CRLSign and
// DigitalSignature, a SubjectKeyId and a random positive 128-bit serial.
func NewCA(opts CAOptions) (*KeyPair, error) {
	if opts.CommonName == "" {
		return nil, errors.New("creating CA: common name is empty")
	}
	if opts.Validity <= 0 {
		return nil, fmt.Errorf("creating CA %q: validity must be positive, got %s", opts.CommonName, opts.Validity)
	}
	key, keyPEM, err := NewKey()
	if err != nil {
		return nil, fmt.Errorf("creating CA %q: %w", opts.CommonName, err)
	}
	notBefore, notAfter := validityPeriod(opts.Now, opts.Validity)
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: opts.CommonName, Organization: opts.Organization},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              caKeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	cert, err := createCert(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("creating CA %q: %w", opts.CommonName, err)
	}
	return &KeyPair{Cert: cert, Key: key, CertPEM: EncodeCertPEM(cert), KeyPEM: keyPEM}, nil
}

// LoadCA is LoadKeyPair for a CA: it also checks that the certificate is a CA
// (IsCA with the CertSign key usage) and that the private key is present.
func LoadCA(certPEM, keyPEM []byte) (*KeyPair, error) {
	if len(keyPEM) == 0 {
		return nil, errors.New("loading CA: private key is missing")
	}
	kp, err := LoadKeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("loading CA: %w", err)
	}
	if err := checkCA(kp.Cert); err != nil {
		return nil, fmt.Errorf("loading CA: %w", err)
	}
	return kp, nil
}

// checkCA checks that cert may sign certificates.
func checkCA(cert *x509.Certificate) error {
	if !cert.IsCA {
		return fmt.Errorf("certificate %q is not a CA", cert.Subject.CommonName)
	}
	if cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("CA certificate %q lacks the certificate signing key usage", cert.Subject.CommonName)
	}
	return nil
}

// checkIssuer checks that ca is a CA with a matching private key.
func checkIssuer(ca *KeyPair) error {
	if ca == nil || ca.Cert == nil {
		return errors.New("CA certificate is missing")
	}
	if ca.Key == nil {
		return fmt.Errorf("CA %q has no private key", ca.Cert.Subject.CommonName)
	}
	if err := checkCA(ca.Cert); err != nil {
		return err
	}
	return KeyMatchesCert(ca.Cert, ca.Key)
}
