package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/plinthos/plinth/internal/provision"
)

// containerJSON is the part of `docker container inspect` that Show reads.
type containerJSON struct {
	ID    string `json:"Id"`
	Name  string `json:"Name"`
	State struct {
		Status string `json:"Status"`
	} `json:"State"`
	Config struct {
		Labels map[string]string `json:"Labels"`
	} `json:"Config"`
	NetworkSettings struct {
		Ports    map[string][]portBinding `json:"Ports"`
		Networks map[string]struct {
			IPAddress  string `json:"IPAddress"`
			IPAMConfig *struct {
				IPv4Address string `json:"IPv4Address"`
			} `json:"IPAMConfig"`
		} `json:"Networks"`
	} `json:"NetworkSettings"`
}

type portBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

// networkJSON is the part of `docker network inspect` that Show and Create read.
type networkJSON struct {
	Name string `json:"Name"`
	// Internal is set for a network with no route off the machine (--internal).
	Internal bool `json:"Internal"`
	IPAM     struct {
		Config []struct {
			Subnet string `json:"Subnet"`
		} `json:"Config"`
	} `json:"IPAM"`
}

// parseJSONLines decodes one JSON value per line, as `--format '{{json .}}'` prints them.
func parseJSONLines[T any](out []byte) ([]T, error) {
	var items []T
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var v T
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("parse docker output: %w", err)
		}
		items = append(items, v)
	}
	return items, nil
}

// nodeFromContainer turns an inspected container into a node of the cluster's network.
func nodeFromContainer(c containerJSON, network string) Node {
	n := Node{
		Name:      strings.TrimPrefix(c.Name, "/"),
		Role:      c.Config.Labels[LabelRole],
		State:     c.State.Status,
		Container: c.ID,
	}
	if len(n.Container) > 12 {
		n.Container = n.Container[:12]
	}
	if node := c.Config.Labels[LabelNode]; node != "" {
		n.Name = node
	}
	if ep, ok := c.NetworkSettings.Networks[network]; ok {
		// The static address is kept while the container is stopped; IPAddress is not.
		if ep.IPAMConfig != nil && ep.IPAMConfig.IPv4Address != "" {
			n.IP = ep.IPAMConfig.IPv4Address
		} else {
			n.IP = ep.IPAddress
		}
	}
	n.APIPort = hostPort(c.NetworkSettings.Ports, APIPort)
	n.KubePort = hostPort(c.NetworkSettings.Ports, KubePort)
	return n
}

// hostPort returns the 127.0.0.1 host port published for a container port, or 0.
func hostPort(ports map[string][]portBinding, port int) int {
	for _, b := range ports[strconv.Itoa(port)+"/tcp"] {
		if b.HostIP != "127.0.0.1" {
			continue
		}
		if p, err := strconv.Atoi(b.HostPort); err == nil {
			return p
		}
	}
	return 0
}

// reachDirectly points the host at the nodes' own addresses and ports: an isolated
// network publishes nothing on 127.0.0.1, but the host is on it (the bridge's gateway).
// Every control plane serves the node API and the Kubernetes API; the load balancer, when
// there is one, the Kubernetes API.
func reachDirectly(c *Cluster) {
	for i := range c.Nodes {
		n := &c.Nodes[i]
		if n.IP == "" || n.Role != provision.RoleControlPlane {
			continue
		}
		n.Host, n.APIPort = n.IP, APIPort
		if c.LoadBalancer == nil {
			n.KubePort = KubePort
		}
	}
	if lb := c.LoadBalancer; lb != nil && lb.IP != "" {
		lb.Host, lb.KubePort = lb.IP, KubePort
	}
}

// Show implements provision.Provisioner.
func (p *Provisioner) Show(ctx context.Context, name string) (*Cluster, error) {
	if err := provision.ValidateName(name); err != nil {
		return nil, err
	}
	if err := p.ping(ctx); err != nil {
		return nil, err
	}
	c := &Cluster{Name: name, Network: NetworkName(name)}
	found := false
	out, err := p.run(ctx, "network", "ls", "--filter", "label="+LabelCluster+"="+name, "--format", "{{.Name}}")
	if err != nil {
		return nil, err
	}
	if nets := lines(out); len(nets) > 0 {
		found = true
		c.Network = nets[0]
		out, err := p.run(ctx, "network", "inspect", "--format", "{{json .}}", c.Network)
		if err != nil {
			return nil, err
		}
		nj, err := parseJSONLines[networkJSON](out)
		if err != nil {
			return nil, err
		}
		if len(nj) > 0 && len(nj[0].IPAM.Config) > 0 {
			c.CIDR = nj[0].IPAM.Config[0].Subnet
		}
		c.Isolated = len(nj) > 0 && nj[0].Internal
	}
	out, err = p.run(ctx, "ps", "--all", "--quiet", "--no-trunc", "--filter", "label="+LabelCluster+"="+name)
	if err != nil {
		return nil, err
	}
	if ids := lines(out); len(ids) > 0 {
		found = true
		out, err := p.run(ctx, append([]string{"container", "inspect", "--format", "{{json .}}"}, ids...)...)
		if err != nil {
			return nil, err
		}
		cj, err := parseJSONLines[containerJSON](out)
		if err != nil {
			return nil, err
		}
		for _, x := range cj {
			n := nodeFromContainer(x, c.Network)
			if n.Role == provision.RoleLoadBalancer && c.LoadBalancer == nil {
				c.LoadBalancer = &n
				continue
			}
			c.Nodes = append(c.Nodes, n)
		}
		slices.SortFunc(c.Nodes, provision.SortKey)
	}
	if c.Isolated {
		reachDirectly(c)
	}
	if !found {
		return nil, provision.NotFound("no cluster named %q in Docker (list them with `plinthctl cluster list`)", name)
	}
	return c, nil
}
