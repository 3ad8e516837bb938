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
// etcd snapshots.
const (
	Admin      Role = "os:admin"
	Operator   Role = "os:operator"
	Reader     Role = "os:reader"
	EtcdBackup Role = "os:etcd:backup"
)

// Impersonator is carried by node certificates, never by people: a request from a peer
// holding it may state, in metadata, the roles of the client it forwards for. apid forwards
// a request to another node this way, so the roles travel with the node's own mTLS identity.
const Impersonator = "os:impersonator"

// MetadataKey is the gRPC metadata key that carries forwarded roles.
const MetadataKey = "x-plinth-roles"

// All lists every role a client can hold.
var All = []Role{Admin, Operator, Reader, EtcdBackup}

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
