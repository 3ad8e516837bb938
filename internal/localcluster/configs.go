package localcluster

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/plinthos/plinth/internal/configgen"
	"github.com/plinthos/plinth/internal/ports"
	"github.com/plinthos/plinth/internal/provision"
	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/config/patch"
	"github.com/plinthos/plinth/pkg/secrets"
)

// configs are a new cluster's generated secrets and configurations.
type configs struct {
	bundle       *secrets.Bundle
	endpoint     string
	controlPlane []byte
	worker       []byte
}

// generateConfigs builds the cluster's secrets and machine configurations: the endpoint
// is the load balancer's address, or the first control plane's when there is no load
// balancer (one control plane); 127.0.0.1 is added to the certificates (the published
// ports are reached there), patches are applied and the results validated for mode, the
// provisioner's platform.
func generateConfigs(opts CreateOptions, plan *provision.Plan, mode config.Mode, now time.Time) (*configs, error) {
	bundle, err := secrets.Generate(now)
	if err != nil {
		return nil, fmt.Errorf("generate the secrets bundle: %w", err)
	}
	endpointHost := plan.Nodes[0].IP
	if plan.LoadBalancer != nil {
		endpointHost = plan.LoadBalancer.IP
	}
	endpoint := ports.KubeAPIURL(endpointHost)
	generated, err := configgen.Generate(bundle, configgen.Options{
		ClusterName:       opts.Name,
		Endpoint:          endpoint,
		KubernetesVersion: opts.KubernetesVersion,
		AdditionalSANs:    []string{"127.0.0.1"},
	})
	if err != nil {
		return nil, err
	}
	if opts.Workers == 0 {
		// With no worker, workloads (CoreDNS among them) must run on the control planes;
		// a patch may still say otherwise.
		generated.ControlPlane.Cluster.AllowSchedulingOnControlPlanes = true
		generated.Worker.Cluster.AllowSchedulingOnControlPlanes = true
	}
	if opts.Isolated && mode == config.ModeDocker {
		// A Docker internal network drops pod traffic between nodes routed by host-gw (it
		// has pod addresses, not the nodes'); vxlan carries it between the nodes' addresses.
		// A patch may still say otherwise. QEMU networks pass it as it is.
		for _, c := range []*config.MachineConfig{generated.ControlPlane, generated.Worker} {
			c.Cluster.Network.CNI.Backend = config.FlannelVXLAN
		}
	}
	out := &configs{bundle: bundle, endpoint: endpoint}
	for _, m := range []struct {
		file    string
		cfg     *config.MachineConfig
		patches []patch.Patch
		data    *[]byte
	}{
		{StateControlPlane, generated.ControlPlane, append(slices.Clone(opts.Patches), opts.ControlPlanePatches...), &out.controlPlane},
		{StateWorker, generated.Worker, append(slices.Clone(opts.Patches), opts.WorkerPatches...), &out.worker},
	} {
		cfg, err := config.ApplyPatches(m.cfg, m.patches, m.file)
		if err != nil {
			return nil, err
		}
		if ps := config.Validate(cfg, mode); len(ps) > 0 {
			return nil, fmt.Errorf("the generated %s is not valid for %s (check the flags and patches):\n%w", m.file, platformName(mode), ps)
		}
		if *m.data, err = config.Marshal(cfg, true); err != nil {
			return nil, fmt.Errorf("encode %s: %w", m.file, err)
		}
	}
	return out, nil
}

// platformName is a validation mode as a sentence names it: Docker, Metal, Cloud.
func platformName(mode config.Mode) string {
	s := string(mode)
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
