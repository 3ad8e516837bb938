package docker

import (
	"encoding/base64"
	"net"
	"strconv"

	"github.com/plinthos/plinth/internal/provision"
)

// Labels put on everything a cluster owns; Show, List and Destroy find it by them.
const (
	LabelCluster = "plinth.cluster"
	LabelRole    = "plinth.role"
	LabelNode    = "plinth.node"
)

// Ports inside a node container. The load balancer listens on KubePort too.
const (
	APIPort  = 50000
	KubePort = 6443
)

// TrustdPort is where control planes serve trustd, which issues workers' node API
// certificates.
const TrustdPort = 50001

// MachinedPath is machined's path in the node image; the load balancer container runs it
// as its entrypoint.
const MachinedPath = "/usr/bin/machined"

// nobody is the user and group the load balancer runs as.
const nobody = "65534:65534"

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
	// PublishAPI and PublishKube publish the node API and the Kubernetes API on 127.0.0.1,
	// on APIHostPort and KubeHostPort, or on ports Docker picks when they are zero (Docker
	// picks again at every start of the container, so Create chooses them itself).
	PublishAPI, PublishKube   bool
	APIHostPort, KubeHostPort int
	// Args are machined flags, after the image's entrypoint (machined --mode container).
	Args []string
}

// publish is the --publish value of a container port on 127.0.0.1.
func publish(hostPort, port int) string {
	host := ""
	if hostPort != 0 {
		host = strconv.Itoa(hostPort)
	}
	return "127.0.0.1:" + host + ":" + strconv.Itoa(port)
}

// runIdentity starts the `docker run` of a cluster's container n: its name and host
// name, its address on the cluster network, and the labels show and destroy find it by.
func runIdentity(cluster, network string, n provision.NodeSpec) []string {
	return []string{
		"run", "--detach",
		"--name", n.Name,
		"--hostname", n.Name,
		"--network", network,
		"--ip", n.IP,
		"--label", LabelCluster + "=" + cluster,
		"--label", LabelRole + "=" + n.Role,
		"--label", LabelNode + "=" + n.Name,
	}
}

// RunCommand builds the `docker run` of a node. The configuration travels in the CLI's
// environment (`--env NAME` without a value copies it from there) so that it never shows in
// the host's process list.
func RunCommand(c NodeContainer) Command {
	args := append(runIdentity(c.Cluster, c.Network, c.Node),
		"--env", ConfigEnv,
		"--volume", c.Volume+":/var",
		"--volume", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
	)
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
	if c.PublishAPI {
		args = append(args, "--publish", publish(c.APIHostPort, APIPort))
	}
	if c.PublishKube {
		args = append(args, "--publish", publish(c.KubeHostPort, KubePort))
	}
	args = append(args, c.Image)
	args = append(args, c.Args...)
	return Command{
		Args: args,
		Env:  []string{ConfigEnv + "=" + base64.StdEncoding.EncodeToString(c.Config)},
	}
}

// LoadBalancerContainer is everything that decides the `docker run` of a cluster's load
// balancer: `machined loadbalancer` from the node image, in front of the control planes'
// Kubernetes API.
type LoadBalancerContainer struct {
	Cluster string
	// LB names the container and gives its address (Plan.LoadBalancer).
	LB      provision.NodeSpec
	Image   string
	Network string
	// ControlPlanes are the control planes' addresses; the load balancer proxies to port
	// KubePort of each.
	ControlPlanes []string
	// KubeHostPort is the port of 127.0.0.1 published for KubePort; zero lets Docker pick.
	KubeHostPort int
}

// LoadBalancerRunCommand builds the `docker run` of a load balancer. It needs nothing of
// the host: every capability is dropped, it runs as nobody on a read-only root, without
// volumes.
func LoadBalancerRunCommand(c LoadBalancerContainer) Command {
	args := append(runIdentity(c.Cluster, c.Network, c.LB),
		"--cap-drop=ALL",
		"--security-opt", "no-new-privileges",
		"--user", nobody,
		"--read-only",
		// The image declares /var a volume; an empty tmpfs there keeps Docker from making
		// an anonymous volume for a container that writes nothing.
		"--tmpfs", "/var",
		"--restart", "on-failure",
		"--publish", publish(c.KubeHostPort, KubePort),
		"--entrypoint", MachinedPath,
		c.Image,
		"loadbalancer", "--listen", ":"+strconv.Itoa(KubePort),
		// An API server gets traffic once it is ready, not as soon as it listens.
		"--health-https-path", "/readyz",
	)
	for _, ip := range c.ControlPlanes {
		args = append(args, "--upstream", net.JoinHostPort(ip, strconv.Itoa(KubePort)))
	}
	return Command{Args: args}
}
