package machined

import (
	"strings"
	"testing"

	"github.com/plinthos/plinth/pkg/config"
)

func TestPlatformFor(t *testing.T) {
	for name, want := range map[string]string{"": ModeLocal, "local": ModeLocal, "docker": ModeDocker} {
		p, err := PlatformFor(name)
		if err != nil || p.Name() != want {
			t.Errorf("PlatformFor(%q) = %v, %v; want %s", name, p, err, want)
		}
	}
	if _, err := PlatformFor("metal"); err == nil || !strings.Contains(err.Error(), "use local or docker") {
		t.Errorf("PlatformFor(metal) = %v", err)
	}
}

// TestPlatforms checks what each platform decides, which machined's core no longer
// decides by the mode's name.
func TestPlatforms(t *testing.T) {
	local, container := localPlatform{}, dockerPlatform{}
	if local.Kubernetes() || !container.Kubernetes() {
		t.Error("only the docker platform runs Kubernetes")
	}
	if local.RebootExitCode() != 0 || container.RebootExitCode() != RebootExitCode {
		t.Error("reboot: local re-executes itself, a container exits for its restart policy")
	}
	if local.ConfigMode() != config.ModeDocker || container.ConfigMode() != config.ModeDocker {
		t.Error("local and container nodes validate as Docker nodes")
	}
	var o Options
	if err := local.Defaults(&o); err == nil {
		t.Error("local mode without a state directory")
	}
	o = Options{StateDir: "/tmp/x"}
	if err := local.Defaults(&o); err != nil || o.Address != "127.0.0.1" {
		t.Errorf("local defaults: %+v, %v", o, err)
	}
	sys := local.System(o)
	if sys.Files.Root != "/tmp/x" || sys.ProcessTree == 0 || len(sys.Files.Allowed) != 1 || sys.Files.Allowed[0] != "/log" {
		t.Errorf("local system %+v", sys)
	}
	sys = container.System(o)
	if sys.Files.Root != "/" || sys.ProcessTree != 0 || sys.Files.Allowed[0] != "/var/log" {
		t.Errorf("container system %+v", sys)
	}
}
