// Package role names the roles a node API client can hold. A client's roles are the
// Subject Organization entries of its certificate.
package role

import (
	"fmt"
	"slices"
	"strings"
)

// Role is one node API role.
type Role = string

// The roles, from most to least powerful; EtcdBackup is a narrow role that may only take
// etcd snapshots, and Metrics one that may only read machined's metrics (for Prometheus).
const (
	Admin      Role = "os:admin"
	Operator   Role = "os:operator"
	Reader     Role = "os:reader"
	EtcdBackup Role = "os:etcd:backup"
	Metrics    Role = "os:metrics"
)

// Forwarder is carried by the node API certificate of a control-plane node, never by
// people, and is not a role: it lets apid on a control plane forward a client's request to
// another node. The forwarded request carries the client's own certificate chain
// (ForwardedCertKey), and the receiving node takes the roles from that certificate after
// verifying it against the node API CA, so a forwarder never adds rights of its own.
// Certificates that trustd issues to workers carry no Organization and serve only.
const Forwarder = "os:forwarder"

// MetadataKey is the gRPC metadata key that carries the caller's roles from apid to the
// local machined (over machined's unix socket, which only apid's user may open).
const MetadataKey = "x-plinth-roles"

// ForwardedCertKey is the gRPC metadata key in which a forwarding control plane sends the
// original client's certificate chain (base64 DER certificates, leaf first, comma
// separated).
const ForwardedCertKey = "x-plinth-forwarded-client-cert"

// All lists every role a client can hold.
var All = []Role{Admin, Operator, Reader, EtcdBackup, Metrics}

// Known keeps the node API roles among a certificate's organizations (Subject
// Organization entries), in their order.
func Known(orgs []string) []Role {
	var out []Role
	for _, o := range orgs {
		if slices.Contains(All, o) {
			out = append(out, o)
		}
	}
	return out
}

// Parse checks a comma-separated list of roles.
func Parse(s string) ([]Role, error) {
	var roles []Role
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if !slices.Contains(All, r) {
			return nil, fmt.Errorf("unknown role %q: use one or more of %s", r, strings.Join(All, ", "))
		}
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	if len(roles) == 0 {
		return nil, fmt.Errorf("no role given: use one or more of %s", strings.Join(All, ", "))
	}
	return roles, nil
}
