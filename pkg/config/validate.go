package config

import (
	"encoding/base64"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/plinthos/plinth/pkg/pki"
)

// TokenPattern is the format of join and bootstrap tokens.
var TokenPattern = regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)

// Validate checks a decoded document for the given mode and returns Problems located at
// the lines of the fields, or nil.
func (d *Document) Validate(mode Mode) error {
	ps := Validate(d.Config, mode)
	if len(ps) == 0 {
		return nil
	}
	return d.locate(ps).sorted()
}

// Validate checks every field of a configuration for the given mode. Empty fields that
// have defaults are accepted. Each problem says what is wrong and how to fix it.
func Validate(c *MachineConfig, mode Mode) Problems {
	v := &validator{mode: mode, cfg: c}
	if _, err := ParseMode(string(mode)); err != nil {
		v.add("", "%v", err)
		return v.ps
	}
	if c.APIVersion != APIVersion {
		v.add("apiVersion", "must be %s, got %q", APIVersion, c.APIVersion)
	}
	if c.Kind != KindMachineConfig {
		v.add("kind", "must be %s, got %q", KindMachineConfig, c.Kind)
	}
	v.machine(&c.Machine)
	v.cluster(&c.Cluster)
	return v.ps
}

type validator struct {
	mode Mode
	cfg  *MachineConfig
	ps   Problems
}

