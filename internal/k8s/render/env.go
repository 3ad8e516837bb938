package render

import (
	"maps"
	"slices"

	"github.com/plinthos/plinth/pkg/config"
)

// ServiceEnv is what machine.env adds to the environment of the node's services
// (containerd and kubelet), as sorted NAME=VALUE entries.
func ServiceEnv(cfg *config.MachineConfig) []string {
	var env []string
	for _, k := range slices.Sorted(maps.Keys(cfg.Machine.Env)) {
		env = append(env, k+"="+cfg.Machine.Env[k])
	}
	return env
}
