// Package vmnet makes the network of a local cluster of QEMU VMs, which leads nowhere
// off the machine. The cluster gets a network namespace of its own holding a bridge, one
// tap per VM and one end of a veth pair; the other end, in the host's namespace, carries
// the cluster network's gateway address, so that the host (plinthctl) reaches the VMs.
//
// Nothing routes between that link and the host's other links: forwarding is off on it
// (a setting of the link, not the host's ip_forward), so is IPv6, and the namespace has no
// other link and no route. No NAT rule or firewall rule is added. The bridge lives in the
// namespace rather than the host's so that the host's bridge netfilter hooks (Docker's
// FORWARD policy is DROP, and br_netfilter hands bridged frames to it) never see the
// VMs' traffic to each other.
//
// It drives iproute2's ip command; it needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN).
package vmnet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Names of the links inside a cluster's namespace.
const (
	Bridge   = "br0"
	PeerLink = "host0" // the veth end on the bridge, joined to the host's end
)

// Host is the machine whose networks are made: how its ip command runs, and where it
// keeps what the package reads and writes besides (tests point them elsewhere).
type Host struct {
	// Runner runs ip; nil means ExecRunner.
	Runner Runner
	// ProcSys, SysClassNet and NamespaceDir are where the links' settings are written,
	// the links listed and the named namespaces kept: /proc/sys, /sys/class/net and
	// /run/netns when empty.
	ProcSys, SysClassNet, NamespaceDir string
}

func (h Host) run(ctx context.Context, args ...string) ([]byte, error) {
	if h.Runner == nil {
		return ExecRunner{}.Run(ctx, args...)
	}
	return h.Runner.Run(ctx, args...)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Runner runs the ip command with args and returns its standard output; a failure's error
// carries its standard error.
type Runner interface {
	Run(ctx context.Context, args ...string) ([]byte, error)
}

// ExecRunner runs ip from PATH.
type ExecRunner struct{}

// Run implements Runner.
func (ExecRunner) Run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ip", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("the ip command is not installed (Debian: apt-get install iproute2): %w", err)
		}
		return out, fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Network is one cluster's network.
type Network struct {
	// Namespace is the network namespace (named, as `ip netns` names them).
	Namespace string
	// HostLink is the veth end in the host's namespace; Gateway its address, with the
	// prefix length of the cluster network.
	HostLink string
	Gateway  netip.Prefix
	// Taps are the VMs' tap devices in the namespace, on the bridge.
	Taps []string
}

// NamespaceName is the network namespace of the cluster named cluster.
func NamespaceName(cluster string) string { return "plinth-" + cluster }

// HostLinkName is the host's end of the cluster's veth pair: a link name has at most 15
// bytes, so it is made from a hash of the cluster's name.
func HostLinkName(cluster string) string {
	sum := sha256.Sum256([]byte(cluster))
	return "plq" + hex.EncodeToString(sum[:])[:8]
}

// TapName is the tap device of a cluster's i-th VM (from 1).
func TapName(i int) string { return "tap" + strconv.Itoa(i) }

// ExecPrefix is the command that runs what follows it inside the namespace (where a VM's
// emulator must run to open its tap).
func ExecPrefix(namespace string) []string { return []string{"ip", "netns", "exec", namespace} }

// createCommands are the ip commands that make the namespace and the veth pair; the host's
// end is isolated (forwarding and IPv6 off) before linkCommands give it its address and
// bring it up.
func (n Network) createCommands() [][]string {
	return [][]string{
		{"netns", "add", n.Namespace},
		{"link", "add", n.HostLink, "type", "veth", "peer", "name", PeerLink, "netns", n.Namespace},
	}
}

// linkCommands are the ip commands after the isolation of the host's end: its address,
// the bridge, the taps.
func (n Network) linkCommands() [][]string {
	ns := func(args ...string) []string { return append([]string{"-n", n.Namespace}, args...) }
	cmds := [][]string{
		{"addr", "add", n.Gateway.String(), "dev", n.HostLink},
		{"link", "set", n.HostLink, "up"},
		ns("link", "add", Bridge, "type", "bridge"),
		ns("link", "set", PeerLink, "master", Bridge),
		ns("link", "set", PeerLink, "up"),
	}
	for _, tap := range n.Taps {
		cmds = append(cmds,
			ns("tuntap", "add", "dev", tap, "mode", "tap"),
			ns("link", "set", tap, "master", Bridge),
			ns("link", "set", tap, "up"))
	}
	return append(cmds, ns("link", "set", Bridge, "up"))
}

// Commands lists every ip command Create runs, in order (for tests and for the record).
func (n Network) Commands() [][]string {
	return append(n.createCommands(), n.linkCommands()...)
}

func (n Network) check() error {
	if n.Namespace == "" || n.HostLink == "" || !n.Gateway.IsValid() || !n.Gateway.Addr().Is4() {
		return errors.New("a cluster network needs a namespace, a host link and an IPv4 gateway address")
	}
	if len(n.HostLink) > 15 {
		return fmt.Errorf("link name %q is longer than 15 bytes", n.HostLink)
	}
	return nil
}

