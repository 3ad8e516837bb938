package config_test

import (
	"encoding/base64"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/pki"
)

// extraPKI holds certificates that the generated bundle lacks: a leaf certificate (not a
// CA) and an unrelated CA, both with keys.
type extraPKI struct {
	leaf, otherCA *pki.KeyPair
}

var (
	extraOnce sync.Once
	extraVal  extraPKI
	extraErr  error
)

func extras(t *testing.T) extraPKI {
	t.Helper()
	extraOnce.Do(func() {
		b := generated(t).bundle
		osCA, err := pki.LoadCA(b.CAs.OS.Crt, b.CAs.OS.Key)
		if err != nil {
			extraErr = err
			return
		}
		if extraVal.leaf, err = pki.Issue(osCA, pki.CertOptions{CommonName: "node1", Usage: pki.UsageServer, Validity: time.Hour}); err != nil {
			extraErr = err
			return
		}
		extraVal.otherCA, extraErr = pki.NewCA(pki.CAOptions{CommonName: "other-ca", Validity: time.Hour})
	})
	if extraErr != nil {
		t.Fatalf("generate extra PKI: %v", extraErr)
	}
	return extraVal
}

// wantField is one expected validation problem: its exact field path and a phrase of its
// message.
type wantField struct {
	field, phrase string
}

// checkFields asserts that ps holds exactly the wanted problems (in any order).
func checkFields(t *testing.T, ps config.Problems, want []wantField) {
	t.Helper()
	got := slices.Clone(ps)
	slices.SortStableFunc(got, func(a, b config.Problem) int { return strings.Compare(a.Field, b.Field) })
	want = slices.Clone(want)
	slices.SortStableFunc(want, func(a, b wantField) int { return strings.Compare(a.field, b.field) })
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v\nwant fields: %v", len(got), len(want), config.Problems(got), want)
	}
	for i, w := range want {
		if got[i].Field != w.field {
			t.Errorf("problem %d: Field = %q, want %q (%s)", i, got[i].Field, w.field, got[i])
			continue
		}
		if !strings.Contains(got[i].Msg, w.phrase) {
			t.Errorf("problem %s: message does not contain %q", got[i], w.phrase)
		}
		if got[i].Line != 0 || got[i].File != "" {
			t.Errorf("problem %s: config.Validate must not invent a location", got[i])
		}
	}
}

func TestValidateGenerated(t *testing.T) {
	for _, mode := range config.Modes {
		for name, c := range map[string]*config.MachineConfig{"controlplane": controlPlane(t), "worker": worker(t)} {
			if ps := config.Validate(c, mode); len(ps) != 0 {
				t.Errorf("generated %s config, mode %s: %v", name, mode, ps)
			}
			// A defaulted config validates too.
			config.ApplyDefaults(c)
			if ps := config.Validate(c, mode); len(ps) != 0 {
				t.Errorf("generated %s config with defaults, mode %s: %v", name, mode, ps)
			}
		}
	}
}

func TestValidateUnknownMode(t *testing.T) {
	ps := config.Validate(controlPlane(t), config.Mode("vm"))
	if len(ps) != 1 || ps[0].Field != "" || !strings.Contains(ps[0].Msg, `unknown mode "vm"`) {
		t.Errorf("Validate(mode vm) = %v", ps)
	}
}

func TestParseMode(t *testing.T) {
	for _, m := range []string{"docker", "metal", "cloud"} {
		got, err := config.ParseMode(m)
		if err != nil || string(got) != m {
			t.Errorf("ParseMode(%q) = %q, %v", m, got, err)
		}
	}
	for _, m := range []string{"", "Docker", "vm"} {
		if _, err := config.ParseMode(m); err == nil || !strings.Contains(err.Error(), "use docker, metal or cloud") {
			t.Errorf("ParseMode(%q) error = %v", m, err)
		}
	}
}

type validationCase struct {
	name   string
	worker bool        // start from the worker config instead of the control-plane one
	mode   config.Mode // "" means metal
	mutate func(c *config.MachineConfig)
	want   []wantField // empty: the mutated config is valid
}

func one(field, phrase string) []wantField { return []wantField{{field, phrase}} }

func runValidationCases(t *testing.T, tests []validationCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := controlPlane(t)
			if tt.worker {
				c = worker(t)
			}
			tt.mutate(c)
			mode := tt.mode
			if mode == "" {
				mode = config.ModeCloud
			}
			checkFields(t, config.Validate(c, mode), tt.want)
		})
	}
}

func iface(c *config.MachineConfig, ifs ...config.Interface) {
	c.Machine.Network.Interfaces = ifs
}