func (v *validator) add(field, format string, args ...any) {
	v.ps = append(v.ps, Problem{Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) controlPlane() bool { return v.cfg.Machine.Type == TypeControlPlane }

func (v *validator) machine(m *MachineSpec) {
	switch m.Type {
	case TypeControlPlane, TypeWorker:
	case "":
		v.add("machine.type", "is required: set it to controlplane or worker")
	default:
		v.add("machine.type", "must be controlplane or worker, got %q", m.Type)
	}
	v.token("machine.token", m.Token, "join token")
	v.ca("machine.ca", m.CA, "node API CA", v.controlPlane())
	for i, san := range m.CertSANs {
		v.hostOrIP(fmt.Sprintf("machine.certSANs[%d]", i), san)
	}
	for i, serial := range m.RevokedCertificates {
		if !isSerial(serial) {
			v.add(fmt.Sprintf("machine.revokedCertificates[%d]", i), "%q is not a certificate serial number; give it in hexadecimal as `plinthctl config info` prints it (colons allowed)", serial)
		}
	}
	v.install(&m.Install)
	v.kubelet(&m.Kubelet)
	v.network(&m.Network)
	if m.Time.Disabled && len(m.Time.Servers) > 0 {
		v.add("machine.time.servers", "time synchronisation is disabled; remove the servers or set disabled to false")
	}
	for i, s := range m.Time.Servers {
		v.hostOrIP(fmt.Sprintf("machine.time.servers[%d]", i), s)
	}
	for _, k := range slices.Sorted(maps.Keys(m.Sysctls)) {
		f := mapPath("machine.sysctls", k)
		if !sysctlRE.MatchString(k) {
			v.add(f, "%q is not a sysctl name; use the dotted form such as net.ipv4.ip_forward", k)
		}
		if m.Sysctls[k] == "" {
			v.add(f, "has an empty value; give the value to set, quoted (for example \"1\")")
		}
	}
	v.dockerOnly(m)
	v.metalNotYet(m)
	seenFiles := map[string]bool{}
	for i, f := range m.Files {
		v.file(fmt.Sprintf("machine.files[%d]", i), f, seenFiles)
	}
	for _, k := range slices.Sorted(maps.Keys(m.Env)) {
		if !envRE.MatchString(k) {
			v.add(mapPath("machine.env", k), "%q is not an environment variable name: use letters, digits and _, not starting with a digit", k)
		}
	}
	for _, host := range slices.Sorted(maps.Keys(m.Registries.Mirrors)) {
		f := mapPath("machine.registries.mirrors", host)
		if host != "*" && (!hostPortRE.MatchString(host) || !validOptionalPort(host)) {
			v.add(f, "%q is not a registry host; use a host name such as docker.io (with :port if needed) or * for every registry", host)
		}
		mirror := m.Registries.Mirrors[host]
		if len(mirror.Endpoints) == 0 {
			v.add(f+".endpoints", "is empty; list at least one mirror URL such as https://mirror.example.com")
		}
		for i, e := range mirror.Endpoints {
			v.url(fmt.Sprintf("%s.endpoints[%d]", f, i), e, "http", "https")
		}
	}
	for i, d := range m.Logging.Destinations {
		f := fmt.Sprintf("machine.logging.destinations[%d]", i)
		u, err := url.Parse(d.Endpoint)
		if err != nil || (u.Scheme != "tcp" && u.Scheme != "udp") || !validPort(u.Port()) || u.Hostname() == "" {
			v.add(f+".endpoint", "%q is not a log endpoint; use tcp://HOST:PORT or udp://HOST:PORT", d.Endpoint)
		}
		if d.Format != "" && d.Format != DefaultLogFormat {
			v.add(f+".format", "unknown format %q; the only format is %s", d.Format, DefaultLogFormat)
		}
	}
}

func (v *validator) install(in *InstallSpec) {
	switch {
	case v.mode == ModeMetal && in.Disk == "" && in.DiskSelector == nil:
		v.add("machine.install.disk", "is required on bare metal: set the disk to install to, such as /dev/sda, or machine.install.diskSelector (or validate with --mode docker for containers)")
	case in.Disk != "" && in.DiskSelector != nil:
		v.add("machine.install.diskSelector", "is given with machine.install.disk: give one of them")
	case in.Disk != "" && (!strings.HasPrefix(in.Disk, "/dev/") || path.Clean(in.Disk) != in.Disk):
		v.add("machine.install.disk", "%q is not a device path; use a path such as /dev/sda or /dev/disk/by-id/...", in.Disk)
	}
	if sel := in.DiskSelector; sel != nil {
		if *sel == (DiskSelector{}) {
			v.add("machine.install.diskSelector", "is empty: give size, model or bus")
		}
		if sel.Size != "" {
			if _, _, err := ParseSizeMatch(sel.Size); err != nil {
				v.add("machine.install.diskSelector.size", "%v", err)
			}
		}
		if sel.Model != "" {
			if _, err := path.Match(sel.Model, ""); err != nil {
				v.add("machine.install.diskSelector.model", "%q is not a valid glob: %v", sel.Model, err)
			}
		}
		if sel.Bus != "" && !slices.Contains(DiskBuses, sel.Bus) {
			v.add("machine.install.diskSelector.bus", "unknown bus %q: want one of %s", sel.Bus, strings.Join(DiskBuses, ", "))
		}
	}
	if in.Image != "" {
		v.image("machine.install.image", in.Image)
	}
	for i, a := range in.ExtraKernelArgs {
		if strings.TrimSpace(a) == "" || strings.ContainsAny(a, " \t\n") {
			v.add(fmt.Sprintf("machine.install.extraKernelArgs[%d]", i), "%q must be one non-empty argument without spaces", a)
		}
	}
}

func (v *validator) kubelet(k *KubeletSpec) {
	if k.Image != "" {
		v.image("machine.kubelet.image", k.Image)
	}
	v.extraArgs("machine.kubelet.extraArgs", k.ExtraArgs)
	for i, m := range k.ExtraMounts {
		f := fmt.Sprintf("machine.kubelet.extraMounts[%d]", i)
		if !path.IsAbs(m.Source) {
			v.add(f+".source", "%q must be an absolute path", m.Source)
		}
		if !path.IsAbs(m.Destination) {
			v.add(f+".destination", "%q must be an absolute path", m.Destination)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(k.NodeLabels)) {
		f := mapPath("machine.kubelet.nodeLabels", key)
		if msg := labelKeyProblem(key); msg != "" {
			v.add(f, "label key %q %s", key, msg)
		}
		if val := k.NodeLabels[key]; val != "" && (len(val) > 63 || !labelValueRE.MatchString(val)) {
			v.add(f, "label value %q must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", val)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(k.NodeTaints)) {
		f := mapPath("machine.kubelet.nodeTaints", key)
		if msg := labelKeyProblem(key); msg != "" {
			v.add(f, "taint key %q %s", key, msg)
		}
		val, effect, ok := strings.Cut(k.NodeTaints[key], ":")
		if !ok || !slices.Contains([]string{"NoSchedule", "PreferNoSchedule", "NoExecute"}, effect) {
			v.add(f, "%q must be VALUE:EFFECT (or :EFFECT) with EFFECT NoSchedule, PreferNoSchedule or NoExecute", k.NodeTaints[key])
		} else if val != "" && (len(val) > 63 || !labelValueRE.MatchString(val)) {
			v.add(f, "taint value %q must be at most 63 letters, digits, '-', '_' or '.'", val)
		}
	}
}

var bondModes = []string{"balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb"}

func (v *validator) network(n *NetworkSpec) {
	if n.Hostname != "" && !isDNSName(n.Hostname) {
		v.add("machine.network.hostname", "%q is not a valid host name: use letters, digits and '-' in dot-separated labels of at most 63 characters", n.Hostname)
	}
	names := map[string]bool{}
	for i, in := range n.Interfaces {
		f := fmt.Sprintf("machine.network.interfaces[%d]", i)
		switch {
		case in.Name == "":
			v.add(f+".name", "is required: the link name, such as eth0 or bond0")
		case len(in.Name) > 15 || strings.ContainsAny(in.Name, "/ \t:"):
			v.add(f+".name", "%q is not a link name: at most 15 characters, no '/', ':' or spaces", in.Name)
		case names[in.Name]:
			v.add(f+".name", "interface %q is configured twice; merge the two entries", in.Name)
		}
		names[in.Name] = true
		if in.Ignore && (in.DHCP || len(in.Addresses) > 0 || len(in.Routes) > 0 || len(in.VLANs) > 0 || in.Bond != nil) {
			v.add(f+".ignore", "an ignored interface cannot also be configured; remove ignore or the other settings")
		}
		v.addresses(f, in.Addresses)
		v.routes(f, in.Routes)
		v.mtu(f+".mtu", in.MTU)
		vlanIDs := map[int]bool{}
		for j, vl := range in.VLANs {
			vf := fmt.Sprintf("%s.vlans[%d]", f, j)
			if vl.VLANID < 1 || vl.VLANID > 4094 {
				v.add(vf+".vlanId", "%d is not a VLAN id; use 1 to 4094", vl.VLANID)
			} else if vlanIDs[vl.VLANID] {
				v.add(vf+".vlanId", "VLAN %d is configured twice on %s", vl.VLANID, in.Name)
			}
			vlanIDs[vl.VLANID] = true
			v.addresses(vf, vl.Addresses)
			v.routes(vf, vl.Routes)
			v.mtu(vf+".mtu", vl.MTU)
		}
		if b := in.Bond; b != nil {
			if len(b.Interfaces) == 0 {
				v.add(f+".bond.interfaces", "is empty; list the links that make up the bond, such as [eth0, eth1]")
			}
			for j, member := range b.Interfaces {
				if member == in.Name {
					v.add(fmt.Sprintf("%s.bond.interfaces[%d]", f, j), "a bond cannot contain itself")
				}
			}
			if !slices.Contains(bondModes, b.Mode) {
				v.add(f+".bond.mode", "%q is not a bonding mode; use one of %s", b.Mode, strings.Join(bondModes, ", "))
			}
			if b.LACPRate != "" {
				if b.LACPRate != "slow" && b.LACPRate != "fast" {
					v.add(f+".bond.lacpRate", "%q must be slow or fast", b.LACPRate)
				} else if b.Mode != "802.3ad" {
					v.add(f+".bond.lacpRate", "applies only to mode 802.3ad; remove it")
				}
			}
		}
	}
	for i, ns := range n.Nameservers {
		if _, err := netip.ParseAddr(ns); err != nil {
			v.add(fmt.Sprintf("machine.network.nameservers[%d]", i), "%q is not an IP address; name servers are given by address, such as 1.1.1.1", ns)
		}
	}
}

func (v *validator) addresses(f string, addrs []string) {
	for i, a := range addrs {
		if _, err := netip.ParsePrefix(a); err != nil {
			v.add(fmt.Sprintf("%s.addresses[%d]", f, i), "%q is not an address in CIDR notation; write it with its prefix length, such as 192.168.1.10/24", a)
		}
	}
}

func (v *validator) routes(f string, routes []Route) {
	for i, r := range routes {
		rf := fmt.Sprintf("%s.routes[%d]", f, i)
		if r.Network != "" {
			v.cidrNetwork(rf+".network", r.Network)
		}
		if r.Gateway != "" {
			if _, err := netip.ParseAddr(r.Gateway); err != nil {
				v.add(rf+".gateway", "%q is not an IP address", r.Gateway)
			}
		}
		if r.Source != "" {
			if _, err := netip.ParseAddr(r.Source); err != nil {
				v.add(rf+".source", "%q is not an IP address", r.Source)
			}
		}
		if r.Network == "" && r.Gateway == "" {
			v.add(rf, "a default route needs a gateway; set gateway (or network for an on-link route)")
		}
	}
}

// cidrNetwork checks a CIDR that must be a network address (host bits zero).
func (v *validator) cidrNetwork(f, cidr string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		v.add(f, "%q is not a network in CIDR notation, such as 10.244.0.0/16", cidr)
		return p, false
	}
	if p.Masked() != p {
		v.add(f, "%q has host bits set; did you mean %s?", cidr, p.Masked())
		return p, false
	}
	return p, true
}

func (v *validator) mtu(f string, mtu int) {
	if mtu != 0 && (mtu < 576 || mtu > 9216) {
		v.add(f, "%d is out of range; use 576 to 9216, or leave it out for the default", mtu)
	}
}

var fileRoots = []string{"/var/", "/etc/cri/conf.d/"}

func (v *validator) file(f string, file File, seen map[string]bool) {
	switch {
	case !path.IsAbs(file.Path) || path.Clean(file.Path) != file.Path:
		v.add(f+".path", "%q must be a clean absolute path", file.Path)
	case !slices.ContainsFunc(fileRoots, func(root string) bool { return strings.HasPrefix(file.Path, root) }):
		v.add(f+".path", "%q is on the read-only root file system; write files under /var or /etc/cri/conf.d", file.Path)
	case seen[file.Path]:
		v.add(f+".path", "%q is written twice; merge the two entries", file.Path)
	}
	seen[file.Path] = true
	if file.Op != "" && !slices.Contains([]string{"create", "overwrite", "append"}, file.Op) {
		v.add(f+".op", "%q must be create, overwrite or append", file.Op)
	}
}

func (v *validator) cluster(c *ClusterSpec) {
	if c.ID == "" {
		v.add("cluster.id", "is required; it is generated with the secrets (plinthctl gen secrets)")
	}
	if c.Secret == "" {
		v.add("cluster.secret", "is required; it is generated with the secrets (plinthctl gen secrets)")
	}
	switch {
	case c.Name == "":
		v.add("cluster.name", "is required: a short name such as demo")
	case len(c.Name) > 63 || !dnsLabelRE.MatchString(c.Name):
		v.add("cluster.name", "%q must be lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit", c.Name)
	}
	v.endpoint(c.ControlPlane.Endpoint)
	v.clusterNetwork(&c.Network)
	v.token("cluster.token", c.Token, "bootstrap token")
	cp := v.controlPlane()
	v.ca("cluster.ca", c.CA, "Kubernetes CA", cp)
	v.controlPlaneOnlyCA("cluster.aggregatorCA", c.AggregatorCA, "front-proxy CA")
	v.controlPlaneOnlyCA("cluster.etcd.ca", c.Etcd.CA, "etcd CA")
	switch {
	case cp && len(c.ServiceAccount.Key) == 0:
		v.add("cluster.serviceAccount.key", "is required on a control-plane machine; regenerate the config or copy it from the secrets bundle")
	case cp:
		if _, err := pki.ParseKeyPEM(c.ServiceAccount.Key); err != nil {
			v.add("cluster.serviceAccount.key", "is not a PEM private key: %v", err)
		}
	case len(c.ServiceAccount.Key) > 0:
		v.add("cluster.serviceAccount.key", "a worker must not hold the service account key; remove it")
	}
	switch {
	case cp && c.SecretboxEncryptionSecret == "":
		v.add("cluster.secretboxEncryptionSecret", "is required on a control-plane machine; generate 32 random bytes: head -c32 /dev/urandom | base64")
	case cp:
		if b, err := base64.StdEncoding.DecodeString(c.SecretboxEncryptionSecret); err != nil || len(b) != 32 {
			v.add("cluster.secretboxEncryptionSecret", "must be 32 bytes in base64; generate one with: head -c32 /dev/urandom | base64")
		}
	case c.SecretboxEncryptionSecret != "":
		v.add("cluster.secretboxEncryptionSecret", "a worker must not hold the secrets encryption key; remove it")
	}
	for _, img := range []struct{ field, ref string }{
		{"cluster.apiServer.image", c.APIServer.Image}, {"cluster.controllerManager.image", c.ControllerManager.Image},
		{"cluster.scheduler.image", c.Scheduler.Image}, {"cluster.proxy.image", c.Proxy.Image},
		{"cluster.etcd.image", c.Etcd.Image}, {"cluster.coreDNS.image", c.CoreDNS.Image},
	} {
		if img.ref != "" {
			v.image(img.field, img.ref)
		}
	}
	v.extraArgs("cluster.apiServer.extraArgs", c.APIServer.ExtraArgs)
	v.extraArgs("cluster.controllerManager.extraArgs", c.ControllerManager.ExtraArgs)
	v.extraArgs("cluster.scheduler.extraArgs", c.Scheduler.ExtraArgs)
	v.extraArgs("cluster.proxy.extraArgs", c.Proxy.ExtraArgs)
	v.extraArgs("cluster.etcd.extraArgs", c.Etcd.ExtraArgs)
	if s := c.Etcd.Snapshots; s.Interval != "" {
		if d, err := time.ParseDuration(s.Interval); err != nil || d < time.Minute {
			v.add("cluster.etcd.snapshots.interval", "%q must be a duration of at least 1m, such as 30m or 6h", s.Interval)
		}
	}
	if c.Etcd.Snapshots.Keep < 0 {
		v.add("cluster.etcd.snapshots.keep", "%d must not be negative (0 means the default, 24)", c.Etcd.Snapshots.Keep)
	}
	for i, san := range c.APIServer.CertSANs {
		v.hostOrIP(fmt.Sprintf("cluster.apiServer.certSANs[%d]", i), san)
	}
	if c.Proxy.Mode != "" && !slices.Contains([]string{"iptables", "ipvs", "nftables"}, c.Proxy.Mode) {
		v.add("cluster.proxy.mode", "%q must be iptables, ipvs or nftables", c.Proxy.Mode)
	}
	for i, u := range c.ExtraManifests {
		v.url(fmt.Sprintf("cluster.extraManifests[%d]", i), u, "http", "https")
	}
	names := map[string]bool{}
	for i, m := range c.InlineManifests {
		f := fmt.Sprintf("cluster.inlineManifests[%d]", i)
		switch {
		case m.Name == "":
			v.add(f+".name", "is required: a name that identifies the manifest")
		case names[m.Name]:
			v.add(f+".name", "%q is used twice; give each manifest its own name", m.Name)
		}
		names[m.Name] = true
		if strings.TrimSpace(m.Contents) == "" {
			v.add(f+".contents", "is empty; put the manifest's YAML here or remove the entry")
		}
	}
}

func (v *validator) endpoint(ep string) {
	const f = "cluster.controlPlane.endpoint"
	if ep == "" {
		v.add(f, "is required: the Kubernetes API URL, such as https://10.5.0.2:6443")
		return
	}
	u, err := url.Parse(ep)
	switch {
	case err != nil || u.Host == "":
		v.add(f, "%q is not a URL; use https://HOST:PORT, such as https://10.5.0.2:6443", ep)
	case u.Scheme != "https":
		v.add(f, "%q must use https (the Kubernetes API is served over TLS), such as https://%s", ep, u.Host)
	case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		v.add(f, "%q must be only scheme, host and port, such as https://%s", ep, u.Host)
	default:
		if strings.HasSuffix(u.Host, ":") || u.Port() != "" && !validPort(u.Port()) {
			v.add(f, "port %q is not a port number (1 to 65535)", u.Port())
		}
		if !isDNSName(u.Hostname()) && net.ParseIP(u.Hostname()) == nil {
			v.add(f, "host %q is neither a DNS name nor an IP address", u.Hostname())
		}
	}
}

func (v *validator) clusterNetwork(n *ClusterNetworkSpec) {
	if n.DNSDomain != "" && !isDNSName(n.DNSDomain) {
		v.add("cluster.network.dnsDomain", "%q is not a DNS domain, such as cluster.local", n.DNSDomain)
	}
	// Empty lists mean the defaults; the other list is judged against them.
	pods, podsOK := v.subnets("cluster.network.podSubnets", n.PodSubnets, "pod", 0, 0)
	if len(n.PodSubnets) == 0 {
		pods = []netip.Prefix{netip.MustParsePrefix(DefaultPodSubnet)}
	}
	services, servicesOK := v.subnets("cluster.network.serviceSubnets", n.ServiceSubnets, "service", 12, 108)
	if len(n.ServiceSubnets) == 0 {
		services = []netip.Prefix{netip.MustParsePrefix(DefaultServiceSubnet)}
	}
	for _, p := range pods {
		for _, s := range services {
			if p.Overlaps(s) {
				v.add("cluster.network.serviceSubnets", "service subnet %s overlaps pod subnet %s; choose disjoint ranges, such as 10.244.0.0/16 for pods and 10.96.0.0/12 for services", s, p)
			}
		}
	}
	if podsOK && servicesOK && (pods[0].Addr().Is4() != services[0].Addr().Is4() || len(pods) != len(services)) {
		v.add("cluster.network.serviceSubnets", "pod and service subnets must cover the same IP families in the same order")
	}
	switch n.CNI.Name {
	case "", "flannel", "plinth", "none":
		if len(n.CNI.URLs) > 0 {
			v.add("cluster.network.cni.urls", "applies only to name: custom; remove the URLs or set name to custom")
		}
	case "custom":
		if len(n.CNI.URLs) == 0 {
			v.add("cluster.network.cni.urls", "is empty; a custom CNI needs the URLs of its manifests")
		}
		for i, u := range n.CNI.URLs {
			v.url(fmt.Sprintf("cluster.network.cni.urls[%d]", i), u, "http", "https")
		}
	default:
		v.add("cluster.network.cni.name", "%q must be flannel, plinth, custom or none", n.CNI.Name)
	}
	switch n.CNI.Backend {
	case "", FlannelHostGW, FlannelVXLAN:
		if n.CNI.Backend != "" && n.CNI.Name != "" && n.CNI.Name != "flannel" && n.CNI.Name != "plinth" {
			v.add("cluster.network.cni.backend", "applies only to name: plinth or flannel; remove it")
		}
		if n.CNI.Backend != "" && n.CNI.FlannelBackend != "" && n.CNI.Backend != n.CNI.FlannelBackend {
			v.add("cluster.network.cni.flannelBackend", "%q differs from backend %q; it is backend's older name: remove it", n.CNI.FlannelBackend, n.CNI.Backend)
		}
	default:
		v.add("cluster.network.cni.backend", "%q must be host-gw or vxlan", n.CNI.Backend)
	}
	switch n.CNI.FlannelBackend {
	case "", FlannelHostGW, FlannelVXLAN:
		if n.CNI.FlannelBackend != "" && n.CNI.Name != "" && n.CNI.Name != "flannel" && n.CNI.Name != "plinth" {
			v.add("cluster.network.cni.flannelBackend", "applies only to name: plinth or flannel; remove it")
		}
	default:
		v.add("cluster.network.cni.flannelBackend", "%q must be host-gw or vxlan", n.CNI.FlannelBackend)
	}
}

// subnets checks a list of at most one network per IP family; minBits4/minBits6 bound the
// size (a prefix shorter than that is too large), 0 for no bound. It returns the valid
// networks, and whether every entry was valid.
func (v *validator) subnets(f string, cidrs []string, what string, minBits4, minBits6 int) ([]netip.Prefix, bool) {
	var out []netip.Prefix
	families := map[bool]bool{}
	for i, c := range cidrs {
		p, ok := v.cidrNetwork(fmt.Sprintf("%s[%d]", f, i), c)
		if !ok {
			continue
		}
		is4 := p.Addr().Is4()
		if families[is4] {
			v.add(fmt.Sprintf("%s[%d]", f, i), "a second %s %s subnet; give at most one per IP family", family(is4), what)
			continue
		}
		families[is4] = true
		if limit := map[bool]int{true: minBits4, false: minBits6}[is4]; limit > 0 && p.Bits() < limit {
			v.add(fmt.Sprintf("%s[%d]", f, i), "%s is too large for a %s subnet; use a /%d or smaller", c, what, limit)
		}
		out = append(out, p)
	}
	return out, len(out) == len(cidrs)
}

func family(is4 bool) string {
	if is4 {
		return "IPv4"
	}
	return "IPv6"
}

// token checks a join or bootstrap token.
func (v *validator) token(f, tok, what string) {
	switch {
	case tok == "":
		v.add(f, "is required: the %s, generated with the secrets (plinthctl gen secrets)", what)
	case !TokenPattern.MatchString(tok):
		v.add(f, "is not a valid %s: it must be 6 and 16 characters of [a-z0-9] joined by a dot, such as abcdef.0123456789abcdef", what)
	}
}

// ca checks a CA; the key is required when withKey and forbidden otherwise.
func (v *validator) ca(f string, ck CertAndKey, what string, withKey bool) {
	if len(ck.Crt) == 0 {
		v.add(f+".crt", "is required: the %s certificate (regenerate the config, or copy it from the secrets bundle)", what)
		return
	}
	cert, err := pki.ParseCertPEM(ck.Crt)
	if err != nil {
		v.add(f+".crt", "is not a PEM certificate: %v", err)
		return
	}
	if !cert.IsCA {
		v.add(f+".crt", "is not a CA certificate (%s): use the %s", cert.Subject.CommonName, what)
	}
	switch {
	case withKey && len(ck.Key) == 0:
		v.add(f+".key", "is required on a control-plane machine: the %s key", what)
	case !withKey && len(ck.Key) > 0:
		v.add(f+".key", "a worker must not hold the %s key; remove machine/cluster CA keys from worker configs (regenerate worker.yaml with plinthctl gen config)", what)
	case withKey:
		key, err := pki.ParseKeyPEM(ck.Key)
		if err != nil {
			v.add(f+".key", "is not a PEM private key: %v", err)
		} else if err := pki.KeyMatchesCert(cert, key); err != nil {
			v.add(f+".key", "does not match the certificate in %s.crt: %v; take both from the same secrets bundle", f, err)
		}
	}
}

// controlPlaneOnlyCA checks a CA that control-plane machines must hold in full and workers
// must not hold at all.
func (v *validator) controlPlaneOnlyCA(f string, ck CertAndKey, what string) {
	if v.controlPlane() {
		v.ca(f, ck, what, true)
		return
	}
	if len(ck.Crt) > 0 || len(ck.Key) > 0 {
		v.add(f, "a worker must not hold the %s; remove it", what)
	}
}

func (v *validator) extraArgs(f string, args map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(args)) {
		if k == "" || strings.HasPrefix(k, "-") || strings.ContainsAny(k, " =\t") {
			v.add(mapPath(f, k), "%q is not a flag name; write it without leading dashes or '=', such as max-pods", k)
		}
	}
}

func (v *validator) hostOrIP(f, s string) {
	if net.ParseIP(s) == nil && !isDNSName(s) {
		v.add(f, "%q is neither an IP address nor a DNS name", s)
	}
}

func (v *validator) url(f, s string, schemes ...string) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || !slices.Contains(schemes, u.Scheme) {
		v.add(f, "%q is not a URL with scheme %s", s, strings.Join(schemes, " or "))
	}
}

func (v *validator) image(f, ref string) {
	if !imageRE.MatchString(ref) {
		v.add(f, "%q is not an image reference; use REPOSITORY[:TAG][@DIGEST] in lower case, such as plinth.local/kube-apiserver:v1.37.2", ref)
	}
}

var (
	sysctlRE     = regexp.MustCompile(`^[a-z0-9_]+(\.[A-Za-z0-9_\-]+)+$`)
	envRE        = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	dnsLabelRE   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	hostnameRE   = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)
	hostPortRE   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$`)
	labelNameRE  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$`)
	labelValueRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$`)
	imageRE      = regexp.MustCompile(`^[a-z0-9]+([._/:-][a-z0-9]+)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$`)
)

// isDNSName reports whether s is a DNS name of at most 253 characters. A name whose last
// label is all digits (999.1.1.1, 10.0.0.1.5) is a mistyped IP address, not a name.
func isDNSName(s string) bool {
	if len(s) > 253 || !hostnameRE.MatchString(s) {
		return false
	}
	last := s[strings.LastIndex(s, ".")+1:]
	return strings.Trim(last, "0123456789") != ""
}

// validPort reports whether p is a port number from 1 to 65535.
func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// validOptionalPort checks the port of HOST[:PORT], when there is one.
func validOptionalPort(hostPort string) bool {
	_, port, found := strings.Cut(hostPort, ":")
	return !found || validPort(port)
}

// labelKeyProblem checks a Kubernetes label or taint key: [prefix/]name.
func labelKeyProblem(key string) string {
	prefix, name, hasPrefix := strings.Cut(key, "/")
	if !hasPrefix {
		name, prefix = prefix, ""
	}
	if hasPrefix && !isDNSName(prefix) {
		return "has a prefix that is not a DNS subdomain"
	}
	if !labelNameRE.MatchString(name) {
		return "must be [PREFIX/]NAME with NAME at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
	}
	return ""
}

// isSerial reports whether s is a certificate serial number in hexadecimal, optionally
// with a 0x prefix and colons between bytes.
func isSerial(s string) bool {
	t := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "0x")
	t = strings.ReplaceAll(t, ":", "")
	if t == "" || len(t) > 40 {
		return false
	}
	for _, r := range t {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return true
}

// containerSysctlPrefixes are the sysctls a node container may set: those of the network
// and IPC namespaces it owns (the same set Kubernetes calls namespaced). Any other sysctl
// is the host's, shared with every container.
var containerSysctlPrefixes = []string{"net.", "kernel.shm", "kernel.msg", "kernel.sem", "fs.mqueue."}

// dockerOnly refuses, in Docker mode, the fields that mean nothing for a node container:
// no field is accepted and then ignored.
func (v *validator) dockerOnly(m *MachineSpec) {
	if v.mode != ModeDocker {
		return
	}
	for i := range m.Network.Interfaces {
		v.add(fmt.Sprintf("machine.network.interfaces[%d]", i), "is not supported in Docker: Docker gives a node container its network; remove it (interfaces apply on metal)")
	}
	if len(m.Time.Servers) > 0 {
		v.add("machine.time.servers", "is not supported in Docker: a container shares the host's clock; remove it (time servers apply on metal and in clouds)")
	}
	for i := range m.Kubelet.ExtraMounts {
		v.add(fmt.Sprintf("machine.kubelet.extraMounts[%d]", i), "is not supported in Docker: kubelet runs as a process of the node container and sees its whole file system; remove it")
	}
	for i := range m.Logging.Destinations {
		v.add(fmt.Sprintf("machine.logging.destinations[%d]", i), "is not supported yet: logs are kept on the node (plinthctl logs); remove it")
	}
	for _, k := range slices.Sorted(maps.Keys(m.Sysctls)) {
		if !slices.ContainsFunc(containerSysctlPrefixes, func(p string) bool { return strings.HasPrefix(k, p) }) {
			v.add(mapPath("machine.sysctls", k), "%q is the host's, not the node container's: in Docker only the namespaced sysctls (net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*) can be set", k)
		}
	}
}

// metalNotYet refuses, in metal mode, the fields the metal platform does not act on yet:
// validation accepts nothing that the platform then ignores.
func (v *validator) metalNotYet(m *MachineSpec) {
	if v.mode != ModeMetal {
		return
	}
	if m.Install.Image != "" {
		v.add("machine.install.image", "is not supported on metal yet: the installer installs the OS of the install media it booted; remove it")
	}
	for i, in := range m.Network.Interfaces {
		if in.Bond != nil {
			v.add(fmt.Sprintf("machine.network.interfaces[%d].bond", i), "is not supported on metal yet: the OS image does not ship the bonding driver; remove it")
		}
	}
	for i := range m.Logging.Destinations {
		v.add(fmt.Sprintf("machine.logging.destinations[%d]", i), "is not supported yet: logs are kept on the node (plinthctl logs); remove it")
	}
	for _, k := range slices.Sorted(maps.Keys(m.Env)) {
		v.add(mapPath("machine.env", k), "is not supported on metal yet: it is the environment of containerd and kubelet, which the OS image does not run yet; remove it")
	}
}
