package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// Usage selects the extended key usages of an issued certificate.
type Usage int

// Usages; they may be combined, e.g. UsageServer|UsageClient.
const (
	// UsageServer is the TLS server authentication extended key usage.
	UsageServer Usage = 1 << iota
	// UsageClient is the TLS client authentication extended key usage.
	UsageClient
)

// clockSkew is subtracted from the issue time to get NotBefore.
const clockSkew = 5 * time.Minute

// CertOptions describes a certificate issued by Issue or SignCSR.
type CertOptions struct {
	// CommonName is the subject common name; it must be set (for SignCSR it
	// may come from the request instead).
	CommonName string
	// Organization is the subject organization, e.g. a role such as
	// "os:admin" or the Kubernetes group "system:masters".
	Organization []string
	// DNSNames are the DNS subject alternative names.
	DNSNames []string
	// IPAddresses are the IP subject alternative names.
	IPAddresses []net.IP
	// Usage is the extended key usage; it must be non-zero.
	Usage Usage
	// Validity is how long the certificate is valid from Now; it must be
	// positive. The validity is capped at the CA's NotAfter.
	Validity time.Duration
	// Now is the issue time; zero means time.Now(). NotBefore is Now minus
	// five minutes to tolerate clock skew.
	Now time.Time
}

// Issue generates a new ECDSA P-256 key and a certificate for it signed by
// ca. The certificate is not a CA, has key usage DigitalSignature and
// KeyEncipherment, the extended key usages of opts.Usage, its
// AuthorityKeyId set to the CA's SubjectKeyId, and a NotAfter no later than
// the CA's.
func Issue(ca *KeyPair, opts CertOptions) (*KeyPair, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("issuing certificate: %w", err)
	}
	key, keyPEM, err := NewKey()
	if err != nil {
		return nil, fmt.Errorf("issuing certificate %q: %w", opts.CommonName, err)
	}
	cert, err := sign(ca, opts, key.Public())
	if err != nil {
		return nil, fmt.Errorf("issuing certificate %q: %w", opts.CommonName, err)
	}
	return &KeyPair{Cert: cert, Key: key, CertPEM: EncodeCertPEM(cert), KeyPEM: keyPEM}, nil
}

// SignCSR signs the public key of the PEM certificate request csrPEM with ca
// and returns the certificate as PEM. The request's signature is checked.
// opts gives the usage and validity as for Issue. The subject (CommonName and
// Organization together) comes from opts when either field is set, otherwise
// from the request; likewise the SANs (DNSNames and IPAddresses together).
// Other SANs of the request (e-mail, URI) are never copied. Callers that must
// not trust the request's contents should therefore set the subject and SANs
// in opts.
func SignCSR(ca *KeyPair, csrPEM []byte, opts CertOptions) ([]byte, error) {
	csr, err := ParseCSRPEM(csrPEM)
	if err != nil {
		return nil, fmt.Errorf("signing certificate request: %w", err)
	}
	if opts.CommonName == "" && len(opts.Organization) == 0 {
		opts.CommonName = csr.Subject.CommonName
		opts.Organization = csr.Subject.Organization
	}
	if len(opts.DNSNames) == 0 && len(opts.IPAddresses) == 0 {
		opts.DNSNames = csr.DNSNames
		opts.IPAddresses = csr.IPAddresses
	}
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("signing certificate request: %w", err)
	}
	cert, err := sign(ca, opts, csr.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("signing certificate request %q: %w", opts.CommonName, err)
	}
	return EncodeCertPEM(cert), nil
}

// NewCSR creates a PEM certificate request ("CERTIFICATE REQUEST") signed by
// key with the given subject and SANs.
func NewCSR(key crypto.Signer, commonName string, organization []string, dnsNames []string, ips []net.IP) ([]byte, error) {
	if key == nil {
		return nil, errors.New("creating certificate request: private key is nil")
	}
	tmpl := &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: commonName, Organization: organization},
		DNSNames:    dnsNames,
		IPAddresses: ips,
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("creating certificate request %q: %w", commonName, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemCSR, Bytes: der}), nil
}