func TestValidateMachine(t *testing.T) {
	x := extras(t)
	tests := []validationCase{
		// Document identity.
		{name: "wrong apiVersion", mutate: func(c *config.MachineConfig) { c.APIVersion = "v1" },
			want: one("apiVersion", `must be plinth.dev/v1alpha1, got "v1"`)},
		{name: "wrong kind", mutate: func(c *config.MachineConfig) { c.Kind = "" },
			want: one("kind", "must be MachineConfig")},

		// Type.
		{name: "type missing", mutate: func(c *config.MachineConfig) { c.Machine.Type = "" },
			// Without a type the machine is not a control plane: it must then hold no keys.
			want: []wantField{
				{"machine.type", "is required: set it to controlplane or worker"},
				{"machine.ca.key", "a worker must not hold the node API CA key"},
				{"cluster.ca.key", "a worker must not hold the Kubernetes CA key"},
				{"cluster.aggregatorCA", "a worker must not hold the front-proxy CA"},
				{"cluster.etcd.ca", "a worker must not hold the etcd CA"},
				{"cluster.serviceAccount.key", "a worker must not hold the service account key"},
				{"cluster.secretboxEncryptionSecret", "a worker must not hold the secrets encryption key"},
			}},
		{name: "type unknown", worker: true, mutate: func(c *config.MachineConfig) { c.Machine.Type = "master" },
			want: one("machine.type", `must be controlplane or worker, got "master"`)},

		// Join token.
		{name: "token missing", mutate: func(c *config.MachineConfig) { c.Machine.Token = "" },
			want: one("machine.token", "is required: the join token")},
		{name: "token upper case", mutate: func(c *config.MachineConfig) { c.Machine.Token = "ABCDEF.0123456789abcdef" },
			want: one("machine.token", "is not a valid join token")},
		{name: "token too short", mutate: func(c *config.MachineConfig) { c.Machine.Token = "abcdef.0123" },
			want: one("machine.token", "6 and 16 characters of [a-z0-9]")},
		{name: "token without dot", mutate: func(c *config.MachineConfig) { c.Machine.Token = "abcdef0123456789abcdefg" },
			want: one("machine.token", "is not a valid join token")},

		// Revoked client certificates.
		{name: "revoked serial not hex", mutate: func(c *config.MachineConfig) {
			c.Machine.RevokedCertificates = []string{"0x1a:2B", "zz"}
		}, want: one("machine.revokedCertificates[1]", `"zz" is not a certificate serial number`)},

		// Node API CA.
		{name: "CA certificate missing", mutate: func(c *config.MachineConfig) { c.Machine.CA.Crt = nil },
			want: one("machine.ca.crt", "is required: the node API CA certificate")},
		{name: "CA certificate missing on a worker", worker: true, mutate: func(c *config.MachineConfig) { c.Machine.CA.Crt = nil },
			want: one("machine.ca.crt", "is required")},
		{name: "CA certificate not PEM", mutate: func(c *config.MachineConfig) { c.Machine.CA.Crt = []byte("not a certificate") },
			want: one("machine.ca.crt", "is not a PEM certificate")},
		{name: "CA certificate is a PEM key", mutate: func(c *config.MachineConfig) { c.Machine.CA.Crt = c.Machine.CA.Key },
			want: one("machine.ca.crt", "is not a PEM certificate")},
		{name: "CA certificate not a CA", mutate: func(c *config.MachineConfig) {
			c.Machine.CA = config.CertAndKey{Crt: x.leaf.CertPEM, Key: x.leaf.KeyPEM}
		}, want: one("machine.ca.crt", "is not a CA certificate (node1)")},
		{name: "CA certificate not a CA on a worker", worker: true, mutate: func(c *config.MachineConfig) {
			c.Machine.CA = config.CertAndKey{Crt: x.leaf.CertPEM}
		}, want: one("machine.ca.crt", "is not a CA certificate")},
		{name: "CA key missing on a control plane", mutate: func(c *config.MachineConfig) { c.Machine.CA.Key = nil },
			want: one("machine.ca.key", "is required on a control-plane machine: the node API CA key")},
		{name: "CA key of another CA", mutate: func(c *config.MachineConfig) { c.Machine.CA.Key = x.otherCA.KeyPEM },
			want: one("machine.ca.key", "does not match the certificate in machine.ca.crt")},
		{name: "CA key of another of the cluster's CAs", mutate: func(c *config.MachineConfig) { c.Machine.CA.Key = c.Cluster.CA.Key },
			want: one("machine.ca.key", "does not match")},
		{name: "CA key not PEM", mutate: func(c *config.MachineConfig) { c.Machine.CA.Key = []byte("secret") },
			want: one("machine.ca.key", "is not a PEM private key")},
		{name: "CA key is a certificate", mutate: func(c *config.MachineConfig) { c.Machine.CA.Key = c.Machine.CA.Crt },
			want: one("machine.ca.key", "is not a PEM private key")},
		{name: "another CA in full", mutate: func(c *config.MachineConfig) {
			c.Machine.CA = config.CertAndKey{Crt: x.otherCA.CertPEM, Key: x.otherCA.KeyPEM}
		}},
		{name: "worker holding the node API CA key", worker: true, mutate: func(c *config.MachineConfig) {
			c.Machine.CA.Key = generated(t).bundle.CAs.OS.Key
		}, want: one("machine.ca.key", "a worker must not hold the node API CA key")},

		// certSANs.
		{name: "certSANs valid", mutate: func(c *config.MachineConfig) {
			c.Machine.CertSANs = []string{"10.0.0.1", "fd00::1", "node1.example.com", "node-1"}
		}},
		{name: "certSANs bad", mutate: func(c *config.MachineConfig) {
			c.Machine.CertSANs = []string{"10.0.0.1", "bad host", "-node", "https://node1"}
		}, want: []wantField{
			{"machine.certSANs[1]", `"bad host" is neither an IP address nor a DNS name`},
			{"machine.certSANs[2]", "neither an IP address nor a DNS name"},
			{"machine.certSANs[3]", "neither an IP address nor a DNS name"},
		}},

		// Install.
		{name: "install disk missing on metal", mode: config.ModeMetal, mutate: func(c *config.MachineConfig) { c.Machine.Install.Disk = "" },
			want: one("machine.install.disk", "is required on bare metal")},
		{name: "install disk missing on a metal worker", mode: config.ModeMetal, worker: true, mutate: func(c *config.MachineConfig) { c.Machine.Install.Disk = "" },
			want: one("machine.install.disk", "is required on bare metal")},
		{name: "install disk missing in docker", mode: config.ModeDocker, mutate: func(c *config.MachineConfig) { c.Machine.Install = config.InstallSpec{} }},
		{name: "install disk selector instead of a disk", mode: config.ModeMetal, mutate: func(c *config.MachineConfig) {
			c.Machine.Install.Disk = ""
			c.Machine.Install.DiskSelector = &config.DiskSelector{Size: ">= 4GiB", Model: "QEMU*", Bus: "virtio"}
		}},
		{name: "install disk and selector", mode: config.ModeMetal, mutate: func(c *config.MachineConfig) {
			c.Machine.Install.DiskSelector = &config.DiskSelector{Bus: "nvme"}
		}, want: one("machine.install.diskSelector", "give one of them")},
		{name: "install disk selector wrong", mode: config.ModeMetal, mutate: func(c *config.MachineConfig) {
			c.Machine.Install.Disk = ""
			c.Machine.Install.DiskSelector = &config.DiskSelector{Size: ">= 32", Model: "[", Bus: "firewire"}
		}, want: []wantField{
			{"machine.install.diskSelector.size", "has no unit"},
			{"machine.install.diskSelector.model", "not a valid glob"},
			{"machine.install.diskSelector.bus", `unknown bus "firewire"`},
		}},
		{name: "install disk selector empty", mode: config.ModeMetal, mutate: func(c *config.MachineConfig) {
			c.Machine.Install.Disk = ""
			c.Machine.Install.DiskSelector = &config.DiskSelector{}
		}, want: one("machine.install.diskSelector", "is empty")},
		{name: "install image on metal, not yet", mode: config.ModeMetal, mutate: func(c *config.MachineConfig) {
			c.Machine.Install.Image = "registry.example/plinth/installer:v1"
		}, want: one("machine.install.image", "not supported on metal yet")},
		// Fields that mean nothing for a node container are refused in Docker, not ignored.
		{name: "interfaces in docker", mode: config.ModeDocker, mutate: func(c *config.MachineConfig) {
			c.Machine.Network.Interfaces = []config.Interface{{Name: "eth0", DHCP: true}}
		}, want: one("machine.network.interfaces[0]", "is not supported in Docker")},
		{name: "time servers in docker", mode: config.ModeDocker, mutate: func(c *config.MachineConfig) {
			c.Machine.Time.Servers = []string{"time.example.org"}
		}, want: one("machine.time.servers", "a container shares the host's clock")},
		{name: "kubelet extra mounts in docker", mode: config.ModeDocker, mutate: func(c *config.MachineConfig) {
			c.Machine.Kubelet.ExtraMounts = []config.Mount{{Source: "/var/data", Destination: "/var/data"}}
		}, want: one("machine.kubelet.extraMounts[0]", "is not supported in Docker")},
		{name: "log destinations in docker", mode: config.ModeDocker, mutate: func(c *config.MachineConfig) {
			c.Machine.Logging.Destinations = []config.LogDestination{{Endpoint: "tcp://10.5.0.9:5140"}}
		}, want: one("machine.logging.destinations[0]", "is not supported yet")},
		{name: "dhcp on metal", mode: config.ModeMetal, mutate: func(c *config.MachineConfig) {
			c.Machine.Network.Interfaces = []config.Interface{{Name: "eth0", DHCP: true, VLANs: []config.VLAN{{VLANID: 5, DHCP: true}}}}
		}},
		{name: "bond on metal, not yet", mode: config.ModeMetal, mutate: func(c *config.MachineConfig) {
			c.Machine.Network.Interfaces = []config.Interface{{Name: "bond0", Bond: &config.Bond{Interfaces: []string{"eth0", "eth1"}, Mode: "active-backup"}}}
		}, want: one("machine.network.interfaces[0].bond", "not supported on metal yet")},
		{name: "static interfaces on metal", mode: config.ModeMetal, mutate: func(c *config.MachineConfig) {
			c.Machine.Network.Interfaces = []config.Interface{{Name: "eth0", Addresses: []string{"10.0.2.15/24"}, Routes: []config.Route{{Gateway: "10.0.2.2"}}}}
		}},
		{name: "env on metal, not yet", mode: config.ModeMetal, mutate: func(c *config.MachineConfig) {
			c.Machine.Env = map[string]string{"HTTP_PROXY": "http://proxy:3128"}
		}, want: one("machine.env.HTTP_PROXY", "not supported on metal yet")},
		{name: "time servers on metal", mode: config.ModeMetal, mutate: func(c *config.MachineConfig) {
			c.Machine.Time.Servers = []string{"time.example.org", "192.0.2.123"}
		}},
		{name: "host sysctl in docker", mode: config.ModeDocker, mutate: func(c *config.MachineConfig) {
			c.Machine.Sysctls = map[string]string{"net.ipv4.ip_forward": "1", "vm.max_map_count": "262144"}
		}, want: one(`machine.sysctls["vm.max_map_count"]`, "is the host's, not the node container's")},
		{name: "namespaced sysctls in docker", mode: config.ModeDocker, mutate: func(c *config.MachineConfig) {
			c.Machine.Sysctls = map[string]string{"net.ipv4.ip_local_port_range": "32768 60999", "kernel.shmmax": "68719476736"}
		}},
		{name: "install disk missing in cloud", mode: config.ModeCloud, mutate: func(c *config.MachineConfig) { c.Machine.Install = config.InstallSpec{} }},
		{name: "install disk by id", mutate: func(c *config.MachineConfig) { c.Machine.Install.Disk = "/dev/disk/by-id/nvme-Samsung_SSD_1" }},
		{name: "install disk not under /dev", mutate: func(c *config.MachineConfig) { c.Machine.Install.Disk = "sda" },
			want: one("machine.install.disk", `"sda" is not a device path`)},
		{name: "install disk not clean", mutate: func(c *config.MachineConfig) { c.Machine.Install.Disk = "/dev/../etc/shadow" },
			want: one("machine.install.disk", "is not a device path")},
		{name: "install disk trailing slash", mutate: func(c *config.MachineConfig) { c.Machine.Install.Disk = "/dev/sda/" },
			want: one("machine.install.disk", "is not a device path")},
		{name: "install disk bad in docker too", mode: config.ModeDocker, mutate: func(c *config.MachineConfig) { c.Machine.Install.Disk = "/mnt/disk" },
			want: one("machine.install.disk", "is not a device path")},
		{name: "install image bad", mutate: func(c *config.MachineConfig) { c.Machine.Install.Image = "Plinth/Installer" },
			want: one("machine.install.image", "is not an image reference")},
		{name: "install image good", mutate: func(c *config.MachineConfig) {
			c.Machine.Install.Image = "ghcr.io/plinthos/installer:v0.1.0@sha256:" + strings.Repeat("ab", 32)
		}},
		{name: "install kernel args", mutate: func(c *config.MachineConfig) {
			c.Machine.Install.ExtraKernelArgs = []string{"console=ttyS0", "a b", "", " "}
		}, want: []wantField{
			{"machine.install.extraKernelArgs[1]", `"a b" must be one non-empty argument without spaces`},
			{"machine.install.extraKernelArgs[2]", "must be one non-empty argument"},
			{"machine.install.extraKernelArgs[3]", "must be one non-empty argument"},
		}},

		// Kubelet.
		{name: "kubelet image bad", mutate: func(c *config.MachineConfig) { c.Machine.Kubelet.Image = "kubelet image" },
			want: one("machine.kubelet.image", "is not an image reference")},
		{name: "kubelet extra args with leading dashes", mutate: func(c *config.MachineConfig) {
			c.Machine.Kubelet.ExtraArgs = map[string]string{"--max-pods": "150", "-v": "2", "node-ip": "10.0.0.1"}
		}, want: []wantField{
			{"machine.kubelet.extraArgs.--max-pods", `"--max-pods" is not a flag name; write it without leading dashes`},
			{"machine.kubelet.extraArgs.-v", "without leading dashes"},
		}},
		{name: "kubelet extra args with = or spaces", mutate: func(c *config.MachineConfig) {
			c.Machine.Kubelet.ExtraArgs = map[string]string{"max-pods=150": "", "max pods": "1", "": "x"}
		}, want: []wantField{
			{`machine.kubelet.extraArgs[""]`, "is not a flag name"},
			{`machine.kubelet.extraArgs["max pods"]`, "is not a flag name"},
			{`machine.kubelet.extraArgs["max-pods=150"]`, "is not a flag name"},
		}},
		{name: "kubelet extra mounts relative", mutate: func(c *config.MachineConfig) {
			c.Machine.Kubelet.ExtraMounts = []config.Mount{
				{Source: "/var/lib/x", Destination: "/var/lib/x"},
				{Source: "var/lib/y", Destination: "lib/y"},
			}
		}, want: []wantField{
			{"machine.kubelet.extraMounts[1].source", `"var/lib/y" must be an absolute path`},
			{"machine.kubelet.extraMounts[1].destination", `"lib/y" must be an absolute path`},
		}},
		{name: "node labels valid", mutate: func(c *config.MachineConfig) {
			c.Machine.Kubelet.NodeLabels = map[string]string{
				"role": "", "example.com/zone": "eu-west-1a", "a_b.c-d": "X.y_z-1", "node-role.kubernetes.io/gpu": "",
			}
		}},
		{name: "node label key bad", mutate: func(c *config.MachineConfig) {
			c.Machine.Kubelet.NodeLabels = map[string]string{"-role": "x"}
		}, want: one("machine.kubelet.nodeLabels.-role", `label key "-role" must be [PREFIX/]NAME`)},
		{name: "node label key too long", mutate: func(c *config.MachineConfig) {
			c.Machine.Kubelet.NodeLabels = map[string]string{strings.Repeat("a", 64): "x"}
		}, want: one("machine.kubelet.nodeLabels."+strings.Repeat("a", 64), "label key")},
		{name: "node label prefix bad", mutate: func(c *config.MachineConfig) {
			c.Machine.Kubelet.NodeLabels = map[string]string{"bad_prefix/role": "x"}
		}, want: one(`machine.kubelet.nodeLabels["bad_prefix/role"]`, "has a prefix that is not a DNS subdomain")},
		{name: "node label value bad", mutate: func(c *config.MachineConfig) {
			c.Machine.Kubelet.NodeLabels = map[string]string{"role": "front end", "zone": strings.Repeat("z", 64)}
		}, want: []wantField{
			{"machine.kubelet.nodeLabels.role", `label value "front end" must be at most 63`},
			{"machine.kubelet.nodeLabels.zone", "label value"},
		}},
		{name: "node taints valid", mutate: func(c *config.MachineConfig) {
			c.Machine.Kubelet.NodeTaints = map[string]string{
				"dedicated": "gpu:NoSchedule", "example.com/spot": ":PreferNoSchedule", "maintenance": "true:NoExecute",
			}
		}},
		{name: "node taint without effect", mutate: func(c *config.MachineConfig) {
			c.Machine.Kubelet.NodeTaints = map[string]string{"dedicated": "gpu"}
		}, want: one("machine.kubelet.nodeTaints.dedicated", `"gpu" must be VALUE:EFFECT`)},
		{name: "node taint unknown effect", mutate: func(c *config.MachineConfig) {
			c.Machine.Kubelet.NodeTaints = map[string]string{"dedicated": "gpu:NoScheduling"}
		}, want: one("machine.kubelet.nodeTaints.dedicated", "with EFFECT NoSchedule, PreferNoSchedule or NoExecute")},
		{name: "node taint value bad", mutate: func(c *config.MachineConfig) {
			c.Machine.Kubelet.NodeTaints = map[string]string{"dedicated": "g p u:NoSchedule"}
		}, want: one("machine.kubelet.nodeTaints.dedicated", `taint value "g p u"`)},
		{name: "node taint key bad", mutate: func(c *config.MachineConfig) {
			c.Machine.Kubelet.NodeTaints = map[string]string{"dedicated!": ":NoSchedule"}
		}, want: one(`machine.kubelet.nodeTaints["dedicated!"]`, `taint key "dedicated!"`)},

		// Network.
		{name: "hostname valid", mutate: func(c *config.MachineConfig) { c.Machine.Network.Hostname = "node-1.example.com" }},
		{name: "hostname with underscore", mutate: func(c *config.MachineConfig) { c.Machine.Network.Hostname = "node_1" },
			want: one("machine.network.hostname", `"node_1" is not a valid host name`)},
		{name: "hostname label too long", mutate: func(c *config.MachineConfig) { c.Machine.Network.Hostname = strings.Repeat("n", 64) },
			want: one("machine.network.hostname", "is not a valid host name")},
		{name: "hostname ending with a dash", mutate: func(c *config.MachineConfig) { c.Machine.Network.Hostname = "node-" },
			want: one("machine.network.hostname", "is not a valid host name")},
		{name: "interfaces valid", mutate: func(c *config.MachineConfig) {
			iface(c,
				config.Interface{Name: "eth0", DHCP: true, MTU: 576},
				config.Interface{Name: "eth1", Addresses: []string{"192.168.1.10/24", "fd00::10/64"}, MTU: 9216,
					Routes: []config.Route{{Gateway: "192.168.1.1"}, {Network: "10.0.0.0/8", Gateway: "192.168.1.2", Source: "192.168.1.10", Metric: 10}, {Network: "172.16.0.0/12"}},
					VLANs:  []config.VLAN{{VLANID: 1, DHCP: true}, {VLANID: 4094, Addresses: []string{"10.1.0.2/24"}, MTU: 1400}}},
				config.Interface{Name: "bond0", Bond: &config.Bond{Interfaces: []string{"eth2", "eth3"}, Mode: "802.3ad", LACPRate: "fast", MIIMon: 100}},
				config.Interface{Name: "bond1", Bond: &config.Bond{Interfaces: []string{"eth4"}, Mode: "active-backup"}},
				config.Interface{Name: "eth9", Ignore: true},
			)
		}},
		{name: "interface name missing", mutate: func(c *config.MachineConfig) { iface(c, config.Interface{DHCP: true}) },
			want: one("machine.network.interfaces[0].name", "is required: the link name")},
		{name: "interface name too long", mutate: func(c *config.MachineConfig) {
			iface(c, config.Interface{Name: "enp0s31f6abcdefgh", DHCP: true})
		}, want: one("machine.network.interfaces[0].name", "is not a link name: at most 15 characters")},
		{name: "interface name with slash", mutate: func(c *config.MachineConfig) { iface(c, config.Interface{Name: "eth0/1"}) },
			want: one("machine.network.interfaces[0].name", "is not a link name")},
		{name: "interface name with colon", mutate: func(c *config.MachineConfig) { iface(c, config.Interface{Name: "eth0:1"}) },
			want: one("machine.network.interfaces[0].name", "is not a link name")},
		{name: "interface names duplicate", mutate: func(c *config.MachineConfig) {
			iface(c, config.Interface{Name: "eth0", DHCP: true}, config.Interface{Name: "eth1"}, config.Interface{Name: "eth0", MTU: 1500})
		}, want: one("machine.network.interfaces[2].name", `interface "eth0" is configured twice`)},
		{name: "ignored interface with settings", mutate: func(c *config.MachineConfig) {
			iface(c, config.Interface{Name: "eth0", Ignore: true, DHCP: true})
		}, want: one("machine.network.interfaces[0].ignore", "an ignored interface cannot also be configured")},
		{name: "ignored interface with a bond", mutate: func(c *config.MachineConfig) {
			iface(c, config.Interface{Name: "bond0", Ignore: true, Bond: &config.Bond{Interfaces: []string{"eth0"}, Mode: "broadcast"}})
		}, want: one("machine.network.interfaces[0].ignore", "cannot also be configured")},
		{name: "interface address without prefix", mutate: func(c *config.MachineConfig) {
			iface(c, config.Interface{Name: "eth0", Addresses: []string{"10.0.0.2/24", "10.0.0.3"}})
		}, want: one("machine.network.interfaces[0].addresses[1]", `"10.0.0.3" is not an address in CIDR notation`)},
		{name: "interface address bad CIDR", mutate: func(c *config.MachineConfig) {
			iface(c, config.Interface{Name: "eth0", Addresses: []string{"10.0.0.300/24", "10.0.0.2/33"}})
		}, want: []wantField{
			{"machine.network.interfaces[0].addresses[0]", "is not an address in CIDR notation"},
			{"machine.network.interfaces[0].addresses[1]", "is not an address in CIDR notation"},
		}},
		{name: "interface MTU too small", mutate: func(c *config.MachineConfig) { iface(c, config.Interface{Name: "eth0", MTU: 575}) },
			want: one("machine.network.interfaces[0].mtu", "575 is out of range; use 576 to 9216")},
		{name: "interface MTU too large", mutate: func(c *config.MachineConfig) { iface(c, config.Interface{Name: "eth0", MTU: 9217}) },
			want: one("machine.network.interfaces[0].mtu", "is out of range")},
		{name: "interface MTU negative", mutate: func(c *config.MachineConfig) { iface(c, config.Interface{Name: "eth0", MTU: -1}) },
			want: one("machine.network.interfaces[0].mtu", "is out of range")},
		{name: "VLAN ids out of range", mutate: func(c *config.MachineConfig) {
			iface(c, config.Interface{Name: "eth0", VLANs: []config.VLAN{{VLANID: 0}, {VLANID: 4095}, {VLANID: 100}}})
		}, want: []wantField{
			{"machine.network.interfaces[0].vlans[0].vlanId", "0 is not a VLAN id; use 1 to 4094"},
			{"machine.network.interfaces[0].vlans[1].vlanId", "4095 is not a VLAN id"},
		}},
		{name: "VLAN id twice", mutate: func(c *config.MachineConfig) {
			iface(c, config.Interface{Name: "eth0", VLANs: []config.VLAN{{VLANID: 10}, {VLANID: 10}}})
		}, want: one("machine.network.interfaces[0].vlans[1].vlanId", "VLAN 10 is configured twice on eth0")},
		{name: "same VLAN id on two interfaces", mutate: func(c *config.MachineConfig) {
			iface(c, config.Interface{Name: "eth0", VLANs: []config.VLAN{{VLANID: 10}}}, config.Interface{Name: "eth1", VLANs: []config.VLAN{{VLANID: 10}}})
		}},
		{name: "VLAN addresses, routes and MTU", mutate: func(c *config.MachineConfig) {
			iface(c, config.Interface{Name: "eth0", VLANs: []config.VLAN{{VLANID: 10, Addresses: []string{"x"}, Routes: []config.Route{{}}, MTU: 10000}}})
		}, want: []wantField{
			{"machine.network.interfaces[0].vlans[0].addresses[0]", "is not an address in CIDR notation"},
			{"machine.network.interfaces[0].vlans[0].routes[0]", "a default route needs a gateway"},
			{"machine.network.interfaces[0].vlans[0].mtu", "is out of range"},
		}},
		{name: "bond without members", mutate: func(c *config.MachineConfig) {
			iface(c, config.Interface{Name: "bond0", Bond: &config.Bond{Mode: "balance-rr"}})
		}, want: one("machine.network.interfaces[0].bond.interfaces", "is empty; list the links that make up the bond")},
		{name: "bond containing itself", mutate: func(c *config.MachineConfig) {
			iface(c, config.Interface{Name: "bond0", Bond: &config.Bond{Interfaces: []string{"eth0", "bond0"}, Mode: "balance-xor"}})
		}, want: one("machine.network.interfaces[0].bond.interfaces[1]", "a bond cannot contain itself")},
		{name: "bond mode unknown", mutate: func(c *config.MachineConfig) {
			iface(c, config.Interface{Name: "bond0", Bond: &config.Bond{Interfaces: []string{"eth0"}, Mode: "lacp"}})
		}, want: one("machine.network.interfaces[0].bond.mode", `"lacp" is not a bonding mode; use one of balance-rr, active-backup`)},
		{name: "bond mode missing", mutate: func(c *config.MachineConfig) {
			iface(c, config.Interface{Name: "bond0", Bond: &config.Bond{Interfaces: []string{"eth0"}}})
		}, want: one("machine.network.interfaces[0].bond.mode", "is not a bonding mode")},
		{name: "bond every mode", mutate: func(c *config.MachineConfig) {
			for i, m := range []string{"balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb"} {
				c.Machine.Network.Interfaces = append(c.Machine.Network.Interfaces,
					config.Interface{Name: "bond" + string(rune('0'+i)), Bond: &config.Bond{Interfaces: []string{"eth" + string(rune('0'+i))}, Mode: m}})
			}
		}},
		{name: "bond lacpRate unknown", mutate: func(c *config.MachineConfig) {
			iface(c, config.Interface{Name: "bond0", Bond: &config.Bond{Interfaces: []string{"eth0"}, Mode: "802.3ad", LACPRate: "medium"}})
		}, want: one("machine.network.interfaces[0].bond.lacpRate", `"medium" must be slow or fast`)},
		{name: "bond lacpRate outside 802.3ad", mutate: func(c *config.MachineConfig) {
			iface(c, config.Interface{Name: "bond0", Bond: &config.Bond{Interfaces: []string{"eth0"}, Mode: "active-backup", LACPRate: "slow"}})
		}, want: one("machine.network.interfaces[0].bond.lacpRate", "applies only to mode 802.3ad")},
		{name: "route network bad", mutate: func(c *config.MachineConfig) {
			iface(c, config.Interface{Name: "eth0", Routes: []config.Route{{Network: "10.0.0.0", Gateway: "10.0.0.1"}}})
		}, want: one("machine.network.interfaces[0].routes[0].network", `"10.0.0.0" is not a network in CIDR notation`)},
		{name: "route network with host bits", mutate: func(c *config.MachineConfig) {
			iface(c, config.Interface{Name: "eth0", Routes: []config.Route{{Network: "10.1.2.3/8", Gateway: "10.0.0.1"}}})
		}, want: one("machine.network.interfaces[0].routes[0].network", `"10.1.2.3/8" has host bits set; did you mean 10.0.0.0/8?`)},
		{name: "route gateway and source bad", mutate: func(c *config.MachineConfig) {
			iface(c, config.Interface{Name: "eth0", Routes: []config.Route{{Network: "10.0.0.0/8", Gateway: "router", Source: "10.0.0.1/24"}}})
		}, want: []wantField{
			{"machine.network.interfaces[0].routes[0].gateway", `"router" is not an IP address`},
			{"machine.network.interfaces[0].routes[0].source", `"10.0.0.1/24" is not an IP address`},
		}},
		{name: "default route without gateway", mutate: func(c *config.MachineConfig) {
			iface(c, config.Interface{Name: "eth0", Routes: []config.Route{{Gateway: "10.0.0.1"}, {Metric: 5}}})
		}, want: one("machine.network.interfaces[0].routes[1]", "a default route needs a gateway")},
		{name: "nameservers", mutate: func(c *config.MachineConfig) {
			c.Machine.Network.Nameservers = []string{"1.1.1.1", "2606:4700:4700::1111", "dns.google", "8.8.8.8:53"}
		}, want: []wantField{
			{"machine.network.nameservers[2]", `"dns.google" is not an IP address; name servers are given by address`},
			{"machine.network.nameservers[3]", "is not an IP address"},
		}},

		// Time.
		{name: "time servers valid", mutate: func(c *config.MachineConfig) { c.Machine.Time.Servers = []string{"time.cloudflare.com", "10.0.0.1"} }},
		{name: "time disabled with servers", mutate: func(c *config.MachineConfig) {
			c.Machine.Time = config.TimeSpec{Disabled: true, Servers: []string{"pool.ntp.org"}}
		}, want: one("machine.time.servers", "time synchronisation is disabled")},
		{name: "time server bad", mutate: func(c *config.MachineConfig) { c.Machine.Time.Servers = []string{"ntp://pool.ntp.org"} },
			want: one("machine.time.servers[0]", "is neither an IP address nor a DNS name")},

		// Sysctls.
		{name: "sysctls valid", mutate: func(c *config.MachineConfig) {
			c.Machine.Sysctls = map[string]string{"net.ipv4.ip_forward": "1", "net.ipv4.conf.eth0-1.rp_filter": "0", "kernel.pid_max": "4194304"}
		}},
		{name: "sysctl without dot", mutate: func(c *config.MachineConfig) { c.Machine.Sysctls = map[string]string{"ip_forward": "1"} },
			want: one("machine.sysctls.ip_forward", `"ip_forward" is not a sysctl name; use the dotted form`)},
		{name: "sysctl in slash form", mutate: func(c *config.MachineConfig) { c.Machine.Sysctls = map[string]string{"net/ipv4/ip_forward": "1"} },
			want: one(`machine.sysctls["net/ipv4/ip_forward"]`, "is not a sysctl name")},
		{name: "sysctl empty value", mutate: func(c *config.MachineConfig) { c.Machine.Sysctls = map[string]string{"net.ipv4.ip_forward": ""} },
			want: one(`machine.sysctls["net.ipv4.ip_forward"]`, "has an empty value")},

		// Files.
		{name: "files valid", mutate: func(c *config.MachineConfig) {
			c.Machine.Files = []config.File{
				{Path: "/var/lib/a", Content: "x"},
				{Path: "/etc/cri/conf.d/20-customization.part", Content: "[plugins]", Op: "overwrite", Permissions: 0o600},
				{Path: "/var/log/b", Op: "append"},
				{Path: "/var/lib/c", Op: "create"},
			}
		}},
		{name: "file path relative", mutate: func(c *config.MachineConfig) { c.Machine.Files = []config.File{{Path: "var/lib/a"}} },
			want: one("machine.files[0].path", `"var/lib/a" must be a clean absolute path`)},
		{name: "file path not clean", mutate: func(c *config.MachineConfig) { c.Machine.Files = []config.File{{Path: "/var/../etc/passwd"}} },
			want: one("machine.files[0].path", "must be a clean absolute path")},
		{name: "file path outside /var", mutate: func(c *config.MachineConfig) { c.Machine.Files = []config.File{{Path: "/etc/hosts"}} },
			want: one("machine.files[0].path", `"/etc/hosts" is on the read-only root file system; write files under /var or /etc/cri/conf.d`)},
		{name: "file path /var itself", mutate: func(c *config.MachineConfig) { c.Machine.Files = []config.File{{Path: "/var"}} },
			want: one("machine.files[0].path", "is on the read-only root file system")},
		{name: "file path /variable", mutate: func(c *config.MachineConfig) { c.Machine.Files = []config.File{{Path: "/variable/x"}} },
			want: one("machine.files[0].path", "is on the read-only root file system")},
		{name: "file written twice", mutate: func(c *config.MachineConfig) {
			c.Machine.Files = []config.File{{Path: "/var/a"}, {Path: "/var/b"}, {Path: "/var/a", Op: "append"}}
		}, want: one("machine.files[2].path", `"/var/a" is written twice`)},
		{name: "file op unknown", mutate: func(c *config.MachineConfig) { c.Machine.Files = []config.File{{Path: "/var/a", Op: "delete"}} },
			want: one("machine.files[0].op", `"delete" must be create, overwrite or append`)},

		// Environment.
		{name: "env valid", mutate: func(c *config.MachineConfig) {
			c.Machine.Env = map[string]string{"HTTPS_PROXY": "http://proxy:3128", "no_proxy": "", "_X1": "y"}
		}},
		{name: "env name starting with a digit", mutate: func(c *config.MachineConfig) { c.Machine.Env = map[string]string{"1PROXY": "x"} },
			want: one("machine.env.1PROXY", `"1PROXY" is not an environment variable name`)},
		{name: "env name with dash", mutate: func(c *config.MachineConfig) { c.Machine.Env = map[string]string{"HTTPS-PROXY": "x"} },
			want: one("machine.env.HTTPS-PROXY", "is not an environment variable name")},
		{name: "env name with equals", mutate: func(c *config.MachineConfig) { c.Machine.Env = map[string]string{"A=B": "x"} },
			want: one(`machine.env["A=B"]`, "is not an environment variable name")},

		// Registries.
		{name: "mirrors valid", mutate: func(c *config.MachineConfig) {
			c.Machine.Registries.Mirrors = map[string]config.Mirror{
				"docker.io":           {Endpoints: []string{"https://mirror.example.com", "http://10.0.0.1:5000"}},
				"*":                   {Endpoints: []string{"https://all.example.com"}, SkipFallback: true},
				"registry.local:5000": {Endpoints: []string{"http://registry.local:5001"}},
			}
		}},
		{name: "mirror host bad", mutate: func(c *config.MachineConfig) {
			c.Machine.Registries.Mirrors = map[string]config.Mirror{"https://docker.io": {Endpoints: []string{"https://m.example.com"}}}
		}, want: one(`machine.registries.mirrors["https://docker.io"]`, `"https://docker.io" is not a registry host`)},
		{name: "mirror without endpoints", mutate: func(c *config.MachineConfig) {
			c.Machine.Registries.Mirrors = map[string]config.Mirror{"docker.io": {}}
		}, want: one(`machine.registries.mirrors["docker.io"].endpoints`, "is empty; list at least one mirror URL")},
		{name: "mirror endpoint bad", mutate: func(c *config.MachineConfig) {
			c.Machine.Registries.Mirrors = map[string]config.Mirror{"*": {Endpoints: []string{"https://ok.example.com", "ftp://m.example.com", "mirror.example.com"}}}
		}, want: []wantField{
			{`machine.registries.mirrors["*"].endpoints[1]`, `"ftp://m.example.com" is not a URL with scheme http or https`},
			{`machine.registries.mirrors["*"].endpoints[2]`, "is not a URL with scheme http or https"},
		}},

		// Logging.
		{name: "log destinations valid", mutate: func(c *config.MachineConfig) {
			c.Machine.Logging.Destinations = []config.LogDestination{
				{Endpoint: "tcp://10.0.0.1:5044", Format: "json_lines"}, {Endpoint: "udp://logs.example.com:514"}, {Endpoint: "tcp://[fd00::1]:5044"},
			}
		}},
		{name: "log endpoint bad scheme", mutate: func(c *config.MachineConfig) {
			c.Machine.Logging.Destinations = []config.LogDestination{{Endpoint: "http://10.0.0.1:5044"}}
		}, want: one("machine.logging.destinations[0].endpoint", `"http://10.0.0.1:5044" is not a log endpoint; use tcp://HOST:PORT or udp://HOST:PORT`)},
		{name: "log endpoint without port", mutate: func(c *config.MachineConfig) {
			c.Machine.Logging.Destinations = []config.LogDestination{{Endpoint: "tcp://10.0.0.1"}}
		}, want: one("machine.logging.destinations[0].endpoint", "is not a log endpoint")},
		{name: "log endpoint without host", mutate: func(c *config.MachineConfig) {
			c.Machine.Logging.Destinations = []config.LogDestination{{Endpoint: "udp://:514"}}
		}, want: one("machine.logging.destinations[0].endpoint", "is not a log endpoint")},
		{name: "log endpoint missing", mutate: func(c *config.MachineConfig) {
			c.Machine.Logging.Destinations = []config.LogDestination{{Format: "json_lines"}}
		}, want: one("machine.logging.destinations[0].endpoint", "is not a log endpoint")},
		{name: "log format unknown", mutate: func(c *config.MachineConfig) {
			c.Machine.Logging.Destinations = []config.LogDestination{{Endpoint: "tcp://10.0.0.1:5044", Format: "syslog"}}
		}, want: one("machine.logging.destinations[0].format", `unknown format "syslog"; the only format is json_lines`)},
	}
	runValidationCases(t, tests)
}

