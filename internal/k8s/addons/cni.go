package addons

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/plinthos/plinth/internal/k8s/paths"
	"github.com/plinthos/plinth/pkg/config"
)

// CNIConfigFile is where machined writes CNIConfig's output on each node, for flannel and
// for the built-in pod network. containerd reports the pod network ready, and kubelet the
// node Ready, once it exists.
const CNIConfigFile = paths.CNIConfDir + "/10-plinth.conflist"

// OldCNIConfigFile is where it was written before: machined removes it, so that containerd
// (which takes the first file by name) reads CNIConfigFile.
const OldCNIConfigFile = paths.CNIConfDir + "/10-flannel.conflist"

// CNINetworkName is the name of the pod network in the CNI configuration.
const CNINetworkName = "plinth"

// SubnetEnv is the node's lease as flanneld writes it to SubnetEnvFile.
type SubnetEnv struct {
	// Network and IPv6Network are the cluster's pod networks (FLANNEL_NETWORK,
	// FLANNEL_IPV6_NETWORK); invalid when the family is off.
	Network, IPv6Network netip.Prefix
	// Subnet and IPv6Subnet are the node's pod subnets (FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET),
	// as flanneld writes them: the address is the subnet's first one, the bridge's.
	Subnet, IPv6Subnet netip.Prefix
	// MTU is the pod interfaces' MTU (FLANNEL_MTU): the node interface's, less the backend's
	// overhead (none for host-gw).
	MTU int
	// IPMasq says flanneld masquerades traffic leaving the pod network (FLANNEL_IPMASQ).
	IPMasq bool
}

// ParseSubnetEnv parses SubnetEnvFile's contents: KEY=VALUE lines; blank lines, comments
// and unknown keys are ignored. FLANNEL_MTU and at least one of FLANNEL_SUBNET and
// FLANNEL_IPV6_SUBNET are required.
func ParseSubnetEnv(data string) (SubnetEnv, error) {
	var env SubnetEnv
	var haveMTU bool
	prefix := func(key, value string, v6 bool) (netip.Prefix, error) {
		p, err := netip.ParsePrefix(value)
		if err != nil {
			return p, fmt.Errorf("subnet.env: %s: %w", key, err)
		}
		if p.Addr().Is6() != v6 {
			return p, fmt.Errorf("subnet.env: %s=%s is of the wrong IP family", key, value)
		}
		return p, nil
	}
	sc := bufio.NewScanner(strings.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return env, fmt.Errorf("subnet.env: line %d is not KEY=VALUE", n)
		}
		key, value = strings.TrimSpace(key), strings.Trim(strings.TrimSpace(value), `"`)
		var err error
		switch key {
		case "FLANNEL_NETWORK":
			env.Network, err = prefix(key, value, false)
		case "FLANNEL_SUBNET":
			env.Subnet, err = prefix(key, value, false)
		case "FLANNEL_IPV6_NETWORK":
			env.IPv6Network, err = prefix(key, value, true)
		case "FLANNEL_IPV6_SUBNET":
			env.IPv6Subnet, err = prefix(key, value, true)
		case "FLANNEL_MTU":
			env.MTU, err = strconv.Atoi(value)
			if err == nil && (env.MTU < 68 || env.MTU > 65535) {
				err = fmt.Errorf("out of range")
			}
			if err != nil {
				err = fmt.Errorf("subnet.env: FLANNEL_MTU=%s: %w", value, err)
			}
			haveMTU = true
		case "FLANNEL_IPMASQ":
			if env.IPMasq, err = strconv.ParseBool(value); err != nil {
				err = fmt.Errorf("subnet.env: FLANNEL_IPMASQ=%s: %w", value, err)
			}
		}
		if err != nil {
			return env, err
		}
	}
	if err := sc.Err(); err != nil {
		return env, err
	}
	switch {
	case !haveMTU:
		return env, fmt.Errorf("subnet.env: no FLANNEL_MTU")
	case !env.Subnet.IsValid() && !env.IPv6Subnet.IsValid():
		return env, fmt.Errorf("subnet.env: no FLANNEL_SUBNET nor FLANNEL_IPV6_SUBNET")
	}
	for _, c := range []struct {
		name            string
		subnet, network netip.Prefix
	}{{"FLANNEL_SUBNET", env.Subnet, env.Network}, {"FLANNEL_IPV6_SUBNET", env.IPv6Subnet, env.IPv6Network}} {
		if c.subnet.IsValid() && c.network.IsValid() && !contains(c.network, c.subnet) {
			return env, fmt.Errorf("subnet.env: %s %s is not in the network %s", c.name, c.subnet, c.network)
		}
	}
	return env, nil
}

// contains says whether the network outer holds the whole of inner.
func contains(outer, inner netip.Prefix) bool {
	return outer.Bits() <= inner.Bits() && outer.Contains(inner.Addr())
}