// Verify checks that cert chains to ca and is valid for usage (every usage
// when several are combined) at time now; zero now means time.Now(). usage
// must be non-zero.
func Verify(ca *x509.Certificate, cert *x509.Certificate, usage Usage, now time.Time) error {
	if ca == nil || cert == nil {
		return errors.New("verifying certificate: certificate or CA is nil")
	}
	if err := usage.validate(); err != nil {
		return fmt.Errorf("verifying certificate %q: %w", cert.Subject.CommonName, err)
	}
	if now.IsZero() {
		now = time.Now()
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	// x509 accepts a chain valid for any of the requested usages, so check
	// each one on its own.
	for _, eku := range usage.extKeyUsages() {
		_, err := cert.Verify(x509.VerifyOptions{
			Roots:       roots,
			CurrentTime: now,
			KeyUsages:   []x509.ExtKeyUsage{eku},
		})
		if err != nil {
			return fmt.Errorf("verifying certificate %q against CA %q: %w", cert.Subject.CommonName, ca.Subject.CommonName, err)
		}
	}
	return nil
}

func (u Usage) validate() error {
	if u == 0 {
		return errors.New("usage is not set: want UsageServer, UsageClient or both")
	}
	if u&^(UsageServer|UsageClient) != 0 {
		return fmt.Errorf("unknown usage %#x", int(u))
	}
	return nil
}

func (u Usage) extKeyUsages() []x509.ExtKeyUsage {
	var ekus []x509.ExtKeyUsage
	if u&UsageServer != 0 {
		ekus = append(ekus, x509.ExtKeyUsageServerAuth)
	}
	if u&UsageClient != 0 {
		ekus = append(ekus, x509.ExtKeyUsageClientAuth)
	}
	return ekus
}

func (o *CertOptions) validate() error {
	if o.CommonName == "" {
		return errors.New("common name is empty")
	}
	if o.Validity <= 0 {
		return fmt.Errorf("validity must be positive, got %s", o.Validity)
	}
	return o.Usage.validate()
}

// sign creates a leaf certificate for pub described by opts, signed by ca.
func sign(ca *KeyPair, opts CertOptions, pub crypto.PublicKey) (*x509.Certificate, error) {
	if err := checkIssuer(ca); err != nil {
		return nil, err
	}
	notBefore, notAfter := validityPeriod(opts.Now, opts.Validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	if !notAfter.After(notBefore) {
		return nil, fmt.Errorf("CA %q expired at %s", ca.Cert.Subject.CommonName, ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: opts.CommonName, Organization: opts.Organization},
		DNSNames:              opts.DNSNames,
		IPAddresses:           opts.IPAddresses,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           opts.Usage.extKeyUsages(),
		BasicConstraintsValid: true,
		AuthorityKeyId:        ca.Cert.SubjectKeyId,
	}
	return createCert(tmpl, ca.Cert, pub, ca.Key)
}

// createCert fills in the serial number and SubjectKeyId of tmpl, signs it
// with parent and signer, and parses the result.
func createCert(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	var err error
	if tmpl.SerialNumber, err = newSerial(); err != nil {
		return nil, err
	}
	if tmpl.SubjectKeyId, err = subjectKeyID(pub); err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("creating certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing created certificate: %w", err)
	}
	return cert, nil
}

// validityPeriod returns NotBefore and NotAfter for a certificate issued at
// now (zero means time.Now()) and valid for validity.
func validityPeriod(now time.Time, validity time.Duration) (time.Time, time.Time) {
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC().Truncate(time.Second)
	return now.Add(-clockSkew), now.Add(validity)
}

// newSerial returns a random positive 128-bit serial number.
func newSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("generating serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// subjectKeyID computes a key identifier as in RFC 7093 section 2 method 1:
// the leftmost 160 bits of the SHA-256 hash of the subjectPublicKey bits.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding public key: %w", err)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("decoding public key: %w", err)
	}
	sum := sha256.Sum256(spki.PublicKey.Bytes)
	return sum[:20], nil
}