func TestValidateCluster(t *testing.T) {
	x := extras(t)
	b := generated(t).bundle
	tests := []validationCase{
		// Identity.
		{name: "id missing", mutate: func(c *config.MachineConfig) { c.Cluster.ID = "" },
			want: one("cluster.id", "is required; it is generated with the secrets")},
		{name: "secret missing", worker: true, mutate: func(c *config.MachineConfig) { c.Cluster.Secret = "" },
			want: one("cluster.secret", "is required")},

		// Name.
		{name: "name missing", mutate: func(c *config.MachineConfig) { c.Cluster.Name = "" },
			want: one("cluster.name", "is required: a short name such as demo")},
		{name: "name upper case", mutate: func(c *config.MachineConfig) { c.Cluster.Name = "Demo" },
			want: one("cluster.name", `"Demo" must be lower-case letters, digits and '-'`)},
		{name: "name with dot", mutate: func(c *config.MachineConfig) { c.Cluster.Name = "demo.local" },
			want: one("cluster.name", "must be lower-case letters")},
		{name: "name starting with a dash", mutate: func(c *config.MachineConfig) { c.Cluster.Name = "-demo" },
			want: one("cluster.name", "must be lower-case letters")},
		{name: "name of 63 characters", mutate: func(c *config.MachineConfig) { c.Cluster.Name = strings.Repeat("d", 63) }},
		{name: "name of 64 characters", mutate: func(c *config.MachineConfig) { c.Cluster.Name = strings.Repeat("d", 64) },
			want: one("cluster.name", "at most 63 characters")},

		// Endpoint.
		{name: "endpoint valid forms", mutate: func(c *config.MachineConfig) { c.Cluster.ControlPlane.Endpoint = "https://api.example.com" }},
		{name: "endpoint IPv6", mutate: func(c *config.MachineConfig) { c.Cluster.ControlPlane.Endpoint = "https://[fd00::1]:6443/" }},
		{name: "endpoint missing", mutate: func(c *config.MachineConfig) { c.Cluster.ControlPlane.Endpoint = "" },
			want: one("cluster.controlPlane.endpoint", "is required: the Kubernetes API URL")},
		{name: "endpoint http", mutate: func(c *config.MachineConfig) { c.Cluster.ControlPlane.Endpoint = "http://10.5.0.2:6443" },
			want: one("cluster.controlPlane.endpoint", `"http://10.5.0.2:6443" must use https`)},
		{name: "endpoint with a path", mutate: func(c *config.MachineConfig) { c.Cluster.ControlPlane.Endpoint = "https://10.5.0.2:6443/api" },
			want: one("cluster.controlPlane.endpoint", "must be only scheme, host and port, such as https://10.5.0.2:6443")},
		{name: "endpoint with a query", mutate: func(c *config.MachineConfig) { c.Cluster.ControlPlane.Endpoint = "https://10.5.0.2:6443?x=1" },
			want: one("cluster.controlPlane.endpoint", "must be only scheme, host and port")},
		{name: "endpoint with user info", mutate: func(c *config.MachineConfig) { c.Cluster.ControlPlane.Endpoint = "https://admin@10.5.0.2:6443" },
			want: one("cluster.controlPlane.endpoint", "must be only scheme, host and port")},
		{name: "endpoint without scheme", mutate: func(c *config.MachineConfig) { c.Cluster.ControlPlane.Endpoint = "10.5.0.2:6443" },
			want: one("cluster.controlPlane.endpoint", `"10.5.0.2:6443" is not a URL; use https://HOST:PORT`)},
		{name: "endpoint without host", mutate: func(c *config.MachineConfig) { c.Cluster.ControlPlane.Endpoint = "https://" },
			want: one("cluster.controlPlane.endpoint", "is not a URL")},
		{name: "endpoint with a bad port", mutate: func(c *config.MachineConfig) { c.Cluster.ControlPlane.Endpoint = "https://10.5.0.2:70000" },
			want: one("cluster.controlPlane.endpoint", `port "70000" is not a port number (1 to 65535)`)},
		{name: "endpoint with port zero", mutate: func(c *config.MachineConfig) { c.Cluster.ControlPlane.Endpoint = "https://10.5.0.2:0" },
			want: one("cluster.controlPlane.endpoint", "is not a port number")},
		{name: "endpoint with a non-numeric port", mutate: func(c *config.MachineConfig) { c.Cluster.ControlPlane.Endpoint = "https://10.5.0.2:https" },
			want: one("cluster.controlPlane.endpoint", "is not a URL")},
		{name: "endpoint with a bad host", mutate: func(c *config.MachineConfig) { c.Cluster.ControlPlane.Endpoint = "https://api_server:6443" },
			want: one("cluster.controlPlane.endpoint", `host "api_server" is neither a DNS name nor an IP address`)},

		// Cluster network.
		{name: "dns domain bad", mutate: func(c *config.MachineConfig) { c.Cluster.Network.DNSDomain = "cluster_local" },
			want: one("cluster.network.dnsDomain", `"cluster_local" is not a DNS domain`)},
		{name: "subnets empty use defaults", mutate: func(c *config.MachineConfig) {
			c.Cluster.Network = config.ClusterNetworkSpec{}
		}},
		{name: "pod subnet bad CIDR", mutate: func(c *config.MachineConfig) { c.Cluster.Network.PodSubnets = []string{"10.244.0.0/33"} },
			want: one("cluster.network.podSubnets[0]", `"10.244.0.0/33" is not a network in CIDR notation`)},
		{name: "pod subnet without prefix", mutate: func(c *config.MachineConfig) { c.Cluster.Network.PodSubnets = []string{"10.244.0.0"} },
			want: one("cluster.network.podSubnets[0]", "is not a network in CIDR notation")},
		{name: "pod subnet with host bits", mutate: func(c *config.MachineConfig) { c.Cluster.Network.PodSubnets = []string{"10.244.0.1/16"} },
			want: one("cluster.network.podSubnets[0]", `"10.244.0.1/16" has host bits set; did you mean 10.244.0.0/16?`)},
		{name: "service subnet with host bits", mutate: func(c *config.MachineConfig) { c.Cluster.Network.ServiceSubnets = []string{"10.96.0.10/12"} },
			want: one("cluster.network.serviceSubnets[0]", "did you mean 10.96.0.0/12?")},
		{name: "subnets overlap", mutate: func(c *config.MachineConfig) {
			c.Cluster.Network.PodSubnets = []string{"10.0.0.0/16"}
			c.Cluster.Network.ServiceSubnets = []string{"10.0.128.0/20"}
		}, want: one("cluster.network.serviceSubnets", "service subnet 10.0.128.0/20 overlaps pod subnet 10.0.0.0/16")},
		{name: "service subnet too large", mutate: func(c *config.MachineConfig) { c.Cluster.Network.ServiceSubnets = []string{"172.0.0.0/8"} },
			want: one("cluster.network.serviceSubnets[0]", "172.0.0.0/8 is too large for a service subnet; use a /12 or smaller")},
		{name: "IPv6 service subnet too large", mutate: func(c *config.MachineConfig) {
			c.Cluster.Network.PodSubnets = []string{"fd00:10:244::/56"}
			c.Cluster.Network.ServiceSubnets = []string{"fd00:10:96::/64"}
		}, want: one("cluster.network.serviceSubnets[0]", "is too large for a service subnet; use a /108 or smaller")},
		{name: "large pod subnet is fine", mutate: func(c *config.MachineConfig) { c.Cluster.Network.PodSubnets = []string{"100.64.0.0/10"} }},
		{name: "two IPv4 pod subnets", mutate: func(c *config.MachineConfig) {
			c.Cluster.Network.PodSubnets = []string{"10.244.0.0/16", "10.245.0.0/16"}
		}, want: one("cluster.network.podSubnets[1]", "a second IPv4 pod subnet; give at most one per IP family")},
		{name: "two IPv6 service subnets", mutate: func(c *config.MachineConfig) {
			c.Cluster.Network.PodSubnets = []string{"10.244.0.0/16", "fd00:10:244::/56"}
			c.Cluster.Network.ServiceSubnets = []string{"fd00:10:96::/112", "10.96.0.0/12", "fd00:10:97::/112"}
		}, want: one("cluster.network.serviceSubnets[2]", "a second IPv6 service subnet")},
		{name: "dual stack", mutate: func(c *config.MachineConfig) {
			c.Cluster.Network.PodSubnets = []string{"10.244.0.0/16", "fd00:10:244::/56"}
			c.Cluster.Network.ServiceSubnets = []string{"10.96.0.0/12", "fd00:10:96::/112"}
		}},
		{name: "family mismatch", mutate: func(c *config.MachineConfig) {
			c.Cluster.Network.PodSubnets = []string{"fd00:10:244::/56"}
			c.Cluster.Network.ServiceSubnets = []string{"10.96.0.0/12"}
		}, want: one("cluster.network.serviceSubnets", "pod and service subnets must cover the same IP families in the same order")},
		{name: "family order mismatch", mutate: func(c *config.MachineConfig) {
			c.Cluster.Network.PodSubnets = []string{"10.244.0.0/16", "fd00:10:244::/56"}
			c.Cluster.Network.ServiceSubnets = []string{"fd00:10:96::/112", "10.96.0.0/12"}
		}, want: one("cluster.network.serviceSubnets", "same IP families in the same order")},
		{name: "family count mismatch", mutate: func(c *config.MachineConfig) {
			c.Cluster.Network.PodSubnets = []string{"10.244.0.0/16", "fd00:10:244::/56"}
		}, want: one("cluster.network.serviceSubnets", "same IP families")},
		{name: "CNI plinth over vxlan", mutate: func(c *config.MachineConfig) {
			c.Cluster.Network.CNI = config.CNISpec{Name: "plinth", Backend: "vxlan"}
		}},
		{name: "CNI backend unknown", mutate: func(c *config.MachineConfig) { c.Cluster.Network.CNI.Backend = "udp" },
			want: one("cluster.network.cni.backend", `"udp" must be host-gw or vxlan`)},
		{name: "CNI backend for custom", mutate: func(c *config.MachineConfig) {
			c.Cluster.Network.CNI = config.CNISpec{Name: "custom", URLs: []string{"https://example.com/cilium.yaml"}, Backend: "vxlan"}
		}, want: one("cluster.network.cni.backend", "applies only to name: plinth or flannel")},
		{name: "CNI backend and flannelBackend differ", mutate: func(c *config.MachineConfig) {
			c.Cluster.Network.CNI = config.CNISpec{Name: "flannel", Backend: "vxlan", FlannelBackend: "host-gw"}
		}, want: one("cluster.network.cni.flannelBackend", `"host-gw" differs from backend "vxlan"`)},
		{name: "CNI name unknown", mutate: func(c *config.MachineConfig) { c.Cluster.Network.CNI.Name = "calico" },
			want: one("cluster.network.cni.name", `"calico" must be flannel, plinth, custom or none`)},
		{name: "CNI none", mutate: func(c *config.MachineConfig) { c.Cluster.Network.CNI.Name = "none" }},
		{name: "CNI custom", mutate: func(c *config.MachineConfig) {
			c.Cluster.Network.CNI = config.CNISpec{Name: "custom", URLs: []string{"https://example.com/cilium.yaml"}}
		}},
		{name: "CNI custom without URLs", mutate: func(c *config.MachineConfig) { c.Cluster.Network.CNI = config.CNISpec{Name: "custom"} },
			want: one("cluster.network.cni.urls", "is empty; a custom CNI needs the URLs of its manifests")},
		{name: "CNI custom with a bad URL", mutate: func(c *config.MachineConfig) {
			c.Cluster.Network.CNI = config.CNISpec{Name: "custom", URLs: []string{"https://example.com/a.yaml", "/tmp/cni.yaml"}}
		}, want: one("cluster.network.cni.urls[1]", `"/tmp/cni.yaml" is not a URL with scheme http or https`)},
		{name: "CNI URLs without custom", mutate: func(c *config.MachineConfig) {
			c.Cluster.Network.CNI.URLs = []string{"https://example.com/cilium.yaml"}
		}, want: one("cluster.network.cni.urls", "applies only to name: custom")},
		{name: "CNI URLs with default name", mutate: func(c *config.MachineConfig) {
			c.Cluster.Network.CNI = config.CNISpec{URLs: []string{"https://example.com/cilium.yaml"}}
		}, want: one("cluster.network.cni.urls", "applies only to name: custom")},
		{name: "etcd snapshots", mutate: func(c *config.MachineConfig) {
			c.Cluster.Etcd.Snapshots = config.EtcdSnapshotsSpec{Interval: "6h", Keep: 10}
		}},
		{name: "etcd snapshots too often", mutate: func(c *config.MachineConfig) { c.Cluster.Etcd.Snapshots.Interval = "30s" },
			want: one("cluster.etcd.snapshots.interval", `"30s" must be a duration of at least 1m`)},
		{name: "etcd snapshots interval not a duration", mutate: func(c *config.MachineConfig) { c.Cluster.Etcd.Snapshots.Interval = "daily" },
			want: one("cluster.etcd.snapshots.interval", `"daily" must be a duration`)},
		{name: "etcd snapshots keep negative", mutate: func(c *config.MachineConfig) { c.Cluster.Etcd.Snapshots.Keep = -1 },
			want: one("cluster.etcd.snapshots.keep", "must not be negative")},
		{name: "flannel over vxlan", mutate: func(c *config.MachineConfig) {
			c.Cluster.Network.CNI = config.CNISpec{Name: "flannel", FlannelBackend: "vxlan"}
		}},
		{name: "flannelBackend, the older name of backend, with the default CNI", mutate: func(c *config.MachineConfig) { c.Cluster.Network.CNI.FlannelBackend = "vxlan" }},
		{name: "flannel backend unknown", mutate: func(c *config.MachineConfig) { c.Cluster.Network.CNI.FlannelBackend = "udp" },
			want: one("cluster.network.cni.flannelBackend", `"udp" must be host-gw or vxlan`)},
		{name: "flannel backend without flannel", mutate: func(c *config.MachineConfig) {
			c.Cluster.Network.CNI = config.CNISpec{Name: "none", FlannelBackend: "vxlan"}
		}, want: one("cluster.network.cni.flannelBackend", "applies only to name: plinth or flannel")},

		// Bootstrap token.
		{name: "bootstrap token missing", mutate: func(c *config.MachineConfig) { c.Cluster.Token = "" },
			want: one("cluster.token", "is required: the bootstrap token")},
		{name: "bootstrap token bad", worker: true, mutate: func(c *config.MachineConfig) { c.Cluster.Token = "abcdef:0123456789abcdef" },
			want: one("cluster.token", "is not a valid bootstrap token")},

		// Kubernetes CA.
		{name: "Kubernetes CA missing", mutate: func(c *config.MachineConfig) { c.Cluster.CA = config.CertAndKey{} },
			want: one("cluster.ca.crt", "is required: the Kubernetes CA certificate")},
		{name: "Kubernetes CA key missing", mutate: func(c *config.MachineConfig) { c.Cluster.CA.Key = nil },
			want: one("cluster.ca.key", "is required on a control-plane machine: the Kubernetes CA key")},
		{name: "Kubernetes CA key from another CA", mutate: func(c *config.MachineConfig) { c.Cluster.CA.Key = x.otherCA.KeyPEM },
			want: one("cluster.ca.key", "does not match the certificate in cluster.ca.crt")},
		{name: "Kubernetes CA not a CA", mutate: func(c *config.MachineConfig) {
			c.Cluster.CA = config.CertAndKey{Crt: x.leaf.CertPEM, Key: x.leaf.KeyPEM}
		}, want: one("cluster.ca.crt", "is not a CA certificate (node1): use the Kubernetes CA")},
		{name: "worker holding the Kubernetes CA key", worker: true, mutate: func(c *config.MachineConfig) { c.Cluster.CA.Key = b.CAs.Kubernetes.Key },
			want: one("cluster.ca.key", "a worker must not hold the Kubernetes CA key")},

		// Control-plane-only CAs.
		{name: "aggregator CA missing", mutate: func(c *config.MachineConfig) { c.Cluster.AggregatorCA = config.CertAndKey{} },
			want: one("cluster.aggregatorCA.crt", "is required: the front-proxy CA certificate")},
		{name: "aggregator CA key missing", mutate: func(c *config.MachineConfig) { c.Cluster.AggregatorCA.Key = nil },
			want: one("cluster.aggregatorCA.key", "is required on a control-plane machine: the front-proxy CA key")},
		{name: "aggregator CA key mismatch", mutate: func(c *config.MachineConfig) { c.Cluster.AggregatorCA.Key = b.CAs.Etcd.Key },
			want: one("cluster.aggregatorCA.key", "does not match the certificate in cluster.aggregatorCA.crt")},
		{name: "worker holding the aggregator CA", worker: true, mutate: func(c *config.MachineConfig) { c.Cluster.AggregatorCA = b.CAs.Aggregator },
			want: one("cluster.aggregatorCA", "a worker must not hold the front-proxy CA; remove it")},
		{name: "worker holding the aggregator CA certificate only", worker: true, mutate: func(c *config.MachineConfig) {
			c.Cluster.AggregatorCA = config.CertAndKey{Crt: b.CAs.Aggregator.Crt}
		}, want: one("cluster.aggregatorCA", "a worker must not hold the front-proxy CA")},
		{name: "etcd CA missing", mutate: func(c *config.MachineConfig) { c.Cluster.Etcd.CA = config.CertAndKey{} },
			want: one("cluster.etcd.ca.crt", "is required: the etcd CA certificate")},
		{name: "etcd CA not a CA", mutate: func(c *config.MachineConfig) {
			c.Cluster.Etcd.CA = config.CertAndKey{Crt: x.leaf.CertPEM, Key: x.leaf.KeyPEM}
		}, want: one("cluster.etcd.ca.crt", "is not a CA certificate")},
		{name: "etcd CA key from another CA", mutate: func(c *config.MachineConfig) { c.Cluster.Etcd.CA.Key = x.otherCA.KeyPEM },
			want: one("cluster.etcd.ca.key", "does not match")},
		{name: "worker holding the etcd CA", worker: true, mutate: func(c *config.MachineConfig) { c.Cluster.Etcd.CA = b.CAs.Etcd },
			want: one("cluster.etcd.ca", "a worker must not hold the etcd CA")},
		{name: "worker holding the etcd CA key only", worker: true, mutate: func(c *config.MachineConfig) {
			c.Cluster.Etcd.CA = config.CertAndKey{Key: b.CAs.Etcd.Key}
		}, want: one("cluster.etcd.ca", "a worker must not hold the etcd CA")},

		// Service account key.
		{name: "service account key missing", mutate: func(c *config.MachineConfig) { c.Cluster.ServiceAccount.Key = nil },
			want: one("cluster.serviceAccount.key", "is required on a control-plane machine")},
		{name: "service account key not PEM", mutate: func(c *config.MachineConfig) { c.Cluster.ServiceAccount.Key = []byte("key") },
			want: one("cluster.serviceAccount.key", "is not a PEM private key")},
		{name: "service account key is a certificate", mutate: func(c *config.MachineConfig) { c.Cluster.ServiceAccount.Key = b.CAs.OS.Crt },
			want: one("cluster.serviceAccount.key", "is not a PEM private key")},
		{name: "worker holding the service account key", worker: true, mutate: func(c *config.MachineConfig) {
			c.Cluster.ServiceAccount.Key = b.ServiceAccountKey
		}, want: one("cluster.serviceAccount.key", "a worker must not hold the service account key")},

		// Secretbox encryption secret.
		{name: "secretbox missing", mutate: func(c *config.MachineConfig) { c.Cluster.SecretboxEncryptionSecret = "" },
			want: one("cluster.secretboxEncryptionSecret", "is required on a control-plane machine; generate 32 random bytes")},
		{name: "secretbox 16 bytes", mutate: func(c *config.MachineConfig) {
			c.Cluster.SecretboxEncryptionSecret = base64.StdEncoding.EncodeToString(make([]byte, 16))
		}, want: one("cluster.secretboxEncryptionSecret", "must be 32 bytes in base64")},
		{name: "secretbox 33 bytes", mutate: func(c *config.MachineConfig) {
			c.Cluster.SecretboxEncryptionSecret = base64.StdEncoding.EncodeToString(make([]byte, 33))
		}, want: one("cluster.secretboxEncryptionSecret", "must be 32 bytes in base64")},
		{name: "secretbox not base64", mutate: func(c *config.MachineConfig) {
			c.Cluster.SecretboxEncryptionSecret = strings.Repeat("!", 44)
		}, want: one("cluster.secretboxEncryptionSecret", "must be 32 bytes in base64")},
		{name: "secretbox raw URL encoding", mutate: func(c *config.MachineConfig) {
			c.Cluster.SecretboxEncryptionSecret = base64.RawURLEncoding.EncodeToString(make([]byte, 32))
		}, want: one("cluster.secretboxEncryptionSecret", "must be 32 bytes in base64")},
		{name: "worker holding the secretbox secret", worker: true, mutate: func(c *config.MachineConfig) {
			c.Cluster.SecretboxEncryptionSecret = b.Tokens.SecretboxEncryptionSecret
		}, want: one("cluster.secretboxEncryptionSecret", "a worker must not hold the secrets encryption key")},

		// Images.
		{name: "images valid", mutate: func(c *config.MachineConfig) {
			c.Cluster.APIServer.Image = "registry.k8s.io/kube-apiserver:v1.37.2"
			c.Cluster.ControllerManager.Image = "localhost:5000/kcm"
			c.Cluster.Scheduler.Image = "registry.k8s.io/kube-scheduler@sha256:" + strings.Repeat("0", 64)
			c.Cluster.Proxy.Image = "registry.k8s.io/kube-proxy:V1.37.2-RC_1"
			c.Cluster.Etcd.Image = "quay.io/coreos/etcd:v3.6.16"
			c.Cluster.CoreDNS.Image = "coredns/coredns"
		}},
		{name: "apiServer image bad", mutate: func(c *config.MachineConfig) { c.Cluster.APIServer.Image = "Registry/API" },
			want: one("cluster.apiServer.image", `"Registry/API" is not an image reference; use REPOSITORY[:TAG][@DIGEST]`)},
		{name: "controllerManager image bad", mutate: func(c *config.MachineConfig) { c.Cluster.ControllerManager.Image = "kcm:" },
			want: one("cluster.controllerManager.image", "is not an image reference")},
		{name: "scheduler image bad", mutate: func(c *config.MachineConfig) { c.Cluster.Scheduler.Image = "sched@sha256:abc" },
			want: one("cluster.scheduler.image", "is not an image reference")},
		{name: "proxy image bad", mutate: func(c *config.MachineConfig) { c.Cluster.Proxy.Image = "kube proxy" },
			want: one("cluster.proxy.image", "is not an image reference")},
		{name: "etcd image bad", mutate: func(c *config.MachineConfig) { c.Cluster.Etcd.Image = "/etcd" },
			want: one("cluster.etcd.image", "is not an image reference")},
		{name: "coreDNS image bad", mutate: func(c *config.MachineConfig) { c.Cluster.CoreDNS.Image = "coredns//coredns" },
			want: one("cluster.coreDNS.image", "is not an image reference")},

		// Extra args of the control-plane components.
		{name: "component extra args", mutate: func(c *config.MachineConfig) {
			c.Cluster.APIServer.ExtraArgs = map[string]string{"--audit-log-path": "-", "feature-gates": "A=true"}
			c.Cluster.ControllerManager.ExtraArgs = map[string]string{"node-cidr-mask-size=24": ""}
			c.Cluster.Scheduler.ExtraArgs = map[string]string{"-v": "4"}
			c.Cluster.Proxy.ExtraArgs = map[string]string{"metrics bind address": "0.0.0.0"}
			c.Cluster.Etcd.ExtraArgs = map[string]string{"--quota-backend-bytes": "8589934592"}
		}, want: []wantField{
			{"cluster.apiServer.extraArgs.--audit-log-path", "is not a flag name"},
			{`cluster.controllerManager.extraArgs["node-cidr-mask-size=24"]`, "is not a flag name"},
			{"cluster.scheduler.extraArgs.-v", "is not a flag name"},
			{`cluster.proxy.extraArgs["metrics bind address"]`, "is not a flag name"},
			{"cluster.etcd.extraArgs.--quota-backend-bytes", "is not a flag name"},
		}},

		// API server certSANs.
		{name: "apiServer certSANs", mutate: func(c *config.MachineConfig) {
			c.Cluster.APIServer.CertSANs = []string{"api.example.com", "api example"}
		}, want: one("cluster.apiServer.certSANs[1]", `"api example" is neither an IP address nor a DNS name`)},

		// Proxy.
		{name: "proxy modes valid", mutate: func(c *config.MachineConfig) { c.Cluster.Proxy.Mode = "nftables" }},
		{name: "proxy mode unknown", mutate: func(c *config.MachineConfig) { c.Cluster.Proxy.Mode = "userspace" },
			want: one("cluster.proxy.mode", `"userspace" must be iptables, ipvs or nftables`)},

		// Manifests.
		{name: "extra manifests valid", mutate: func(c *config.MachineConfig) {
			c.Cluster.ExtraManifests = []string{"https://example.com/a.yaml", "http://10.0.0.1:8080/b.yaml"}
		}},
		{name: "extra manifest bad URL", mutate: func(c *config.MachineConfig) {
			c.Cluster.ExtraManifests = []string{"https://example.com/a.yaml", "ftp://example.com/b.yaml", "/var/c.yaml", "https:///d.yaml"}
		}, want: []wantField{
			{"cluster.extraManifests[1]", `"ftp://example.com/b.yaml" is not a URL with scheme http or https`},
			{"cluster.extraManifests[2]", "is not a URL with scheme http or https"},
			{"cluster.extraManifests[3]", "is not a URL with scheme http or https"},
		}},
		{name: "inline manifests valid", mutate: func(c *config.MachineConfig) {
			c.Cluster.InlineManifests = []config.InlineManifest{{Name: "ns", Contents: "kind: Namespace\n"}, {Name: "cm", Contents: "kind: ConfigMap\n"}}
		}},
		{name: "inline manifest without name", mutate: func(c *config.MachineConfig) {
			c.Cluster.InlineManifests = []config.InlineManifest{{Contents: "kind: Namespace\n"}}
		}, want: one("cluster.inlineManifests[0].name", "is required: a name that identifies the manifest")},
		{name: "inline manifest names twice", mutate: func(c *config.MachineConfig) {
			c.Cluster.InlineManifests = []config.InlineManifest{{Name: "ns", Contents: "a: b"}, {Name: "x", Contents: "a: b"}, {Name: "ns", Contents: "c: d"}}
		}, want: one("cluster.inlineManifests[2].name", `"ns" is used twice`)},
		{name: "inline manifest empty", mutate: func(c *config.MachineConfig) {
			c.Cluster.InlineManifests = []config.InlineManifest{{Name: "ns", Contents: " \n\t"}}
		}, want: one("cluster.inlineManifests[0].contents", "is empty; put the manifest's YAML here")},
	}
	runValidationCases(t, tests)
}

