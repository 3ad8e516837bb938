package addons

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// sampleSubnetEnv is what flanneld v0.28 writes for a node leased 10.244.1.0/24 with
// --ip-masq on a 1500-byte interface (host-gw adds no overhead).
const sampleSubnetEnv = `FLANNEL_NETWORK=10.244.0.0/16
FLANNEL_SUBNET=10.244.1.1/24
FLANNEL_MTU=1500
FLANNEL_IPMASQ=true
`

func TestCNIConfig(t *testing.T) {
	data, err := CNIConfig(sampleSubnetEnv, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	var got any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, data)
	}
	var want any
	if err := json.Unmarshal([]byte(`{
		"cniVersion": "1.0.0",
		"name": "plinth",
		"plugins": [
			{
				"type": "bridge",
				"bridge": "cni0",
				"isGateway": true,
				"ipMasq": false,
				"hairpinMode": true,
				"mtu": 1500,
				"ipam": {
					"type": "host-local",
					"ranges": [[{"subnet": "10.244.1.0/24"}]],
					"routes": [{"dst": "0.0.0.0/0"}]
				}
			},
			{"type": "portmap", "capabilities": {"portMappings": true}}
		]
	}`), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CNIConfig =\n%s", data)
	}
	if !strings.HasSuffix(string(data), "}\n") {
		t.Error("no final newline")
	}
}

func TestCNIConfigVariants(t *testing.T) {
	// bridge returns the bridge plugin's configuration.
	bridge := func(t *testing.T, env string) map[string]any {
		t.Helper()
		data, err := CNIConfig(env, nil)
		if err != nil {
			t.Fatal(err)
		}
		var c struct{ Plugins []map[string]any }
		if err := json.Unmarshal(data, &c); err != nil {
			t.Fatal(err)
		}
		return c.Plugins[0]
	}

	// Without flanneld's masquerading, the bridge plugin masquerades.
	b := bridge(t, strings.Replace(sampleSubnetEnv, "FLANNEL_IPMASQ=true", "FLANNEL_IPMASQ=false", 1))
	if b["ipMasq"] != true {
		t.Errorf("ipMasq %v with FLANNEL_IPMASQ=false", b["ipMasq"])
	}
	b = bridge(t, "# written by flanneld\n\nFLANNEL_SUBNET=10.244.7.1/26\nFLANNEL_MTU=1450\n")
	if b["mtu"] != 1450.0 || b["ipMasq"] != true || get(b, "ipam", "ranges", 0, 0, "subnet") != "10.244.7.0/26" {
		t.Errorf("bridge %v", b)
	}

	dual := sampleSubnetEnv + "FLANNEL_IPV6_NETWORK=fd00:244::/56\nFLANNEL_IPV6_SUBNET=fd00:244:0:1::1/64\n"
	b = bridge(t, dual)
	ipam := b["ipam"].(map[string]any)
	wantRanges := []any{
		[]any{map[string]any{"subnet": "10.244.1.0/24"}},
		[]any{map[string]any{"subnet": "fd00:244:0:1::/64"}},
	}
	wantRoutes := []any{map[string]any{"dst": "0.0.0.0/0"}, map[string]any{"dst": "::/0"}}
	if !reflect.DeepEqual(ipam["ranges"], wantRanges) || !reflect.DeepEqual(ipam["routes"], wantRoutes) {
		t.Errorf("dual-stack ipam %v", ipam)
	}

	b = bridge(t, "FLANNEL_IPV6_NETWORK=fd00:244::/56\nFLANNEL_IPV6_SUBNET=fd00:244:0:1::1/64\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=true\n")
	ipam = b["ipam"].(map[string]any)
	if !reflect.DeepEqual(ipam["ranges"], wantRanges[1:]) || !reflect.DeepEqual(ipam["routes"], wantRoutes[1:]) {
		t.Errorf("IPv6-only ipam %v", ipam)
	}
}

func TestCNIConfigErrors(t *testing.T) {
	for _, env := range []string{
		"",
		"FLANNEL_SUBNET=10.244.1.1/24\n", // no MTU
		"FLANNEL_MTU=1500\nFLANNEL_IPMASQ=true\n",                                         // no subnet
		"FLANNEL_SUBNET=10.244.1.1\nFLANNEL_MTU=1500\n",                                   // not CIDR
		"FLANNEL_SUBNET=fd00::1/64\nFLANNEL_MTU=1500\n",                                   // wrong family
		"FLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=15x\n",                                 // bad MTU
		"FLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=40\n",                                  // MTU too small
		"FLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=yes\n",            // bad bool
		"FLANNEL_NETWORK=10.245.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1500\n", // outside the network
		"FLANNEL_SUBNET 10.244.1.1/24\n",                                                  // not KEY=VALUE
	} {
		if _, err := CNIConfig(env, nil); err == nil {
			t.Errorf("accepted %q", env)
		}
	}
	// A lease outside the configured pod subnets: flanneld and the configuration disagree.
	cfg := testConfig()
	cfg.Cluster.Network.PodSubnets = []string{"10.32.0.0/12"}
	if _, err := CNIConfig(sampleSubnetEnv, cfg); err == nil {
		t.Error("a subnet outside the pod subnets was accepted")
	}
	if _, err := CNIConfig(sampleSubnetEnv, nil); err != nil {
		t.Errorf("without a configuration: %v", err)
	}
}

func TestParseSubnetEnv(t *testing.T) {
	env, err := ParseSubnetEnv(sampleSubnetEnv)
	if err != nil {
		t.Fatal(err)
	}
	if env.Network.String() != "10.244.0.0/16" || env.Subnet.String() != "10.244.1.1/24" || env.MTU != 1500 || !env.IPMasq ||
		env.IPv6Network.IsValid() || env.IPv6Subnet.IsValid() {
		t.Errorf("ParseSubnetEnv = %+v", env)
	}
}
