package pki

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// PEM block types used by this package.
const (
	pemCertificate = "CERTIFICATE"
	pemCSR         = "CERTIFICATE REQUEST"
	pemCSRLegacy   = "NEW CERTIFICATE REQUEST" // written by old OpenSSL versions
	pemPKCS8       = "PRIVATE KEY"
	pemSEC1        = "EC PRIVATE KEY"
	pemPKCS1       = "RSA PRIVATE KEY"
	pemECParams    = "EC PARAMETERS" // written by "openssl ecparam -genkey"
)

var errNoPEM = errors.New("no PEM block found")

// EncodeCertPEM returns cert as a PEM "CERTIFICATE" block.
func EncodeCertPEM(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: cert.Raw})
}

// ParseCertPEM parses the first PEM block of data, which must be a
// CERTIFICATE. Any data after the first block is ignored.
func ParseCertPEM(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("parsing certificate: %w", errNoPEM)
	}
	return parseCertBlock(block)
}

// ParseCertsPEM parses every PEM block of data; all of them must be
// CERTIFICATE blocks and there must be at least one.
func ParseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		cert, err := parseCertBlock(block)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("parsing certificates: %w", errNoPEM)
	}
	return certs, nil
}

func parseCertBlock(block *pem.Block) (*x509.Certificate, error) {
	if block.Type != pemCertificate {
		return nil, fmt.Errorf("parsing certificate: PEM block is %q, want %s", block.Type, pemCertificate)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing certificate: %w", err)
	}
	return cert, nil
}

// ParseCSRPEM parses the first PEM block of data, which must be a
// CERTIFICATE REQUEST, and checks the request's self-signature.
func ParseCSRPEM(data []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("parsing certificate request: %w", errNoPEM)
	}
	if block.Type != pemCSR && block.Type != pemCSRLegacy {
		return nil, fmt.Errorf("parsing certificate request: PEM block is %q, want %s", block.Type, pemCSR)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("checking certificate request signature: %w", err)
	}
	return csr, nil
}

// EncodeKeyPEM returns key as a PKCS#8 PEM "PRIVATE KEY" block.
func EncodeKeyPEM(key crypto.Signer) ([]byte, error) {
	if key == nil {
		return nil, errors.New("encoding private key: key is nil")
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPKCS8, Bytes: der}), nil
}

// ParseKeyPEM parses a PEM private key in PKCS#8 ("PRIVATE KEY": ECDSA, RSA
// or Ed25519), SEC1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY") form.
// Leading "EC PARAMETERS" blocks are skipped; encrypted keys are not
// supported.
func ParseKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("parsing private key: %w", errNoPEM)
		}
		if block.Type == pemECParams {
			continue
		}
		key, err := parseKeyBlock(block)
		if err != nil {
			return nil, fmt.Errorf("parsing private key: %w", err)
		}
		return key, nil
	}
}

func parseKeyBlock(block *pem.Block) (crypto.Signer, error) {
	switch block.Type {
	case pemPKCS8:
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("key type %T cannot sign", key)
		}
		return signer, nil
	case pemSEC1:
		return x509.ParseECPrivateKey(block.Bytes)
	case pemPKCS1:
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block is %q, want %s, %s or %s", block.Type, pemPKCS8, pemSEC1, pemPKCS1)
	}
}

// EncodePublicKeyPEM encodes a public key as a PEM "PUBLIC KEY" block (PKIX), the form
// kube-apiserver reads for service account token verification.
func EncodePublicKeyPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
