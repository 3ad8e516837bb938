package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/plinthos/plinth/internal/provision"
)

// PreviousSuffix names the stopped container a replacement keeps until it is committed or
// reverted: NODE-previous.
const PreviousSuffix = "-previous"

// stopTimeout is how long `docker stop` lets machined shut the node down (stop its
// services, leave the containers) before Docker kills it.
const stopTimeout = 90

// replaceJSON is the part of `docker container inspect` a replacement reads.
type replaceJSON struct {
	Name   string `json:"Name"`
	Config struct {
		Image  string            `json:"Image"`
		Labels map[string]string `json:"Labels"`
		Cmd    []string          `json:"Cmd"`
	} `json:"Config"`
	HostConfig struct {
		NanoCPUs     int64                    `json:"NanoCpus"`
		Memory       int64                    `json:"Memory"`
		PortBindings map[string][]portBinding `json:"PortBindings"`
	} `json:"HostConfig"`
	NetworkSettings struct {
		Networks map[string]struct {
			IPAddress  string `json:"IPAddress"`
			IPAMConfig *struct {
				IPv4Address string `json:"IPv4Address"`
			} `json:"IPAMConfig"`
		} `json:"Networks"`
	} `json:"NetworkSettings"`
}

// Replacement is a node container replaced by one of another image. The old container is
// kept, stopped, as NODE-previous until Commit removes it or Revert brings it back.
type Replacement struct {
	p *Provisioner
	// Node is the container's (and the node's) name; Role its role.
	Node, Role string
	// OldImage and NewImage are the images before and after.
	OldImage, NewImage string
}

// Previous is the name of the kept container.
func (r *Replacement) Previous() string { return r.Node + PreviousSuffix }

// Replace stops the node container named node, keeps it as NODE-previous, and starts a
// container of image in its place with the same volume (/var: the node's state, etcd's
// data, containerd's images), address, published ports, limits, machined arguments and
// seed configuration. beforeStop, when set, runs once the node is known (its role given)
// and before it is stopped; its error stops the replacement. A failure on the way brings
// the old container back.
func (p *Provisioner) Replace(ctx context.Context, node, image string, say func(string, ...any), beforeStop func(role string) error) (*Replacement, error) {
	out, err := p.run(ctx, "container", "inspect", node)
	if err != nil {
		if isNoSuch(err) {
			return nil, fmt.Errorf("no container %s: is this node part of a local Docker cluster on this host?", node)
		}
		return nil, err
	}
	var cs []replaceJSON
	if err := json.Unmarshal(out, &cs); err != nil || len(cs) != 1 {
		return nil, fmt.Errorf("inspect %s: %v", node, err)
	}
	c := cs[0]
	cluster, role := c.Config.Labels[LabelCluster], c.Config.Labels[LabelRole]
	if cluster == "" || (role != provision.RoleControlPlane && role != provision.RoleWorker) {
		return nil, fmt.Errorf("container %s is not a node of a Plinth cluster (labels %s=%q, %s=%q)", node, LabelCluster, cluster, LabelRole, role)
	}
	network := NetworkName(cluster)
	ep, ok := c.NetworkSettings.Networks[network]
	if !ok {
		return nil, fmt.Errorf("container %s is not on its cluster's network %s", node, network)
	}
	ip := ep.IPAddress
	if ep.IPAMConfig != nil && ep.IPAMConfig.IPv4Address != "" {
		ip = ep.IPAMConfig.IPv4Address
	}
	r := &Replacement{p: p, Node: node, Role: role, OldImage: c.Config.Image, NewImage: image}
	if _, err := p.run(ctx, "image", "inspect", "--format", "{{.Id}}", image); err != nil {
		if isNoSuch(err) {
			return nil, fmt.Errorf("no image %s in the local Docker engine: build it (make image-docker) or load it first", image)
		}
		return nil, err
	}
	if _, err := p.run(ctx, "container", "inspect", "--format", "{{.Id}}", r.Previous()); err == nil {
		return nil, fmt.Errorf("container %s is there already: an earlier replacement of %s did not finish; remove it (docker rm %s) if %s runs as it should", r.Previous(), node, r.Previous(), node)
	} else if !isNoSuch(err) {
		return nil, err
	}
	caps, err := p.caps()
	if err != nil {
		return nil, err
	}
	cfg, err := p.seedConfig(ctx, node)
	if err != nil {
		return nil, err
	}
	nc := NodeContainer{
		Cluster: cluster, Node: provision.NodeSpec{Name: node, Role: role, IP: ip}, Image: image, Network: network,
		Volume: VolumeName(node), Config: cfg, Caps: caps, CPUs: float64(c.HostConfig.NanoCPUs) / 1e9,
		MemoryMB: int(c.HostConfig.Memory >> 20), Args: c.Config.Cmd,
	}
	if nc.APIHostPort = hostPort(c.HostConfig.PortBindings, APIPort); nc.APIHostPort != 0 {
		nc.PublishAPI = true
	}
	if nc.KubeHostPort = hostPort(c.HostConfig.PortBindings, KubePort); nc.KubeHostPort != 0 {
		nc.PublishKube = true
	}
	cmds, err := NodeCommands(nc)
	if err != nil {
		return nil, err
	}

	if beforeStop != nil {
		if err := beforeStop(role); err != nil {
			return nil, err
		}
	}
	say("stopping %s (%s)", node, r.OldImage)
	if _, err := p.run(ctx, "stop", "--time", fmt.Sprint(stopTimeout), node); err != nil {
		return nil, err
	}
	if _, err := p.run(ctx, "rename", node, r.Previous()); err != nil {
		return nil, errors.Join(err, r.restart(ctx))
	}
	say("starting %s from %s (volume %s kept)", node, image, nc.Volume)
	for _, cmd := range cmds {
		if _, err := p.runner().Run(ctx, cmd); err != nil {
			err = fmt.Errorf("start %s from %s: %w", node, image, err)
			if rerr := r.Revert(ctx); rerr != nil {
				return nil, fmt.Errorf("%w; bringing the old container back failed too: %v", err, rerr)
			}
			return nil, fmt.Errorf("%w (the old container runs again)", err)
		}
	}
	return r, nil
}

