package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
)

// KeyPair is a certificate with its private key, both also PEM-encoded.
type KeyPair struct {
	Cert    *x509.Certificate
	Key     crypto.Signer // nil when only the certificate is known
	CertPEM []byte
	KeyPEM  []byte // nil when Key is nil
}

// NewKey generates an ECDSA P-256 key and returns it with its PEM encoding
// (PKCS#8, "PRIVATE KEY").
func NewKey() (crypto.Signer, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating ECDSA P-256 key: %w", err)
	}
	keyPEM, err := EncodeKeyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return key, keyPEM, nil
}

// KeyMatchesCert returns nil when key is the private key of cert's public
// key, else an error saying they do not match.
func KeyMatchesCert(cert *x509.Certificate, key crypto.Signer) error {
	if cert == nil {
		return errors.New("certificate does not match private key: certificate is nil")
	}
	if key == nil {
		return errors.New("certificate does not match private key: private key is nil")
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return fmt.Errorf("certificate does not match private key: unsupported key type %T", key)
	}
	if !pub.Equal(cert.PublicKey) {
		return fmt.Errorf("certificate does not match private key: certificate %q has a different public key", cert.Subject.CommonName)
	}
	return nil
}

// LoadKeyPair parses a PEM certificate (the first block of certPEM) and an
// optional PEM private key, and checks that they match. When keyPEM is empty
// the returned KeyPair has no key. CertPEM and KeyPEM of the result are
// re-encoded, so KeyPEM is always PKCS#8.
func LoadKeyPair(certPEM, keyPEM []byte) (*KeyPair, error) {
	cert, err := ParseCertPEM(certPEM)
	if err != nil {
		return nil, err
	}
	kp := &KeyPair{Cert: cert, CertPEM: EncodeCertPEM(cert)}
	if len(keyPEM) == 0 {
		return kp, nil
	}
	key, err := ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	if err := KeyMatchesCert(cert, key); err != nil {
		return nil, err
	}
	kp.Key = key
	if kp.KeyPEM, err = EncodeKeyPEM(key); err != nil {
		return nil, err
	}
	return kp, nil
}
