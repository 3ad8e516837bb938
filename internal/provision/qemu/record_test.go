package qemu

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/configgen"
	"github.com/plinthos/plinth/internal/osimage"
	"github.com/plinthos/plinth/internal/provision"
	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/secrets"
)

func mustPlan(t *testing.T, name string, cps, workers int, cidr string) *provision.Plan {
	t.Helper()
	plan, err := provision.NewPlan(name, cps, workers, cidr)
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

func TestNewRecord(t *testing.T) {
	rec, err := newRecord("demo", mustPlan(t, "demo", 1, 2, "10.6.0.0/24"), "/os", "os", 2, 1536)
	if err != nil {
		t.Fatal(err)
	}
	if rec.CIDR != "10.6.0.0/24" || rec.Gateway != "10.6.0.1/24" || rec.Namespace != "plinth-demo" || rec.HostLink != "plq2a97516c" {
		t.Errorf("record: %+v", rec)
	}
	if len(rec.Nodes) != 3 {
		t.Fatalf("nodes: %+v", rec.Nodes)
	}
	macs := map[string]bool{}
	for i, n := range rec.Nodes {
		if !strings.HasPrefix(n.MAC, "52:54:00:") || macs[n.MAC] {
			t.Errorf("node %s: MAC %s (not QEMU's prefix, or shared)", n.Name, n.MAC)
		}
		macs[n.MAC] = true
		if n.CPUs != 2 || n.MemoryMB != 1536 || n.PID != 0 {
			t.Errorf("node %s: %+v", n.Name, n)
		}
		if want := []string{"tap1", "tap2", "tap3"}[i]; n.Tap != want {
			t.Errorf("node %s: tap %s, want %s", n.Name, n.Tap, want)
		}
	}
	first, worker := rec.Nodes[0], rec.Nodes[2]
	if first.Name != "demo-controlplane-1" || first.IP != "10.6.0.2" || first.Role != provision.RoleControlPlane ||
		first.Disk != "demo-controlplane-1.qcow2" || first.Config != "demo-controlplane-1.yaml" || first.QMP != "qmp-1.sock" {
		t.Errorf("first node: %+v", first)
	}
	if worker.Name != "demo-worker-2" || worker.IP != "10.6.0.4" || worker.Role != provision.RoleWorker {
		t.Errorf("last node: %+v", worker)
	}
	if got := strings.Join(rec.Taps(), ","); got != "tap1,tap2,tap3" {
		t.Errorf("taps %s", got)
	}
	if rec.Node("demo-worker-1") == nil || rec.Node("other-worker-1") != nil {
		t.Error("Node finds the wrong nodes")
	}
	// Another cluster's VMs have other MACs (not that they ever share a bridge).
	other, _ := newRecord("other", mustPlan(t, "other", 1, 0, ""), "/os", "os", 1, 1024)
	if other.Nodes[0].MAC == first.MAC {
		t.Errorf("two clusters share MAC %s", first.MAC)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if _, err := loadRecord(dir); err == nil || !strings.Contains(err.Error(), "no cluster record") {
		t.Errorf("no record: %v", err)
	}
	rec, _ := newRecord("demo", mustPlan(t, "demo", 1, 1, ""), "/os", "os", 1, 1024)
	rec.Accel, rec.Nodes[1].PID = "tcg", 4242
	if err := saveRecord(dir, rec); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, RecordFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("record file: %v %v", st, err)
	}
	got, err := loadRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Accel != "tcg" || got.Nodes[1].PID != 4242 || got.Nodes[0].MAC != rec.Nodes[0].MAC || got.Image != "/os" {
		t.Errorf("read back %+v", got)
	}
	if err := os.WriteFile(filepath.Join(dir, RecordFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadRecord(dir); err == nil {
		t.Error("a broken record was read")
	}
}

func TestCheckPaths(t *testing.T) {
	rec, _ := newRecord("demo", mustPlan(t, "demo", 1, 1, ""), "/os", "os", 1, 1024)
	if err := rec.checkPaths("/root/.plinth/clusters/demo/qemu"); err != nil {
		t.Error(err)
	}
	if err := rec.checkPaths("/" + strings.Repeat("d", 100)); err == nil || !strings.Contains(err.Error(), "107 bytes") {
		t.Errorf("a long directory: %v", err)
	}
}

// roleConfigs generates a cluster's machine configurations, as plinthctl cluster does.
func roleConfigs(t *testing.T) (cp, worker []byte) {
	t.Helper()
	b, err := secrets.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	g, err := configgen.Generate(b, configgen.Options{ClusterName: "demo", Endpoint: "https://10.6.0.2:6443"})
	if err != nil {
		t.Fatal(err)
	}
	if cp, err = config.Marshal(g.ControlPlane, true); err != nil {
		t.Fatal(err)
	}
	if worker, err = config.Marshal(g.Worker, true); err != nil {
		t.Fatal(err)
	}
	return cp, worker
}

func TestNodeConfig(t *testing.T) {
	cp, worker := roleConfigs(t)
	prefix := netip.MustParsePrefix("10.6.0.0/24")
	for _, tc := range []struct {
		data []byte
		node provision.NodeSpec
	}{
		{cp, provision.NodeSpec{Name: "demo-controlplane-1", Role: provision.RoleControlPlane, IP: "10.6.0.2"}},
		{worker, provision.NodeSpec{Name: "demo-worker-1", Role: provision.RoleWorker, IP: "10.6.0.3"}},
	} {
		out, err := nodeConfig(tc.data, tc.node, prefix)
		if err != nil {
			t.Fatalf("%s: %v", tc.node.Name, err)
		}
		doc, err := config.Load(out, tc.node.Name)
		if err != nil {
			t.Fatal(err)
		}
		m := doc.Config.Machine
		if m.Network.Hostname != tc.node.Name || len(m.Network.Interfaces) != 1 || m.Network.Interfaces[0].Name != "eth0" ||
			strings.Join(m.Network.Interfaces[0].Addresses, ",") != tc.node.IP+"/24" || m.Network.Interfaces[0].DHCP ||
			len(m.Network.Interfaces[0].Routes) != 0 {
			t.Errorf("%s: network %+v", tc.node.Name, m.Network)
		}
		if !m.Time.Disabled || m.Install.Disk != "/dev/vda" {
			t.Errorf("%s: time %+v, install %+v", tc.node.Name, m.Time, m.Install)
		}
		if ps := config.Validate(doc.Config, config.ModeMetal); len(ps) > 0 {
			t.Errorf("%s: not valid for metal: %v", tc.node.Name, ps)
		}
	}
}

func TestNodeConfigKeepsOtherLinksAndVLANs(t *testing.T) {
	cp, _ := roleConfigs(t)
	doc, err := config.Load(cp, "cp")
	if err != nil {
		t.Fatal(err)
	}
	doc.Config.Machine.Network.Interfaces = []config.Interface{
		{Name: "eth1", DHCP: true},
		{Name: "eth0", DHCP: true, MTU: 1400, VLANs: []config.VLAN{{VLANID: 42, Addresses: []string{"192.168.42.2/24"}}}},
	}
	data, err := config.Marshal(doc.Config, false)
	if err != nil {
		t.Fatal(err)
	}
	out, err := nodeConfig(data, provision.NodeSpec{Name: "demo-controlplane-1", IP: "10.6.0.2"}, netip.MustParsePrefix("10.6.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := config.Load(out, "out")
	ifs := got.Config.Machine.Network.Interfaces
	if len(ifs) != 2 || ifs[0].Name != "eth1" || !ifs[0].DHCP || ifs[1].Name != "eth0" || ifs[1].DHCP || ifs[1].MTU != 1400 ||
		len(ifs[1].VLANs) != 1 || ifs[1].Addresses[0] != "10.6.0.2/24" {
		t.Errorf("interfaces %+v", ifs)
	}
}

func TestNodeConfigRefuses(t *testing.T) {
	cp, _ := roleConfigs(t)
	prefix := netip.MustParsePrefix("10.6.0.0/24")
	if _, err := nodeConfig(cp, provision.NodeSpec{Name: "n", IP: "10.7.0.2"}, prefix); err == nil {
		t.Error("an address outside the network")
	}
	if _, err := nodeConfig([]byte("machine: ["), provision.NodeSpec{Name: "n", IP: "10.6.0.2"}, prefix); err == nil {
		t.Error("a configuration that does not parse")
	}
	// What metal refuses (machine.env) is refused for the VM too.
	doc, _ := config.Load(cp, "cp")
	doc.Config.Machine.Env = map[string]string{"A": "b"}
	data, _ := config.Marshal(doc.Config, false)
	if _, err := nodeConfig(data, provision.NodeSpec{Name: "n", IP: "10.6.0.2"}, prefix); err == nil || !strings.Contains(err.Error(), "machine.env") {
		t.Errorf("machine.env on a VM: %v", err)
	}
}

func TestVCPUs(t *testing.T) {
	for in, want := range map[float64]int{0: 1, -1: 1, 0.5: 1, 1: 1, 1.5: 2, 4: 4} {
		if got := vcpus(in); got != want {
			t.Errorf("vcpus(%v) = %d, want %d", in, got, want)
		}
	}
}

func TestLoadImage(t *testing.T) {
	if osimage.ProfileK8s != profileK8s {
		t.Errorf("the Kubernetes profile is %q in osimage, %q here", osimage.ProfileK8s, profileK8s)
	}
	dir := t.TempDir()
	if _, err := loadImage(""); err == nil || !strings.Contains(err.Error(), "make image-os") {
		t.Errorf("no image: %v", err)
	}
	if _, err := loadImage(dir); err == nil || !strings.Contains(err.Error(), "has no disk.raw") {
		t.Errorf("empty directory: %v", err)
	}
	for _, f := range []string{ImageDisk, ImageKernel} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := loadImage(dir); err == nil || !strings.Contains(err.Error(), "has no manifest.json") {
		t.Errorf("no manifest: %v", err)
	}
	for manifest, want := range map[string]bool{`{"version":"v1","profile":"os"}`: false, `{"version":"v1","profile":"k8s"}`: true} {
		if err := os.WriteFile(filepath.Join(dir, ImageManifest), []byte(manifest), 0o644); err != nil {
			t.Fatal(err)
		}
		img, err := loadImage(dir)
		if err != nil || img.kubernetes() != want || img.Version != "v1" || img.disk() != filepath.Join(dir, "disk.raw") {
			t.Errorf("%s: %+v %v", manifest, img, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, ImageManifest), []byte(`{"version":"v1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadImage(dir); err == nil {
		t.Error("a manifest without a profile")
	}
}

func TestLastLines(t *testing.T) {
	p := filepath.Join(t.TempDir(), "console.log")
	if got := lastLines(p, 5); got != "" {
		t.Errorf("no file: %q", got)
	}
	console := "\x1b[2J\x1b[01;01HBdsDxe: loading Boot0001\r\n\x1b[?7lone\r\ntwo\r\nthree\r\n"
	if err := os.WriteFile(p, []byte(console), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := lastLines(p, 2); got != "two\nthree\n" {
		t.Errorf("last 2: %q", got)
	}
	if got := lastLines(p, 10); got != "BdsDxe: loading Boot0001\none\ntwo\nthree\n" {
		t.Errorf("all: %q", got)
	}
}
