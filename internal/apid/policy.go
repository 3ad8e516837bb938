package apid

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// PolicyFileName is the file in the identity directory that machined writes with what apid
// must know of the cluster: the nodes it may forward to and the revoked certificates.
const PolicyFileName = "policy.json"

// Policy is the content of the policy file.
type Policy struct {
	// Members are the names and addresses of the cluster's nodes that this node may
	// forward requests to. A request naming anything else is refused without any
	// connection attempt, so a caller cannot use apid to probe the network.
	Members []string `json:"members"`
	// RevokedSerials are the serial numbers (hexadecimal, as `openssl x509 -serial` and
	// `plinthctl config info` show them) of client certificates that are refused, whether
	// they connect directly or are forwarded by another node.
	RevokedSerials []string `json:"revokedSerials"`
}

// NormalizeSerial returns a serial number in the form Policy compares: lower-case
// hexadecimal without leading zeros or separators. It accepts "0x1A:2b", "1a2b", ...
func NormalizeSerial(s string) (string, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimPrefix(t, "0x")
	t = strings.NewReplacer(":", "", "-", "", " ", "").Replace(t)
	n, ok := new(big.Int).SetString(t, 16)
	if !ok || t == "" {
		return "", fmt.Errorf("serial %q is not a hexadecimal number (as `plinthctl config info` prints it)", s)
	}
	return n.Text(16), nil
}

// SerialString is the form of a certificate's serial that Policy compares.
func SerialString(n *big.Int) string { return n.Text(16) }

// policySource serves the current policy from its file, rereading it at most once per
// second when it changed. A missing file is an empty policy (no member, nothing revoked);
// a file that cannot be read keeps the last good policy and logs why.
type policySource struct {
	path string
	log  *slog.Logger

	mu      sync.Mutex
	checked time.Time
	mtime   time.Time
	size    int64
	members []string
	revoked map[string]bool
}

func (p *policySource) current() (members []string, revoked map[string]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.path != "" && time.Since(p.checked) >= time.Second {
		p.checked = time.Now()
		if err := p.reload(); err != nil {
			p.log.Warn("policy file", "error", err)
		}
	}
	return p.members, p.revoked
}

// reload rereads the file when its modification time or size changed; p.mu is held.
func (p *policySource) reload() error {
	st, err := os.Stat(p.path)
	if errors.Is(err, fs.ErrNotExist) {
		p.members, p.revoked, p.mtime, p.size = nil, nil, time.Time{}, 0
		return nil
	}
	if err != nil {
		return err
	}
	if st.ModTime().Equal(p.mtime) && st.Size() == p.size && p.revoked != nil {
		return nil
	}
	data, err := os.ReadFile(p.path)
	if err != nil {
		return err
	}
	var pol Policy
	if err := json.Unmarshal(data, &pol); err != nil {
		return fmt.Errorf("%s: %w", p.path, err)
	}
	revoked := map[string]bool{}
	for _, s := range pol.RevokedSerials {
		n, err := NormalizeSerial(s)
		if err != nil {
			return fmt.Errorf("%s: %w", p.path, err)
		}
		revoked[n] = true
	}
	p.members, p.revoked = slices.Clone(pol.Members), revoked
	p.mtime, p.size = st.ModTime(), st.Size()
	return nil
}
