package machined

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/plinthos/plinth/internal/controller"
	"github.com/plinthos/plinth/internal/fileapi"
	"github.com/plinthos/plinth/internal/machineapi"
	"github.com/plinthos/plinth/internal/maintenance"
	"github.com/plinthos/plinth/pkg/config"
)

// ModeLocal runs machined as an ordinary process for development and tests: no mounts, no
// network changes, nothing that touches the host; all state under the state directory.
const ModeLocal = "local"

// localPlatform is machined as an ordinary process of a developer's machine.
type localPlatform struct{}

func (localPlatform) Name() string { return ModeLocal }

// ConfigMode implements Platform: nothing is installed, as in Docker.
func (localPlatform) ConfigMode() config.Mode { return config.ModeDocker }

func (localPlatform) Prepare() error { return nil }

func (localPlatform) Defaults(o *Options) error {
	if o.StateDir == "" {
		return errors.New("a state directory is required (--state-dir)")
	}
	if o.Address == "" {
		o.Address = "127.0.0.1"
	}
	return nil
}

// System implements Platform: the file API is confined to the state directory (nothing of
// the host is exposed) and callers without os:admin read only its logs; machined shares the
// host's /proc, so the process list is its own tree.
func (localPlatform) System(o Options) machineapi.System {
	return machineapi.System{
		ProcRoot:    "/proc",
		KmsgPath:    "/dev/kmsg",
		Files:       fileapi.FS{Root: o.StateDir, Allowed: []string{"/log"}},
		ProcessTree: int32(os.Getpid()),
	}
}

// Controllers implements Platform: the links and disks are the host's, not the node's.
func (localPlatform) Controllers() []controller.Controller { return nil }

func (localPlatform) Kubernetes() bool { return false }

// Unconfigured implements Platform: a configuration is required.
func (localPlatform) Unconfigured(*Options) (maintenance.Trust, error) {
	return maintenance.Trust{}, ErrNeedsConfig
}

// Watch implements Platform: the machine's controls are the host's.
func (localPlatform) Watch(context.Context, func()) {}

func (localPlatform) Network(*config.MachineConfig, *Options) error { return nil }

// Halt implements Platform: a reboot runs machined anew in this process; a shutdown
// returns, and the caller exits.
func (localPlatform) Halt(reboot bool) error {
	if !reboot {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	return fmt.Errorf("reboot: %w", syscall.Exec(exe, os.Args, os.Environ()))
}
