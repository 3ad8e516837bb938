package machined

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/plinthos/plinth/internal/controller"
	"github.com/plinthos/plinth/internal/machineapi"
	"github.com/plinthos/plinth/internal/maintenance"
	"github.com/plinthos/plinth/pkg/config"
)

// Platform is what differs between the places a node runs: an ordinary process (local),
// PID 1 of a node container (docker), PID 1 of a machine booted from the Plinth image
// (metal, VMs included). machined's core asks its platform and never branches on a mode
// name, so a new platform is a new file that implements this interface and one line in
// platforms.
type Platform interface {
	// Name is the platform's name, as --mode takes it and the Version API reports it.
	Name() string
	// ConfigMode is how the machine configuration is validated on this platform: fields
	// that mean nothing here are refused.
	ConfigMode() config.Mode
	// Prepare readies the machine before anything else runs: mounts, cgroups, devices.
	Prepare() error
	// Defaults fills in the options this platform decides before the configuration is
	// read: state directory, where the first configuration is, and, where the platform
	// knows them already, the address and host name.
	Defaults(o *Options) error
	// Unconfigured prepares a machine without any configuration for maintenance mode
	// (the network the kernel command line gives, o.Address) and returns whom it trusts to
	// configure it (no anchor: nobody over the network). Platforms where a configuration
	// is required return ErrNeedsConfig.
	Unconfigured(o *Options) (maintenance.Trust, error)
	// Network brings up the machine's network from the first configuration where the
	// platform owns it, and fills in the address when Defaults could not.
	Network(cfg *config.MachineConfig, o *Options) error
	// System is what the machine API shows of the machine: /proc, the kernel log, and the
	// files a caller may read.
	System(o Options) machineapi.System
	// Controllers are the platform's own controllers, such as those that show the
	// machine's links and disks where the machine is the node's own.
	Controllers() []controller.Controller
	// Kubernetes is set on platforms whose nodes run containerd, kubelet and, on control
	// planes, etcd and the control plane.
	Kubernetes() bool
	// Watch runs until ctx ends and calls shutdown when the machine's own controls ask
	// for one (a power button, a hypervisor's power-down).
	Watch(ctx context.Context, shutdown func())
	// Halt ends the node once machined's services stopped: it reboots the node (reboot)
	// or powers it off. It returns only when the caller should simply exit (a local
	// shutdown) or on failure.
	Halt(reboot bool) error
}

// platforms lists the platforms by name.
var platforms = []Platform{localPlatform{}, dockerPlatform{}, metalPlatform{}}

// PlatformFor returns the platform of a --mode value.
func PlatformFor(name string) (Platform, error) {
	if name == "" {
		name = ModeLocal
	}
	i := slices.IndexFunc(platforms, func(p Platform) bool { return p.Name() == name })
	if i < 0 {
		var names []string
		for _, p := range platforms {
			names = append(names, p.Name())
		}
		return nil, fmt.Errorf("mode %q is not supported: use one of %s", name, strings.Join(names, ", "))
	}
	return platforms[i], nil
}