// Create makes the network. When a step fails, what was made is removed again.
func (h Host) Create(ctx context.Context, n Network) (err error) {
	if err := n.check(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			if _, derr := h.Delete(context.WithoutCancel(ctx), n.Namespace, n.HostLink); derr != nil {
				err = fmt.Errorf("%w (and removing the network again failed: %v)", err, derr)
			}
		}
	}()
	for _, args := range n.createCommands() {
		if _, err := h.run(ctx, args...); err != nil {
			return fmt.Errorf("create the cluster network: %w", err)
		}
	}
	if err := h.isolate(n.HostLink); err != nil {
		return err
	}
	for _, args := range n.linkCommands() {
		if _, err := h.run(ctx, args...); err != nil {
			return fmt.Errorf("create the cluster network: %w", err)
		}
	}
	return nil
}

// isolate turns off forwarding from the host's end of the pair (packets from the VMs to
// anything but the host are dropped, whatever the host's ip_forward) and IPv6 on it.
func (h Host) isolate(link string) error {
	for _, s := range []struct{ key, value string }{
		{"net/ipv4/conf/" + link + "/forwarding", "0"},
		{"net/ipv6/conf/" + link + "/disable_ipv6", "1"},
	} {
		p := filepath.Join(orDefault(h.ProcSys, "/proc/sys"), s.key)
		if err := os.WriteFile(p, []byte(s.value+"\n"), 0o644); err != nil {
			// A host without IPv6 has no IPv6 settings, and nothing to turn off.
			if strings.Contains(s.key, "ipv6") && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return fmt.Errorf("isolate the host's link %s: %w", link, err)
		}
	}
	return nil
}

// Exists says whether the named namespace exists.
func (h Host) Exists(namespace string) (bool, error) {
	_, err := os.Stat(filepath.Join(orDefault(h.NamespaceDir, "/run/netns"), namespace))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("check the network namespace %s: %w", namespace, err)
}

// LinkExists says whether the host has a link of that name.
func (h Host) LinkExists(link string) (bool, error) {
	_, err := os.Stat(filepath.Join(orDefault(h.SysClassNet, "/sys/class/net"), link))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("check the link %s: %w", link, err)
}

// Delete removes the namespace (with its bridge and taps; the VMs must have ended, or it
// lives on with them) and the host's link; what is missing already is skipped. It reports
// whether anything was there.
func (h Host) Delete(ctx context.Context, namespace, hostLink string) (bool, error) {
	found := false
	var errs []error
	if ok, err := h.Exists(namespace); err != nil {
		errs = append(errs, err)
	} else if ok {
		found = true
		if _, err := h.run(ctx, "netns", "del", namespace); err != nil {
			errs = append(errs, fmt.Errorf("remove the network namespace: %w", err))
		}
	}
	// The pair goes with the namespace; delete the host's end in case it outlived it (a
	// namespace that was never made, or is still held by a process).
	if ok, err := h.LinkExists(hostLink); err != nil {
		errs = append(errs, err)
	} else if ok {
		found = true
		if _, err := h.run(ctx, "link", "del", hostLink); err != nil && !isNoDevice(err) {
			errs = append(errs, fmt.Errorf("remove the host's link: %w", err))
		}
	}
	return found, errors.Join(errs...)
}

// isNoDevice reports an ip failure about a link that is gone.
func isNoDevice(err error) bool {
	s := err.Error()
	return strings.Contains(s, "Cannot find device") || strings.Contains(s, "does not exist")
}

// route is the part of `ip -j route` that CheckFree reads.
type route struct {
	Dst string `json:"dst"`
	Dev string `json:"dev"`
}

// CheckFree refuses a cluster network that overlaps a route of the host (any table: the
// host's own addresses, Docker's networks, other clusters'), where the VMs' addresses
// would clash with what the host already reaches.
func (h Host) CheckFree(ctx context.Context, network netip.Prefix) error {
	out, err := h.run(ctx, "-j", "-4", "route", "show", "table", "all")
	if err != nil {
		return fmt.Errorf("read the host's routes: %w", err)
	}
	var routes []route
	if err := json.Unmarshal(out, &routes); err != nil {
		return fmt.Errorf("read the host's routes: %w", err)
	}
	for _, rt := range routes {
		if rt.Dst == "" || rt.Dst == "default" {
			continue
		}
		p, err := netip.ParsePrefix(rt.Dst)
		if err != nil {
			a, aerr := netip.ParseAddr(rt.Dst)
			if aerr != nil {
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Overlaps(network) {
			dev := ""
			if rt.Dev != "" {
				dev = " on " + rt.Dev
			}
			return fmt.Errorf("the network %s overlaps the host's route to %s%s: pick another --cidr", network, rt.Dst, dev)
		}
	}
	return nil
}
