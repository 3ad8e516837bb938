package docker

import (
	"archive/tar"
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"

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

// ConfigPath is where a node container finds its machine configuration at its first boot
// (machined's default --config in docker mode). The provisioner copies the file into
// the created container before starting it: the configuration holds the cluster's keys, so
// it never travels in the container's environment, its command line or anything else that
// `docker inspect` shows.
const ConfigPath = "/etc/plinth/config.yaml"

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
	// Args are machined flags, after the image's entrypoint (machined --mode docker).
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

// runIdentity starts the `docker run` or `docker create` (verb) of a cluster's container n: its name and host
// name, its address on the cluster network, and the labels show and destroy find it by.
func runIdentity(verb, cluster, network string, n provision.NodeSpec) []string {
	args := []string{verb}
	if verb == "run" {
		args = append(args, "--detach")
	}
	return append(args,
		"--name", n.Name,
		"--hostname", n.Name,
		"--network", network,
		"--ip", n.IP,
		"--label", LabelCluster+"="+cluster,
		"--label", LabelRole+"="+n.Role,
		"--label", LabelNode+"="+n.Name,
	)
}

// NodeCommands builds the docker commands that start a node: `docker create`, then
// `docker cp` of the configuration into the container (read from stdin as a tar archive,
// so it touches no file of the host), then `docker start`.
func NodeCommands(c NodeContainer) ([]Command, error) {
	archive, err := configArchive(c.Config)
	if err != nil {
		return nil, err
	}
	return []Command{
		CreateCommand(c),
		{Args: []string{"cp", "-", c.Node.Name + ":/"}, Stdin: archive},
		{Args: []string{"start", c.Node.Name}},
	}, nil
}

// configArchive is a tar archive holding the configuration at ConfigPath, readable by
// root only.
func configArchive(cfg []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := ConfigPath[1:strings.LastIndex(ConfigPath, "/")]
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o700}); err != nil {
		return nil, fmt.Errorf("configuration archive: %w", err)
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: ConfigPath[1:], Mode: 0o600, Size: int64(len(cfg))}); err != nil {
		return nil, fmt.Errorf("configuration archive: %w", err)
	}
	if _, err := tw.Write(cfg); err != nil {
		return nil, fmt.Errorf("configuration archive: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("configuration archive: %w", err)
	}
	return buf.Bytes(), nil
}

// CreateCommand builds the `docker create` of a node. It carries no environment: the
// configuration is copied in by NodeCommands.
func CreateCommand(c NodeContainer) Command {
	args := append(runIdentity("create", c.Cluster, c.Network, c.Node),
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
	return Command{Args: args}
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
	// Unpublished publishes nothing: on an isolated network the host reaches the load
	// balancer at its address.
	Unpublished bool
}

// LoadBalancerRunCommand builds the `docker run` of a load balancer. It needs nothing of
// the host: every capability is dropped, it runs as nobody on a read-only root, without
// volumes.
func LoadBalancerRunCommand(c LoadBalancerContainer) Command {
	args := append(runIdentity("run", c.Cluster, c.Network, c.LB),
		"--cap-drop=ALL",
		"--security-opt", "no-new-privileges",
		"--user", nobody,
		"--read-only",
		// The image declares /var a volume; an empty tmpfs there keeps Docker from making
		// an anonymous volume for a container that writes nothing.
		"--tmpfs", "/var",
		"--restart", "on-failure",
	)
	if !c.Unpublished {
		args = append(args, "--publish", publish(c.KubeHostPort, KubePort))
	}
	args = append(args,
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
