package render

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"unicode"

	"github.com/plinthos/plinth/internal/k8s/paths"
	"github.com/plinthos/plinth/pkg/config"
)

// The CRI plugins of containerd v2 (configuration version 3).
const (
	criImagesPlugin  = "io.containerd.cri.v1.images"
	criRuntimePlugin = "io.containerd.cri.v1.runtime"
)

// StatsCollectPeriod is how often containerd's CRI plugin samples every container's and pod
// sandbox's CPU use, for the CRI stats' usageNanoCores: kubelet's cAdvisor housekeeping
// interval. containerd's default, a second, asked every shim for its cgroup's statistics
// every second: 1.6 % of one core on an idle control plane (its containerd and 7 shims),
// 0.2 % on a worker.
const StatsCollectPeriod = "10s"

// CRIConfDir is where machine.files may put containerd drop-in configuration files, which
// the configuration imports.
const CRIConfDir = "/etc/cri/conf.d"

// ContainerdConfig returns containerd's configuration files by image path: the main file at
// paths.ContainerdConfig (containerd v2, configuration version 3) and, for each registry in
// machine.registries.mirrors, RegistryHostsDir/HOST/hosts.toml (`*` is containerd's
// `_default`). restrictOOMScoreAdj keeps containers' oom_score_adj from going below
// containerd's own: set it when containerd cannot lower oom_score_adj (see
// CanLowerOOMScoreAdj), or runc fails to start every pod sandbox.
func ContainerdConfig(cfg *config.MachineConfig, restrictOOMScoreAdj bool) (map[string][]byte, error) {
	files := map[string][]byte{}
	mirrors := cfg.Machine.Registries.Mirrors
	for _, host := range slices.Sorted(maps.Keys(mirrors)) {
		dir, err := registryDir(host)
		if err != nil {
			return nil, err
		}
		data, err := hostsTOML(host, mirrors[host])
		if err != nil {
			return nil, err
		}
		files[RegistryHostsDir+"/"+dir+"/hosts.toml"] = data
	}

	var b strings.Builder
	w := func(indent int, format string, args ...any) {
		b.WriteString(strings.Repeat("  ", indent))
		fmt.Fprintf(&b, format, args...)
		b.WriteByte('\n')
	}
	images := "plugins." + tomlString(criImagesPlugin)
	runtime := "plugins." + tomlString(criRuntimePlugin)
	runc := runtime + ".containerd.runtimes.runc"
	w(0, "# containerd configuration, written by machined: changes are overwritten.")
	w(0, "version = 3")
	// Drop-ins from machine.files, such as a runtime handler's settings.
	w(0, "imports = [%s]", tomlString(CRIConfDir+"/*.toml"))
	w(0, "root = %s", tomlString(paths.ContainerdDir))
	w(0, "state = %s", tomlString(paths.ContainerdRunDir))
	w(0, "")
	w(0, "[grpc]")
	w(1, "address = %s", tomlString(ContainerdSocket))
	w(0, "")
	w(0, "[debug]")
	w(1, "address = %s", tomlString(ContainerdDebugSocket))
	w(0, "")
	w(0, "[plugins]")
	w(1, "[%s]", images)
	w(2, "snapshotter = %s", tomlString("overlayfs"))
	w(2, "[%s.pinned_images]", images)
	w(3, "sandbox = %s", tomlString(PauseImage))
	w(2, "[%s.registry]", images)
	w(3, "config_path = %s", tomlString(RegistryHostsDir))
	w(0, "")
	w(1, "[%s]", runtime)
	w(2, "restrict_oom_score_adj = %t", restrictOOMScoreAdj)
	w(2, "stats_collect_period = %s", tomlString(StatsCollectPeriod))
	w(2, "[%s.containerd]", runtime)
	w(3, "default_runtime_name = %s", tomlString("runc"))
	w(3, "[%s]", runc)
	w(4, "runtime_type = %s", tomlString("io.containerd.runc.v2"))
	w(4, "[%s.options]", runc)
	w(5, "BinaryName = %s", tomlString(RuncPath))
	w(5, "SystemdCgroup = false")
	w(2, "[%s.cni]", runtime)
	w(3, "bin_dirs = [%s]", tomlString(paths.CNIBinDir))
	w(3, "conf_dir = %s", tomlString(paths.CNIConfDir))
	files[paths.ContainerdConfig] = []byte(b.String())
	return files, nil
}

// registryDir returns the directory under RegistryHostsDir that containerd reads for a
// registry host (HOST or HOST:PORT; `*` for every registry).
func registryDir(host string) (string, error) {
	if host == "*" {
		return "_default", nil
	}
	bad := host == "" || host == "." || host == ".." || host == "_default" ||
		strings.ContainsAny(host, `/\`) || strings.ContainsFunc(host, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
	if bad {
		return "", fmt.Errorf("registry mirror host %q: want a registry host name (HOST or HOST:PORT) or *", host)
	}
	return host, nil
}

// hostsTOML renders a registry's hosts.toml: the mirrors, in order, are tried for pulls
// and resolution before the registry itself. With skipFallback the last mirror takes the
// registry's place (containerd always tries `server` last, and defaults it to the registry).
func hostsTOML(host string, m config.Mirror) ([]byte, error) {
	if len(m.Endpoints) == 0 {
		return nil, fmt.Errorf("registry mirror %q has no endpoints", host)
	}
	for _, e := range m.Endpoints {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("registry mirror %q: endpoint %q must be an http:// or https:// URL", host, e)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Mirrors of %s, written by machined: changes are overwritten.\n", host)
	mirrors := m.Endpoints
	if m.SkipFallback {
		last := mirrors[len(mirrors)-1]
		mirrors = mirrors[:len(mirrors)-1]
		fmt.Fprintf(&b, "server = %s\ncapabilities = [\"pull\", \"resolve\"]\n", tomlString(last))
	}
	for _, e := range mirrors {
		fmt.Fprintf(&b, "\n[host.%s]\n  capabilities = [\"pull\", \"resolve\"]\n", tomlString(e))
	}
	return []byte(b.String()), nil
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