// TestValidateReportsEverything: every problem is reported at once.
func TestValidateReportsEverything(t *testing.T) {
	c := worker(t)
	c.Machine.Type = "node"
	c.Machine.Network.Hostname = "bad_host"
	c.Cluster.Name = ""
	c.Cluster.ControlPlane.Endpoint = "http://x:6443"
	c.Cluster.Proxy.Mode = "x"
	ps := config.Validate(c, config.ModeDocker)
	checkFields(t, ps, []wantField{
		{"machine.type", "must be controlplane or worker"},
		{"machine.network.hostname", "is not a valid host name"},
		{"cluster.name", "is required"},
		{"cluster.controlPlane.endpoint", "must use https"},
		{"cluster.proxy.mode", "must be iptables"},
	})
}

// TestDocumentValidateLines: problems found by Document.Validate carry the file, line and
// column of the field, or of its nearest enclosing field when the field is absent.
func TestDocumentValidateLines(t *testing.T) {
	cp := controlPlane(t)
	cp.Cluster.Network.PodSubnets = []string{"10.244.0.0/16", "10.10.0.1/16"}
	cp.Cluster.Network.DNSDomain = ""
	cp.Machine.Sysctls = map[string]string{"net.ipv4.ip_forward": ""}
	cp.Machine.Install = config.InstallSpec{}
	cp.Machine.Network.Interfaces = []config.Interface{{Name: "eth0", MTU: 100}}
	data := mustMarshal(t, cp, false)
	d := mustLoad(t, data, "cp.yaml")

	err := d.Validate(config.ModeMetal)
	ps := problemsOf(t, err)
	podLine := lineOf(t, data, "- 10.10.0.1/16")
	sysctlLine := lineOf(t, data, `net.ipv4.ip_forward: ""`)
	mtuLine := lineOf(t, data, "mtu: 100")
	machineLine := lineOf(t, data, "type: controlplane") // install is absent: its parent "machine" starts here
	want := []wantProblem{
		{machineLine, 3, "machine.install.disk", []string{"is required on bare metal"}},
		{sysctlLine, 26, `machine.sysctls["net.ipv4.ip_forward"]`, []string{"has an empty value"}},
		{mtuLine, 14, "machine.network.interfaces[0].mtu", []string{"100 is out of range"}},
		{podLine, 9, "cluster.network.podSubnets[1]", []string{"has host bits set; did you mean 10.10.0.0/16?"}},
	}
	slices.SortFunc(want, func(a, b wantProblem) int { return a.line - b.line })
	checkProblems(t, "cp.yaml", string(data), ps, want)

	// A valid document validates.
	valid := mustLoad(t, mustMarshal(t, controlPlane(t), true), "ok.yaml")
	if err := valid.Validate(config.ModeMetal); err != nil {
		t.Errorf("Validate(valid) = %v", err)
	}
}

