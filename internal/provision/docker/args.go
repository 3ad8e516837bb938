package docker

import (
	"encoding/base64"
	"strconv"

	"github.com/plinthos/plinth/internal/provision"
)

// Labels put on everything a cluster owns; Show, List and Destroy find it by them.
const (
	LabelCluster = "plinth.cluster"
	LabelRole    = "plinth.role"
	LabelNode    = "plinth.node"
)

// Ports inside a node container.
const (
	APIPort  = 50000
	KubePort = 6443
)

// ConfigEnv carries the machine configuration (base64) into a node container.
const ConfigEnv = "PLINTH_CONFIG"

// NetworkName is the Docker network of a cluster.
func NetworkName(cluster string) string { return "plinth-" + cluster }

// VolumeName is the volume that holds a node's /var.
func VolumeName(node string) string { return node + "-var" }

// NodeContainer is everything that decides the `docker run` of one node.
type NodeContainer struct {
	Cluster string
	Node    provision.NodeSpec
	Image   string
	Network string
	Volume  string
	// Config is the machine configuration (YAML).
	Config []byte
	// Caps is the host's capability set.
	Caps CapSet
	// CPUs and MemoryMB limit the container; zero means no limit.
	CPUs     float64
	MemoryMB int
	// Publish publishes the node API and Kubernetes API on 127.0.0.1, on APIHostPort and
	// KubeHostPort, or on ports Docker picks when they are zero (Docker picks again at every
	// start of the container, so Create chooses them itself).
	Publish                   bool
	APIHostPort, KubeHostPort int
}

// publish is the --publish value of a container port on 127.0.0.1.
func publish(hostPort, port int) string {
	host := ""
	if hostPort != 0 {
		host = strconv.Itoa(hostPort)
	}
	return "127.0.0.1:" + host + ":" + strconv.Itoa(port)
}

// RunCommand builds the `docker run` of a node. The configuration travels in the CLI's
// environment (`--env NAME` without a value copies it from there) so that it never shows in
// the host's process list.
func RunCommand(c NodeContainer) Command {
	args := []string{
		"run", "--detach",
		"--name", c.Node.Name,
		"--hostname", c.Node.Name,
		"--network", c.Network,
		"--ip", c.Node.IP,
		"--label", LabelCluster + "=" + c.Cluster,
		"--label", LabelRole + "=" + c.Node.Role,
		"--label", LabelNode + "=" + c.Node.Name,
		"--env", ConfigEnv,
		"--volume", c.Volume + ":/var",
		"--volume", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
	}
	args = append(args, c.Caps.Flags()...)
	args = append(args,
		"--security-opt", "seccomp=unconfined",
		"--security-opt", "apparmor=unconfined",
		"--security-opt", "systempaths=unconfined",
		"--device-cgroup-rule", "a *:* rwm",
		// machined is PID 1: no init in front of it; reboot is exit 81, restarted by this
		// policy, while shutdown is exit 0 and leaves the container stopped.
		"--init=false",
		"--restart", "on-failure",
	)
	if c.CPUs > 0 {
		args = append(args, "--cpus", strconv.FormatFloat(c.CPUs, 'f', -1, 64))
	}
	if c.MemoryMB > 0 {
		args = append(args, "--memory", strconv.Itoa(c.MemoryMB)+"m")
	}
	if c.Publish {
		args = append(args,
			"--publish", publish(c.APIHostPort, APIPort),
			"--publish", publish(c.KubeHostPort, KubePort),
		)
	}
	args = append(args, c.Image)
	return Command{
		Args: args,
		Env:  []string{ConfigEnv + "=" + base64.StdEncoding.EncodeToString(c.Config)},
	}
}
