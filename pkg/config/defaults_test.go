package config_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/plinthos/plinth/pkg/config"
)

func TestImagesFor(t *testing.T) {
	got := config.ImagesFor("v1.36.0")
	want := config.Images{
		APIServer:         "plinth.local/kube-apiserver:v1.36.0",
		ControllerManager: "plinth.local/kube-controller-manager:v1.36.0",
		Scheduler:         "plinth.local/kube-scheduler:v1.36.0",
		Proxy:             "plinth.local/kube-proxy:v1.36.0",
		Kubelet:           "plinth.local/kubelet:v1.36.0",
		Etcd:              "plinth.local/etcd:" + config.DefaultEtcdVersion,
		CoreDNS:           "plinth.local/coredns:" + config.DefaultCoreDNSVersion,
	}
	if got != want {
		t.Errorf("ImagesFor = %+v\nwant %+v", got, want)
	}
}

func TestApplyDefaultsFillsEmptyFields(t *testing.T) {
	c := &config.MachineConfig{
		Machine: config.MachineSpec{
			Files: []config.File{{Path: "/var/a"}, {Path: "/var/b"}},
			Kubelet: config.KubeletSpec{ExtraMounts: []config.Mount{
				{Source: "/var/lib/a", Destination: "/var/lib/a"},
			}},
			Logging: config.LoggingSpec{Destinations: []config.LogDestination{{Endpoint: "tcp://10.0.0.1:5044"}}},
		},
	}
	config.ApplyDefaults(c)
	images := config.ImagesFor(config.DefaultKubernetesVersion)
	cl := c.Cluster
	for _, tt := range []struct {
		field     string
		got, want any
	}{
		{"cluster.network.dnsDomain", cl.Network.DNSDomain, "cluster.local"},
		{"cluster.network.podSubnets", cl.Network.PodSubnets, []string{"10.244.0.0/16"}},
		{"cluster.network.serviceSubnets", cl.Network.ServiceSubnets, []string{"10.96.0.0/12"}},
		{"cluster.network.cni.name", cl.Network.CNI.Name, "plinth"},
		{"cluster.apiServer.image", cl.APIServer.Image, images.APIServer},
		{"cluster.controllerManager.image", cl.ControllerManager.Image, images.ControllerManager},
		{"cluster.scheduler.image", cl.Scheduler.Image, images.Scheduler},
		{"cluster.proxy.image", cl.Proxy.Image, images.Proxy},
		{"cluster.proxy.mode", cl.Proxy.Mode, "iptables"},
		{"cluster.etcd.image", cl.Etcd.Image, "plinth.local/etcd:v3.7.3"},
		{"cluster.coreDNS.image", cl.CoreDNS.Image, "plinth.local/coredns:v1.15.0"},
		{"machine.kubelet.image", c.Machine.Kubelet.Image, "plinth.local/kubelet:v1.37.2"},
		{"machine.files[0].permissions", c.Machine.Files[0].Permissions, config.FileMode(0o644)},
		{"machine.files[0].op", c.Machine.Files[0].Op, "create"},
		{"machine.files[1].permissions", c.Machine.Files[1].Permissions, config.FileMode(0o644)},
		{"machine.files[1].op", c.Machine.Files[1].Op, "create"},
		{"machine.kubelet.extraMounts[0].type", c.Machine.Kubelet.ExtraMounts[0].Type, "bind"},
		{"machine.logging.destinations[0].format", c.Machine.Logging.Destinations[0].Format, "json_lines"},
	} {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.field, tt.got, tt.want)
		}
	}
	// Secrets and identity are not invented.
	if c.Machine.Token != "" || c.Cluster.Token != "" || c.Cluster.SecretboxEncryptionSecret != "" ||
		c.Cluster.ID != "" || len(c.Machine.CA.Crt) != 0 || len(c.Cluster.ServiceAccount.Key) != 0 || c.Machine.Type != "" {
		t.Errorf("ApplyDefaults filled a secret or identity field: %+v", c)
	}
}