func TestDocumentValidateHandWritten(t *testing.T) {
	input := header +
		"machine:\n" + // 3
		"  type: worker\n" + // 4
		"  network:\n" + // 5
		"    nameservers:\n" + // 6
		"      - 1.1.1.1\n" + // 7
		"      - dns.google\n" + // 8
		"cluster:\n" + // 9
		"  controlPlane:\n" + // 10
		"    endpoint: http://10.5.0.2:6443\n" + // 11
		"  network:\n" + // 12
		"    serviceSubnets: [10.96.0.0/8]\n" // 13
	d := mustLoad(t, []byte(input), "hand.yaml")
	ps := problemsOf(t, d.Validate(config.ModeDocker))
	byField := map[string]config.Problem{}
	for _, p := range ps {
		byField[p.Field] = p
	}
	for field, line := range map[string]int{
		"machine.network.nameservers[1]":    8,
		"cluster.controlPlane.endpoint":     11,
		"cluster.network.serviceSubnets[0]": 13,
		"machine.token":                     4,  // absent: located at machine, whose first key is on line 4
		"cluster.name":                      10, // absent: located at cluster, whose first key is on line 10
		"machine.ca.crt":                    4,
	} {
		p, ok := byField[field]
		if !ok {
			t.Errorf("no problem for %s in:\n%v", field, ps)
			continue
		}
		if p.Line != line || p.File != "hand.yaml" {
			t.Errorf("%s: located at %s:%d, want hand.yaml:%d", field, p.File, p.Line, line)
		}
	}
	for i := 1; i < len(ps); i++ {
		if ps[i-1].Line > ps[i].Line || ps[i-1].Line == ps[i].Line && ps[i-1].Field > ps[i].Field {
			t.Errorf("problems not sorted by line then field:\n%v", ps)
			break
		}
	}
}

