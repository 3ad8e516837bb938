package machined

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/plinthos/plinth/internal/apid"
	"github.com/plinthos/plinth/internal/atomicfile"
	"github.com/plinthos/plinth/internal/backoff"
	"github.com/plinthos/plinth/internal/k8s/csrapprove"
	"github.com/plinthos/plinth/internal/k8s/kubeclient"
	"github.com/plinthos/plinth/internal/k8s/objects"
)

// apidPolicy keeps apid's policy file (internal/apid.Policy) current: the cluster members
// this node may forward requests to, and the revoked client certificates. Members come
// from two sources: nodes that this control plane's trustd certified and, on Kubernetes
// nodes, the addresses of the cluster's Node objects (their InternalIP and ExternalIP
// addresses). Both are kept on the state directory across reboots: when the Kubernetes API
// is down after a reboot (etcd lost, being recovered), the node still forwards to the
// members it knew.
type apidPolicy struct {
	path      string // the policy file apid reads
	issuedLog string // where the addresses certified by trustd are kept
	k8sLog    string // where the members last learnt from Kubernetes are kept
	owner     *[2]int
	log       *slog.Logger

	mu       sync.Mutex
	self     []string
	issued   []string
	k8s      []string
	revoked  []string
	lastData []byte
}

func newAPIDPolicy(path, issuedLog, k8sLog string, owner *[2]int, self []string, log *slog.Logger) (*apidPolicy, error) {
	p := &apidPolicy{path: path, issuedLog: issuedLog, k8sLog: k8sLog, owner: owner, self: self, log: log}
	var err error
	if p.issued, err = readList(issuedLog, "certified nodes", log); err != nil {
		return nil, err
	}
	if p.k8s, err = readList(k8sLog, "members from Kubernetes", log); err != nil {
		return nil, err
	}
	return p, p.write()
}

// readList reads a JSON list of addresses kept at path (none if there is no file; an
// unreadable one is logged and started afresh).
func readList(path, what string, log *slog.Logger) ([]string, error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var list []string
	if err := json.Unmarshal(data, &list); err != nil {
		log.Warn("the kept list of "+what+" is unreadable; starting afresh", "file", path, "error", err)
		return nil, nil
	}
	return list, nil
}

// keepList writes list to path for the next start.
func (p *apidPolicy) keepList(path string, list []string) {
	if data, err := json.Marshal(list); err == nil {
		if err := atomicfile.Write(path, data, 0o600); err != nil {
			p.log.Warn("keep the list of cluster members", "file", path, "error", err)
		}
	}
}

// AddIssued records a node that trustd certified.
func (p *apidPolicy) AddIssued(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if slices.Contains(p.issued, addr) {
		return
	}
	p.issued = append(p.issued, addr)
	slices.Sort(p.issued)
	p.keepList(p.issuedLog, p.issued)
	if err := p.writeLocked(); err != nil {
		p.log.Warn("apid policy", "error", err)
	}
}

// SetKubernetes replaces the members learnt from Kubernetes, and keeps them for the next
// start.
func (p *apidPolicy) SetKubernetes(members []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !slices.Equal(p.k8s, members) {
		p.keepList(p.k8sLog, members)
	}
	p.k8s = members
	return p.writeLocked()
}

// SetRevoked replaces the revoked serials.
func (p *apidPolicy) SetRevoked(serials []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.revoked = serials
	return p.writeLocked()
}

// Revoked returns the revoked serial numbers, as the configuration gives them.
func (p *apidPolicy) Revoked() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.revoked)
}

func (p *apidPolicy) write() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.writeLocked()
}

// writeLocked writes the file when its content changed; p.mu is held.
func (p *apidPolicy) writeLocked() error {
	members := slices.Concat(p.self, p.issued, p.k8s)
	slices.Sort(members)
	pol := apid.Policy{Members: slices.Compact(members), RevokedSerials: p.revoked}
	if pol.RevokedSerials == nil {
		pol.RevokedSerials = []string{}
	}
	data, err := json.MarshalIndent(pol, "", "  ")
	if err != nil {
		return err
	}
	if slices.Equal(data, p.lastData) {
		return nil
	}
	uid, gid := -1, -1
	if p.owner != nil {
		uid, gid = p.owner[0], p.owner[1]
	}
	if err := atomicfile.WriteOwned(p.path, data, 0o600, uid, gid); err != nil {
		return err
	}
	p.lastData = data
	return nil
}

// runMembers keeps the members learnt from Kubernetes current on a control plane: once the
// API server answers, it watches the Node objects and takes their addresses after every
// change. (It listed them every 10 s: a control plane that joined was unknown to the others
// for up to 10 s after its Node appeared, and a request forwarded to it in that time, such
// as create's --timings right after a 3-control-plane create, was refused.)
func (n *node) runMembers(ctx context.Context, logs io.Writer) error {
	last := ""
	retry := backoff.New(time.Second, 10*time.Second)
	kubeclient.KeepWatchingNodes(ctx, adminClient, retry,
		func(err error) {
			fmt.Fprintf(logs, "cluster members from Kubernetes: %v (retrying, up to every %s)\n", err, retry.Max())
			last = "" // say the members again once they are known again
		},
		func(nodes []objects.Node) error {
			members := nodeMembers(nodes)
			if err := n.policy.SetKubernetes(members); err != nil {
				return err
			}
			if s := fmt.Sprint(members); s != last {
				fmt.Fprintf(logs, "cluster members from Kubernetes: %v\n", members)
				last = s
			}
			return nil
		})
	return nil
}

// nodeMembers returns the InternalIP and ExternalIP addresses of nodes, sorted, each once.
// Addresses only: a worker's node certificate names its address, not its name, so
// forwarding by name could not verify it.
func nodeMembers(nodes []objects.Node) []string {
	var members []string
	for _, nd := range nodes {
		for _, a := range nd.Status.Addresses {
			if a.Type == csrapprove.AddressInternalIP || a.Type == csrapprove.AddressExternalIP {
				members = append(members, a.Address)
			}
		}
	}
	slices.Sort(members)
	return slices.Compact(members)
}