func TestApplyDefaultsKeepsSetValues(t *testing.T) {
	c := controlPlane(t)
	c.Cluster.Network = config.ClusterNetworkSpec{
		DNSDomain:      "example.internal",
		PodSubnets:     []string{"10.1.0.0/16", "fd00:1::/56"},
		ServiceSubnets: []string{"10.2.0.0/16", "fd00:2::/112"},
		CNI:            config.CNISpec{Name: "custom", URLs: []string{"https://example.com/cni.yaml"}},
	}
	c.Cluster.APIServer.Image = "example.com/apiserver:1"
	c.Cluster.ControllerManager.Image = "example.com/kcm:1"
	c.Cluster.Scheduler.Image = "example.com/scheduler:1"
	c.Cluster.Proxy = config.ProxySpec{Image: "example.com/proxy:1", Mode: "ipvs"}
	c.Cluster.Etcd.Image = "example.com/etcd:1"
	c.Cluster.CoreDNS.Image = "example.com/coredns:1"
	c.Machine.Kubelet.Image = "example.com/kubelet:1"
	c.Machine.Kubelet.ExtraMounts = []config.Mount{{Source: "/a", Destination: "/b", Type: "tmpfs"}}
	c.Machine.Files = []config.File{{Path: "/var/a", Permissions: 0o600, Op: "append"}}
	c.Machine.Logging.Destinations = []config.LogDestination{{Endpoint: "udp://h:1", Format: "custom"}}

	before := deepCopy(c)
	config.ApplyDefaults(c)
	if !reflect.DeepEqual(c, before) {
		t.Errorf("ApplyDefaults changed set values:\n got %+v\nwant %+v", c, before)
	}
}

func TestApplyDefaultsIsIdempotentAndValid(t *testing.T) {
	for _, c := range []*config.MachineConfig{controlPlane(t), worker(t)} {
		// Clear every defaulted field, then let the defaults fill them back.
		c.Cluster.Network = config.ClusterNetworkSpec{}
		c.Cluster.APIServer.Image = ""
		c.Cluster.ControllerManager.Image = ""
		c.Cluster.Scheduler.Image = ""
		c.Cluster.Proxy.Image = ""
		c.Cluster.Etcd.Image = ""
		c.Cluster.CoreDNS.Image = ""
		c.Machine.Kubelet.Image = ""
		c.Machine.Files = []config.File{{Path: "/var/lib/x", Content: "x"}}
		c.Machine.Kubelet.ExtraMounts = []config.Mount{{Source: "/var/lib/y", Destination: "/var/lib/y"}}
		c.Machine.Logging.Destinations = []config.LogDestination{{Endpoint: "tcp://10.0.0.1:5044"}}
		if ps := config.Validate(c, config.ModeCloud); len(ps) != 0 {
			t.Errorf("%s config without defaults: %v", c.Machine.Type, ps)
		}
		config.ApplyDefaults(c)
		if ps := config.Validate(c, config.ModeCloud); len(ps) != 0 {
			t.Errorf("%s config with defaults: %v", c.Machine.Type, ps)
		}
		once := deepCopy(c)
		config.ApplyDefaults(c)
		if !reflect.DeepEqual(c, once) {
			t.Errorf("ApplyDefaults is not idempotent")
		}
		// The defaulted config survives a round trip.
		again := mustLoad(t, mustMarshal(t, c, false), "defaulted.yaml").Config
		if !reflect.DeepEqual(again, c) {
			t.Errorf("defaulted %s config changed in a round trip", c.Machine.Type)
		}
	}
}

// TestApplyDefaultsMatchesGenerated: a generated config already carries the defaults of
// everything it sets, so applying defaults changes only fields that it leaves empty.
func TestApplyDefaultsMatchesGenerated(t *testing.T) {
	c := controlPlane(t)
	before := deepCopy(c)
	config.ApplyDefaults(c)
	before.Cluster.Proxy.Mode = config.DefaultProxyMode // the only default configgen leaves out
	if !reflect.DeepEqual(c, before) {
		t.Errorf("ApplyDefaults changed a generated config beyond proxy.mode")
	}
	if !slices.Equal(c.Cluster.Network.PodSubnets, []string{config.DefaultPodSubnet}) {
		t.Errorf("podSubnets = %v", c.Cluster.Network.PodSubnets)
	}
}