// The CNI configuration written by CNIConfig (a network configuration list, CNI spec 1.0).
type (
	cniConfList struct {
		CNIVersion string `json:"cniVersion"`
		Name       string `json:"name"`
		Plugins    []any  `json:"plugins"`
	}
	bridgePlugin struct {
		Type        string      `json:"type"`
		Bridge      string      `json:"bridge"`
		IsGateway   bool        `json:"isGateway"`
		IPMasq      bool        `json:"ipMasq"`
		HairpinMode bool        `json:"hairpinMode"`
		MTU         int         `json:"mtu"`
		IPAM        hostLocalIP `json:"ipam"`
	}
	hostLocalIP struct {
		Type   string      `json:"type"`
		Ranges [][]ipRange `json:"ranges"`
		Routes []ipRoute   `json:"routes"`
	}
	ipRange struct {
		Subnet string `json:"subnet"`
	}
	ipRoute struct {
		Dst string `json:"dst"`
	}
	portmapPlugin struct {
		Type         string          `json:"type"`
		Capabilities map[string]bool `json:"capabilities"`
	}
)

// CNIConfig returns the node's CNI configuration (for CNIConfigFile) from the contents of
// flanneld's SubnetEnvFile. It replaces flannel's own CNI plugin, which only turns that file
// into this same kind of bridge configuration, with the reference plugins in the node image:
//
//   - bridge: every pod's veth on the bridge cni0, which holds the subnet's first address
//     (isGateway) and is the pods' gateway. flanneld routes other nodes' subnets through
//     their nodes (host-gw), so the node forwards between cni0 and its interface.
//     hairpinMode lets a pod reach itself through a Service. ipMasq is off when flanneld
//     masquerades (FLANNEL_IPMASQ, which --ip-masq sets): flanneld exempts the whole pod
//     network, while the bridge plugin would masquerade traffic to other nodes' pods too.
//     The MTU is FLANNEL_MTU.
//   - host-local hands out the node's subnet (FLANNEL_SUBNET, its network address) and gives
//     pods a default route through the bridge. A route to the pod network alone
//     (FLANNEL_NETWORK) would not do: Service addresses are outside it, and are translated
//     by kube-proxy on the node only once the packet gets there. A route to FLANNEL_NETWORK
//     besides the default one would go through the same gateway, so there is none.
//   - portmap implements pods' hostPort.
//
// With IPv6 (FLANNEL_IPV6_SUBNET), the pods get an address of each family and a default
// route of each. cfg, when not nil, is checked against: the subnets must be in the
// cluster's pod subnets, or flanneld and the configuration disagree.
func CNIConfig(subnetEnv string, cfg *config.MachineConfig) ([]byte, error) {
	env, err := ParseSubnetEnv(subnetEnv)
	if err != nil {
		return nil, err
	}
	return CNIConfigFor(env, cfg)
}

// CNIConfigFor is CNIConfig of a lease that did not come from flanneld: the built-in pod
// network's, out of the node's pod subnets.
func CNIConfigFor(env SubnetEnv, cfg *config.MachineConfig) ([]byte, error) {
	if cfg != nil {
		podSubnets := effective(cfg).Network.PodSubnets
		for _, sn := range []netip.Prefix{env.Subnet, env.IPv6Subnet} {
			if sn.IsValid() && !inAny(podSubnets, sn) {
				return nil, fmt.Errorf("the node's pod subnet %s is not in the pod subnets %s of the configuration", sn, strings.Join(podSubnets, ", "))
			}
		}
	}
	ipam := hostLocalIP{Type: "host-local"}
	if env.Subnet.IsValid() {
		ipam.Ranges = append(ipam.Ranges, []ipRange{{Subnet: env.Subnet.Masked().String()}})
		ipam.Routes = append(ipam.Routes, ipRoute{Dst: "0.0.0.0/0"})
	}
	if env.IPv6Subnet.IsValid() {
		ipam.Ranges = append(ipam.Ranges, []ipRange{{Subnet: env.IPv6Subnet.Masked().String()}})
		ipam.Routes = append(ipam.Routes, ipRoute{Dst: "::/0"})
	}
	conf := cniConfList{
		CNIVersion: "1.0.0",
		Name:       CNINetworkName,
		Plugins: []any{
			bridgePlugin{
				Type:        "bridge",
				Bridge:      "cni0",
				IsGateway:   true,
				IPMasq:      !env.IPMasq,
				HairpinMode: true,
				MTU:         env.MTU,
				IPAM:        ipam,
			},
			portmapPlugin{Type: "portmap", Capabilities: map[string]bool{"portMappings": true}},
		},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// inAny says whether one of the CIDRs holds the whole of p.
func inAny(cidrs []string, p netip.Prefix) bool {
	for _, s := range cidrs {
		if c, err := netip.ParsePrefix(s); err == nil && contains(c.Masked(), p) {
			return true
		}
	}
	return false
}
