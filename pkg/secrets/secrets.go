// Package secrets generates, stores and loads a cluster's secrets bundle: every CA, key and
// token a cluster needs. Generated once, a bundle makes configuration generation
// repeatable: configs generated twice from one bundle share every secret.
package secrets

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"time"

	"github.com/plinthos/plinth/internal/yamlx"
	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/pki"
)

// Kind is the kind of a secrets bundle document.
const Kind = "SecretsBundle"

// CAValidity is how long generated CAs are valid.
const CAValidity = 10 * 365 * 24 * time.Hour

// Bundle holds every secret of a cluster.
type Bundle struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	// Cluster identifies the cluster.
	Cluster ClusterIdentity `yaml:"cluster"`
	// Tokens are the join token, the Kubernetes bootstrap token and the secrets
	// encryption key.
	Tokens Tokens `yaml:"tokens"`
	// CAs are the cluster's certificate authorities, with their keys.
	CAs CAs `yaml:"cas"`
	// ServiceAccountKey is the PEM key that signs service account tokens.
	ServiceAccountKey config.Base64 `yaml:"serviceAccountKey"`
}

// ClusterIdentity is the cluster's id and shared secret.
type ClusterIdentity struct {
	ID     string `yaml:"id"`
	Secret string `yaml:"secret"`
}

// Tokens are the cluster's shared tokens.
type Tokens struct {
	Join                      string `yaml:"join"`
	Bootstrap                 string `yaml:"bootstrap"`
	SecretboxEncryptionSecret string `yaml:"secretboxEncryptionSecret"`
}

// CAs are the cluster's certificate authorities.
type CAs struct {
	OS         config.CertAndKey `yaml:"os"`
	Kubernetes config.CertAndKey `yaml:"kubernetes"`
	Etcd       config.CertAndKey `yaml:"etcd"`
	Aggregator config.CertAndKey `yaml:"aggregator"`
}

// Generate creates a new bundle. now is the start of the CAs' validity (zero: the
// current time).
func Generate(now time.Time) (*Bundle, error) {
	b := &Bundle{APIVersion: config.APIVersion, Kind: Kind}
	var err error
	if b.Cluster.ID, err = randomBase64(32); err != nil {
		return nil, err
	}
	if b.Cluster.Secret, err = randomBase64(32); err != nil {
		return nil, err
	}
	if b.Tokens.Join, err = NewToken(); err != nil {
		return nil, err
	}
	if b.Tokens.Bootstrap, err = NewToken(); err != nil {
		return nil, err
	}
	if b.Tokens.SecretboxEncryptionSecret, err = randomBase64(32); err != nil {
		return nil, err
	}
	for _, ca := range []struct {
		dst  *config.CertAndKey
		cn   string
		orgs []string
	}{
		{&b.CAs.OS, "plinth-os-ca", []string{"plinth"}},
		{&b.CAs.Kubernetes, "kubernetes", nil},
		{&b.CAs.Etcd, "etcd-ca", nil},
		{&b.CAs.Aggregator, "front-proxy-ca", nil},
	} {
		kp, err := pki.NewCA(pki.CAOptions{CommonName: ca.cn, Organization: ca.orgs, Validity: CAValidity, Now: now})
		if err != nil {
			return nil, fmt.Errorf("generate %s: %w", ca.cn, err)
		}
		*ca.dst = config.CertAndKey{Crt: kp.CertPEM, Key: kp.KeyPEM}
	}
	if _, b.ServiceAccountKey, err = pki.NewKey(); err != nil {
		return nil, fmt.Errorf("generate service account key: %w", err)
	}
	return b, nil
}

// Validate checks that every secret is present and well formed.
func (b *Bundle) Validate() error {
	if b.APIVersion != config.APIVersion || b.Kind != Kind {
		return fmt.Errorf("not a secrets bundle: want apiVersion %s and kind %s, got %q and %q", config.APIVersion, Kind, b.APIVersion, b.Kind)
	}
	if b.Cluster.ID == "" || b.Cluster.Secret == "" {
		return fmt.Errorf("cluster id and secret are required")
	}
	for name, tok := range map[string]string{"join": b.Tokens.Join, "bootstrap": b.Tokens.Bootstrap} {
		if !config.TokenPattern.MatchString(tok) {
			return fmt.Errorf("tokens.%s %q is not a token of the form abcdef.0123456789abcdef", name, tok)
		}
	}
	if raw, err := base64.StdEncoding.DecodeString(b.Tokens.SecretboxEncryptionSecret); err != nil || len(raw) != 32 {
		return fmt.Errorf("tokens.secretboxEncryptionSecret must be 32 bytes in base64")
	}
	for name, ca := range map[string]config.CertAndKey{"os": b.CAs.OS, "kubernetes": b.CAs.Kubernetes, "etcd": b.CAs.Etcd, "aggregator": b.CAs.Aggregator} {
		if _, err := pki.LoadCA(ca.Crt, ca.Key); err != nil {
			return fmt.Errorf("cas.%s: %w", name, err)
		}
	}
	if _, err := pki.ParseKeyPEM(b.ServiceAccountKey); err != nil {
		return fmt.Errorf("serviceAccountKey: %w", err)
	}
	return nil
}

// Marshal encodes the bundle as YAML.
func (b *Bundle) Marshal() ([]byte, error) {
	out, err := yamlx.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encode secrets bundle: %w", err)
	}
	return out, nil
}

// Load decodes and validates a bundle; unknown fields are errors.
func Load(data []byte) (*Bundle, error) {
	var b Bundle
	if err := yamlx.UnmarshalStrict(data, &b); err != nil {
		return nil, fmt.Errorf("decode secrets bundle: %w", err)
	}
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("invalid secrets bundle: %w", err)
	}
	return &b, nil
}

// LoadFile reads a bundle from a file.
func LoadFile(path string) (*Bundle, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read secrets bundle: %w", err)
	}
	b, err := Load(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// NewToken returns a random token of the form abcdef.0123456789abcdef.
func NewToken() (string, error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	// Bytes at or above 252 (7*36) are dropped so every character is equally likely.
	const limit = 256 / len(alphabet) * len(alphabet)
	out := make([]byte, 0, 23)
	buf := make([]byte, 32)
	for len(out) < 23 {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("generate token: %w", err)
		}
		for _, c := range buf {
			if len(out) == 6 {
				out = append(out, '.')
			}
			if int(c) < limit && len(out) < 23 {
				out = append(out, alphabet[int(c)%len(alphabet)])
			}
		}
	}
	return string(out), nil
}

func randomBase64(n int) (string, error) {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return base64.StdEncoding.EncodeToString(buf), nil
}
