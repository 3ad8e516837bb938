package machined

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/plinthos/plinth/internal/backoff"
	"github.com/plinthos/plinth/internal/k8s/addons"
	"github.com/plinthos/plinth/internal/k8s/kubeclient"
	"github.com/plinthos/plinth/internal/k8s/objects"
	"github.com/plinthos/plinth/internal/k8s/paths"
	"github.com/plinthos/plinth/internal/k8s/render"
	"github.com/plinthos/plinth/internal/podnet"
	"github.com/plinthos/plinth/internal/reaper"
	"github.com/plinthos/plinth/pkg/config"
)

// nodeKubeconfig is the kubeconfig machined talks to the API with about this node: a
// control plane's admin one; a worker's kubelet's, written after its TLS bootstrap (the
// Node authorizer and NodeRestriction limit what it may do).
func nodeKubeconfig(cfg *config.MachineConfig) string {
	if cfg.Machine.Type == config.TypeControlPlane {
		return paths.PKIFile(paths.AdminKubeconfig)
	}
	return render.WorkerKubeconfig
}

// runPodNetwork is the service of the built-in pod network (cluster.network.cni.name:
// plinth, package podnet): it watches the Nodes and keeps this node's routes to the other
// nodes' pod subnets (and, over vxlan, its VXLAN device and entries), masquerades what
// leaves the pod network, and writes the CNI configuration once the node has its pod
// subnet. Failures are logged once while they repeat and retried.
func (n *node) runPodNetwork(ctx context.Context, logs io.Writer) error {
	h, err := podNetHandle()
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	s := &podNetwork{node: n, linux: podnet.Linux{H: h}, logs: logs}
	// Retries are cheap (a failed connection, at bootstrap) and the node is not Ready
	// until the first pass: they wait little.
	retry := backoff.New(500*time.Millisecond, 5*time.Second)
	var cfg *config.MachineConfig
	open := func() (*kubeclient.Client, error) {
		cfg, _ = n.cfg.Current()
		// A worker's kubeconfig is written by its TLS bootstrap, a control plane's with
		// the cluster's certificates.
		if err := waitFiles(ctx, nodeKubeconfig(cfg)); err != nil {
			return nil, err
		}
		return kubeclient.NewFromFile(nodeKubeconfig(cfg), "")
	}
	kubeclient.KeepWatchingNodes(ctx, open, retry,
		func(err error) { fmt.Fprintf(logs, "%v; retrying, up to every %s\n", err, retry.Max()) },
		func(nodes []objects.Node) error { return s.sync(ctx, cfg, nodes) })
	return nil
}

// podNetHandle opens the netlink handle of the pod network: routing only (routes, links,
// addresses, neighbours), the one family it uses. netlink.NewHandle() with no family opens
// XFRM and netfilter sockets too, and fails ("protocol not supported") on the OS kernel,
// which has no XFRM: a VM's node stayed NotReady.
func podNetHandle() (*netlink.Handle, error) {
	return netlink.NewHandle(unix.NETLINK_ROUTE)
}

// podNetwork is the state of runPodNetwork between two passes.
type podNetwork struct {
	node  *node
	linux podnet.Linux
	logs  io.Writer
	// what was last done, so that only changes are made and said
	said, routes, masq, conf string
}

// say writes msg unless it was the last thing said.
func (s *podNetwork) say(msg string) {
	if msg != s.said {
		fmt.Fprintln(s.logs, msg)
		s.said = msg
	}
}