// Commit removes the kept old container: the replacement stays.
func (r *Replacement) Commit(ctx context.Context) error {
	if _, err := r.p.run(ctx, "rm", r.Previous()); err != nil && !isNoSuch(err) {
		return fmt.Errorf("remove %s: %w", r.Previous(), err)
	}
	return nil
}

// Revert removes the new container and starts the old one again under the node's name,
// with the same volume.
func (r *Replacement) Revert(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
	defer cancel()
	if _, err := r.p.run(ctx, "rm", "--force", r.Node); err != nil && !isNoSuch(err) {
		return fmt.Errorf("remove the new %s: %w", r.Node, err)
	}
	if _, err := r.p.run(ctx, "rename", r.Previous(), r.Node); err != nil {
		return fmt.Errorf("rename %s back to %s: %w", r.Previous(), r.Node, err)
	}
	return r.restart(ctx)
}

func (r *Replacement) restart(ctx context.Context) error {
	if _, err := r.p.run(ctx, "start", r.Node); err != nil {
		return fmt.Errorf("start %s again: %w", r.Node, err)
	}
	return nil
}

func (p *Provisioner) caps() (CapSet, error) {
	if p.Caps != nil {
		return p.Caps()
	}
	return HostCaps()
}

// seedConfig reads the machine configuration the provisioner copied into the container.
func (p *Provisioner) seedConfig(ctx context.Context, node string) ([]byte, error) {
	out, err := p.run(ctx, "cp", node+":"+ConfigPath, "-")
	if err != nil {
		return nil, fmt.Errorf("read the configuration of %s: %w", node, err)
	}
	tr := tar.NewReader(bytes.NewReader(out))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read the configuration of %s: %s is not in the archive docker cp gave", node, ConfigPath)
		}
		if err != nil {
			return nil, fmt.Errorf("read the configuration of %s: %w", node, err)
		}
		if h.Typeflag == tar.TypeReg && strings.HasSuffix(ConfigPath, "/"+h.Name) {
			return io.ReadAll(tr)
		}
	}
}