// TestValidateSubnetsAgainstDefaults: Validate accepts empty fields because they have
// defaults, so it must judge the other fields against those defaults: a service subnet
// that overlaps the default pod subnet is refused.
func TestValidateSubnetsAgainstDefaults(t *testing.T) {
	tests := []validationCase{
		{name: "service subnet overlapping the default pod subnet", mutate: func(c *config.MachineConfig) {
			c.Cluster.Network.PodSubnets = nil
			c.Cluster.Network.ServiceSubnets = []string{"10.244.0.0/16"}
		}, want: one("cluster.network.serviceSubnets", "overlaps pod subnet 10.244.0.0/16")},
		{name: "pod subnet overlapping the default service subnet", mutate: func(c *config.MachineConfig) {
			c.Cluster.Network.PodSubnets = []string{"10.96.0.0/16"}
			c.Cluster.Network.ServiceSubnets = nil
		}, want: one("cluster.network.serviceSubnets", "overlaps pod subnet 10.96.0.0/16")},
		{name: "IPv6 service subnet against the default IPv4 pod subnet", mutate: func(c *config.MachineConfig) {
			c.Cluster.Network.PodSubnets = nil
			c.Cluster.Network.ServiceSubnets = []string{"fd00:10:96::/112"}
		}, want: one("cluster.network.serviceSubnets", "same IP families")},
	}
	runValidationCases(t, tests)
}

