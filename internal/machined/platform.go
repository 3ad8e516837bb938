package machined

import (
	"fmt"
	"slices"
	"strings"

	"github.com/plinthos/plinth/internal/machineapi"
	"github.com/plinthos/plinth/pkg/config"
)

// Platform is what differs between the places a node runs: an ordinary process (local),
// PID 1 of a node container (container); bare metal and VMs come next. machined's core asks
// its platform and never branches on a mode name, so a new platform is a new file that
// implements this interface and one line in platforms.
type Platform interface {
	// Name is the platform's name, as --mode takes it and the Version API reports it.
	Name() string
	// ConfigMode is how the machine configuration is validated on this platform: fields
	// that mean nothing here are refused.
	ConfigMode() config.Mode
	// Prepare readies the machine before anything else runs: mounts, cgroups, devices.
	Prepare() error
	// Defaults fills in the options this platform decides: state directory, address,
	// host name, where the first configuration is.
	Defaults(o *Options) error
	// System is what the machine API shows of the machine: /proc, the kernel log, and the
	// files a caller may read.
	System(o Options) machineapi.System
	// Kubernetes is set on platforms whose nodes run containerd, kubelet and, on control
	// planes, etcd and the control plane.
	Kubernetes() bool
	// RebootExitCode is the exit code by which machined reboots the node (the container's
	// restart policy starts it again); 0 means machined re-executes itself.
	RebootExitCode() int
}

// platforms lists the platforms by name.
var platforms = []Platform{localPlatform{}, dockerPlatform{}}

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
		return nil, fmt.Errorf("mode %q is not supported: use %s", name, strings.Join(names, " or "))
	}
	return platforms[i], nil
}
