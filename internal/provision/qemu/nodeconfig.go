package qemu

import (
	"fmt"
	"net/netip"

	"github.com/plinthos/plinth/internal/provision"
	"github.com/plinthos/plinth/pkg/config"
)

// Facts of the VMs the node configurations state.
const (
	// InstallDisk is the VM's disk (virtio-blk).
	InstallDisk = "/dev/vda"
	// Link is the VM's network card on the cluster's bridge.
	Link = "eth0"
)

// nodeConfig turns a role's machine configuration into the one of node n, in a VM on the
// cluster network prefix: its host name is the node's name; eth0 has the node's static
// address, and no route (the network leads nowhere but to the other nodes and the host);
// time synchronisation is off, as no time server is reachable (the VM's clock is the
// host's, through the emulated RTC); the install disk is the VM's. The result is
// validated for metal, which is what the VM runs.
func nodeConfig(data []byte, n provision.NodeSpec, prefix netip.Prefix) ([]byte, error) {
	doc, err := config.Load(data, n.Name)
	if err != nil {
		return nil, fmt.Errorf("machine configuration of %s: %w", n.Name, err)
	}
	ip, err := netip.ParseAddr(n.IP)
	if err != nil || !prefix.Contains(ip) {
		return nil, fmt.Errorf("node %s: address %q is not in the cluster network %s", n.Name, n.IP, prefix)
	}
	cfg := doc.Config
	cfg.Machine.Network.Hostname = n.Name
	iface := config.Interface{Name: Link, Addresses: []string{netip.PrefixFrom(ip, prefix.Bits()).String()}}
	replaced := false
	for i, in := range cfg.Machine.Network.Interfaces {
		if in.Name == Link {
			// The provisioner owns the VM's only card; VLANs on it and an MTU stay.
			iface.VLANs, iface.MTU = in.VLANs, in.MTU
			cfg.Machine.Network.Interfaces[i], replaced = iface, true
		}
	}
	if !replaced {
		cfg.Machine.Network.Interfaces = append([]config.Interface{iface}, cfg.Machine.Network.Interfaces...)
	}
	cfg.Machine.Time.Disabled = true
	cfg.Machine.Install.Disk = InstallDisk
	if ps := config.Validate(cfg, config.ModeMetal); len(ps) > 0 {
		return nil, fmt.Errorf("the machine configuration of %s is not valid for a VM (check the patches):\n%w", n.Name, ps)
	}
	out, err := config.Marshal(cfg, false)
	if err != nil {
		return nil, fmt.Errorf("encode the machine configuration of %s: %w", n.Name, err)
	}
	return out, nil
}