// sync makes the node's pod network follow nodes.
func (s *podNetwork) sync(ctx context.Context, cfg *config.MachineConfig, nodes []objects.Node) error {
	self := s.node.nodeName()
	var all []podnet.Node
	var me *podnet.Node
	for _, o := range nodes {
		pn := podnet.Node{Name: o.Metadata.Name}
		for _, c := range o.Spec.PodCIDRs {
			if p, err := netip.ParsePrefix(c); err == nil {
				pn.PodCIDRs = append(pn.PodCIDRs, p.Masked())
			}
		}
		for _, a := range o.Status.Addresses {
			if ip, err := netip.ParseAddr(a.Address); err == nil && a.Type == "InternalIP" {
				pn.Addrs = append(pn.Addrs, ip.Unmap())
			}
		}
		all = append(all, pn)
		if pn.Name == self {
			me = &all[len(all)-1]
		}
	}
	switch {
	case me == nil:
		s.say(fmt.Sprintf("waiting for kubelet to register the Node %s", self))
		return nil
	case len(me.PodCIDRs) == 0:
		s.say("waiting for kube-controller-manager to give this node its pod subnet")
		return nil
	case len(me.Addrs) == 0:
		s.say("waiting for the Node's InternalIP address")
		return nil
	}
	// The node's address of the first pod subnet's family carries the traffic.
	local := me.Addrs[0]
	for _, a := range me.Addrs {
		if a.Is4() == me.PodCIDRs[0].Addr().Is4() {
			local = a
			break
		}
	}
	if err := forwarding(me.PodCIDRs); err != nil {
		return err
	}
	backend := cfg.Cluster.Network.CNI.EffectiveBackend()
	plan := podnet.PlanFor(backend, self, local, all)
	mtu, err := s.linux.Apply(backend, local, me.PodCIDRs, plan)
	if err != nil {
		return err
	}
	var routes []string
	for _, r := range plan.Routes {
		routes = append(routes, r.Dst.String()+" via "+r.Via.String())
	}
	if msg := strings.Join(routes, ", "); msg != s.routes {
		if msg == "" {
			msg = "none yet"
		}
		fmt.Fprintf(s.logs, "pod network (%s) routes: %s\n", backend, msg)
		s.routes = strings.Join(routes, ", ")
	}

	podSubnets := cfg.Cluster.Network.PodSubnets
	if len(podSubnets) == 0 {
		podSubnets = []string{config.DefaultPodSubnet}
	}
	env := addons.SubnetEnv{MTU: mtu, IPMasq: true}
	var networks []netip.Prefix
	for _, c := range podSubnets {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return fmt.Errorf("cluster.network.podSubnets: %q: %w", c, err)
		}
		p = p.Masked()
		networks = append(networks, p)
		if p.Addr().Is4() && !env.Network.IsValid() {
			env.Network = p
		} else if p.Addr().Is6() && !env.IPv6Network.IsValid() {
			env.IPv6Network = p
		}
	}
	for _, c := range me.PodCIDRs {
		// host-local never hands out the network address (the VXLAN endpoint's) nor the
		// gateway's (the bridge's, the one after it).
		if c.Addr().Is4() {
			env.Subnet = c
		} else {
			env.IPv6Subnet = c
		}
	}
	// Service traffic kube-proxy did not translate is refused on the node, unless
	// kube-proxy is off or does not translate through connection tracking (ipvs).
	var services []netip.Prefix
	if !cfg.Cluster.Proxy.Disabled && cfg.Cluster.Proxy.Mode != "ipvs" {
		serviceSubnets := cfg.Cluster.Network.ServiceSubnets
		if len(serviceSubnets) == 0 {
			serviceSubnets = []string{config.DefaultServiceSubnet}
		}
		for _, c := range serviceSubnets {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				return fmt.Errorf("cluster.network.serviceSubnets: %q: %w", c, err)
			}
			services = append(services, p.Masked())
		}
	}
	if key := fmt.Sprint(networks, services); key != s.masq {
		ipt := podnet.Iptables{Run: func(ctx context.Context, argv []string) ([]byte, error) {
			// machined reaps every child (PID 1): os/exec's wait would lose the race.
			return reaper.Command(ctx, "/usr/sbin/"+argv[0], argv[1:]...).CombinedOutput() // environment: reaper.MinimalEnv
		}}
		if err := ipt.Masquerade(ctx, networks); err != nil {
			return err
		}
		if err := ipt.RejectUntranslated(ctx, networks, services); err != nil {
			return err
		}
		fmt.Fprintf(s.logs, "masquerading what leaves the pod network %s; refusing Service traffic kube-proxy did not translate (%s)\n",
			strings.Join(podSubnets, ", "), joinPrefixes(services))
		s.masq = key
	}
	conf, err := addons.CNIConfigFor(env, cfg)
	if err != nil {
		return err
	}
	if string(conf) != s.conf {
		if err := writeCNIConfig(conf); err != nil {
			return err
		}
		fmt.Fprintf(s.logs, "wrote %s: pods get addresses out of %s, MTU %d\n", addons.CNIConfigFile, joinPrefixes(me.PodCIDRs), mtu)
		s.conf = string(conf)
	}
	s.said = ""
	return nil
}

// forwarding turns on forwarding for the families of the node's pod subnets.
func forwarding(subnets []netip.Prefix) error {
	files := []string{"/proc/sys/net/ipv4/ip_forward"}
	if slices.ContainsFunc(subnets, func(p netip.Prefix) bool { return p.Addr().Is6() }) {
		files = append(files, "/proc/sys/net/ipv6/conf/all/forwarding")
	}
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && strings.TrimSpace(string(b)) == "1" {
			continue
		}
		if err := os.WriteFile(f, []byte("1\n"), 0o644); err != nil {
			return fmt.Errorf("turn on forwarding: %w", err)
		}
	}
	return nil
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