// TestValidateOrderIsStable: Validate lists problems in a fixed order, so that the
// output of `plinthctl gen config` (which prints them unsorted) does not change between
// runs.
func TestValidateOrderIsStable(t *testing.T) {
	c := controlPlane(t)
	c.Cluster.APIServer.Image = "A"
	c.Cluster.ControllerManager.Image = "B"
	c.Cluster.Scheduler.Image = "C"
	c.Cluster.Proxy.Image = "D"
	c.Cluster.Etcd.Image = "E"
	c.Cluster.CoreDNS.Image = "F"
	first := config.Validate(c, config.ModeDocker).Error()
	for range 50 {
		if got := config.Validate(c, config.ModeDocker).Error(); got != first {
			t.Fatalf("Validate order changed between runs:\n%s\n---\n%s", first, got)
		}
	}
}

// TestValidatePorts: ports are checked wherever an address has one, not only in the
// control-plane endpoint.
func TestValidatePorts(t *testing.T) {
	runValidationCases(t, []validationCase{
		{name: "log endpoint port 0", mutate: func(c *config.MachineConfig) {
			c.Machine.Logging.Destinations = []config.LogDestination{{Endpoint: "tcp://10.0.0.1:0"}}
		}, want: one("machine.logging.destinations[0].endpoint", "10.0.0.1:0")},
		{name: "log endpoint port too large", mutate: func(c *config.MachineConfig) {
			c.Machine.Logging.Destinations = []config.LogDestination{{Endpoint: "udp://10.0.0.1:99999"}}
		}, want: one("machine.logging.destinations[0].endpoint", "99999")},
		{name: "mirror host port too large", mutate: func(c *config.MachineConfig) {
			c.Machine.Registries.Mirrors = map[string]config.Mirror{"docker.io:99999": {Endpoints: []string{"https://m.example.com"}}}
		}, want: one(`machine.registries.mirrors["docker.io:99999"]`, "is not a registry host")},
		{name: "endpoint with an empty port", mutate: func(c *config.MachineConfig) {
			c.Cluster.ControlPlane.Endpoint = "https://10.5.0.2:"
		}, want: one("cluster.controlPlane.endpoint", "port")},
	})
}

// TestValidateMistypedAddresses: a name made only of numeric labels is not a DNS name
// (a top-level domain is never all digits), so 999.1.1.1 or 10.0.0.1.5 is a mistyped
// IP address and must be refused, not put in a certificate as a DNS name.
func TestValidateMistypedAddresses(t *testing.T) {
	runValidationCases(t, []validationCase{
		{name: "certSAN", mutate: func(c *config.MachineConfig) { c.Machine.CertSANs = []string{"10.0.0.256"} },
			want: one("machine.certSANs[0]", "is neither an IP address nor a DNS name")},
		{name: "apiServer certSAN", mutate: func(c *config.MachineConfig) { c.Cluster.APIServer.CertSANs = []string{"10.0.0.1.5"} },
			want: one("cluster.apiServer.certSANs[0]", "is neither an IP address nor a DNS name")},
		{name: "endpoint", mutate: func(c *config.MachineConfig) { c.Cluster.ControlPlane.Endpoint = "https://999.1.1.1:6443" },
			want: one("cluster.controlPlane.endpoint", "is neither a DNS name nor an IP address")},
	})
}
