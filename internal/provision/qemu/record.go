package qemu

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"

	"github.com/plinthos/plinth/internal/atomicfile"
	"github.com/plinthos/plinth/internal/provision"
	"github.com/plinthos/plinth/internal/vmnet"
)

// RecordFile is the cluster's record in its directory.
const RecordFile = "cluster.json"

// SubDir is the directory of a cluster's VMs inside the cluster's directory (DIR/NAME):
// the state directory of plinthctl cluster holds the secrets and configurations beside it.
const SubDir = "qemu"

// maxSocketPath is the longest path of a unix socket (sun_path holds 108 bytes with the
// terminating NUL).
const maxSocketPath = 107

// Record is what a cluster is made of, kept as JSON in its directory so that show, list,
// logs and destroy find it from another process.
type Record struct {
	Name string `json:"name"`
	// CIDR is the cluster network; Gateway the host's address on it.
	CIDR    string `json:"cidr"`
	Gateway string `json:"gateway"`
	// Namespace and HostLink are the cluster's network (internal/vmnet).
	Namespace string `json:"namespace"`
	HostLink  string `json:"hostLink"`
	// Image is the OS image directory the nodes' disks are overlays of; Profile its
	// manifest's profile (os: no Kubernetes).
	Image   string `json:"image"`
	Profile string `json:"profile"`
	// Accel is how the VMs run: kvm or tcg.
	Accel string     `json:"accel"`
	Nodes []VMRecord `json:"nodes"`
}

// VMRecord is one node's VM. Its files are named relative to the cluster's directory.
type VMRecord struct {
	Name string `json:"name"`
	Role string `json:"role"`
	IP   string `json:"ip"`
	MAC  string `json:"mac"`
	Tap  string `json:"tap"`
	// PID is the emulator's process id, 0 before it started.
	PID      int `json:"pid,omitempty"`
	CPUs     int `json:"cpus"`
	MemoryMB int `json:"memoryMB"`
	// Disk is the qcow2 overlay over the image's disk.raw; Vars the firmware's variable
	// store; Config the machine configuration handed over through fw_cfg; Console the
	// serial console's log; QMP the emulator's control socket; PIDFile where the emulator
	// writes its process id; Output the emulator's own messages while it starts.
	Disk    string `json:"disk"`
	Vars    string `json:"vars"`
	Config  string `json:"config"`
	Console string `json:"console"`
	QMP     string `json:"qmp"`
	PIDFile string `json:"pidFile"`
	Output  string `json:"output"`
}

// newRecord lays out the record of a new cluster from its plan: names, addresses, MACs,
// taps and files of each node's VM.
func newRecord(name string, plan *provision.Plan, image, profile string, cpus, memoryMB int) (*Record, error) {
	prefix, err := netip.ParsePrefix(plan.CIDR)
	if err != nil {
		return nil, fmt.Errorf("cluster network %q: %w", plan.CIDR, err)
	}
	gw, err := netip.ParseAddr(plan.Gateway)
	if err != nil {
		return nil, fmt.Errorf("gateway %q: %w", plan.Gateway, err)
	}
	r := &Record{
		Name: name, CIDR: prefix.String(), Gateway: netip.PrefixFrom(gw, prefix.Bits()).String(),
		Namespace: vmnet.NamespaceName(name), HostLink: vmnet.HostLinkName(name),
		Image: image, Profile: profile,
	}
	sum := sha256.Sum256([]byte(name))
	for i, n := range plan.Nodes {
		idx := i + 1
		r.Nodes = append(r.Nodes, VMRecord{
			Name: n.Name, Role: n.Role, IP: n.IP,
			// QEMU's own prefix; the rest from the cluster's name and the node's index, so
			// that every VM on the bridge has its own.
			MAC:  fmt.Sprintf("52:54:00:%02x:%02x:%02x", sum[0], sum[1], idx),
			Tap:  vmnet.TapName(idx),
			CPUs: cpus, MemoryMB: memoryMB,
			Disk: n.Name + ".qcow2", Vars: n.Name + "-vars.fd", Config: n.Name + ".yaml",
			Console: n.Name + ".log", PIDFile: n.Name + ".pid", Output: n.Name + "-qemu.log",
			// Short: a socket's path is limited to 107 bytes.
			QMP: "qmp-" + strconv.Itoa(idx) + ".sock",
		})
	}
	return r, nil
}

// Taps lists the nodes' tap devices.
func (r *Record) Taps() []string {
	taps := make([]string, 0, len(r.Nodes))
	for _, n := range r.Nodes {
		taps = append(taps, n.Tap)
	}
	return taps
}

// Node returns the VM of the node named name, or nil.
func (r *Record) Node(name string) *VMRecord {
	for i := range r.Nodes {
		if r.Nodes[i].Name == name {
			return &r.Nodes[i]
		}
	}
	return nil
}

// checkPaths refuses a directory whose sockets' paths would be too long for unix sockets.
func (r *Record) checkPaths(dir string) error {
	for _, n := range r.Nodes {
		if p := filepath.Join(dir, n.QMP); len(p) > maxSocketPath {
			return fmt.Errorf("the control socket %s is longer than %d bytes, the limit of unix sockets: use a shorter --name or home directory", p, maxSocketPath)
		}
	}
	return nil
}

// saveRecord writes the record into dir, readable by the owner only.
func saveRecord(dir string, r *Record) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the cluster record: %w", err)
	}
	return atomicfile.Write(filepath.Join(dir, RecordFile), append(data, '\n'), 0o600)
}

// errNoRecord is returned (wrapped) by loadRecord when dir has no record.
var errNoRecord = errors.New("no cluster record")

// loadRecord reads the record in dir.
func loadRecord(dir string) (*Record, error) {
	p := filepath.Join(dir, RecordFile)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", errNoRecord, p)
	}
	if err != nil {
		return nil, fmt.Errorf("read the cluster record: %w", err)
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("read the cluster record %s: %w", p, err)
	}
	return &r, nil
}
