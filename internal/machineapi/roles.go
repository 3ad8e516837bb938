// Package machineapi implements the node API services inside machined: the machine
// service (services, logs, events, files, lifecycle, configuration) and the generic
// resource service. apid authenticates callers and forwards their roles in metadata.
package machineapi

import (
	"context"
	"slices"
	"strings"

	"google.golang.org/grpc/metadata"

	"github.com/plinthos/plinth/pkg/role"
)

// callerRoles returns the roles apid forwarded with the call.
func callerRoles(ctx context.Context) []string {
	md, _ := metadata.FromIncomingContext(ctx)
	var roles []string
	for _, v := range md.Get(role.MetadataKey) {
		for _, r := range strings.Split(v, ",") {
			if r = strings.TrimSpace(r); r != "" {
				roles = append(roles, r)
			}
		}
	}
	return roles
}

// isAdmin reports whether the caller holds os:admin.
func isAdmin(ctx context.Context) bool { return slices.Contains(callerRoles(ctx), role.Admin) }
