package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/internal/healthgate"
	k8sdrain "github.com/plinthos/plinth/internal/k8s/drain"
	"github.com/plinthos/plinth/internal/k8s/kubeclient"
	"github.com/plinthos/plinth/internal/provision/docker"
	"github.com/plinthos/plinth/internal/resources"
	"github.com/plinthos/plinth/pkg/api/machine"
	rpb "github.com/plinthos/plinth/pkg/api/resource"
	"github.com/plinthos/plinth/pkg/client"
)

// upgradeChunk is the size of the artifact's chunks on the wire (under gRPC's 4 MiB
// message limit).
const upgradeChunk = 1 << 20

func newUpgradeCommand(g *globalFlags) *cobra.Command {
	var (
		image        string
		stage, drain bool
		drainTimeout time.Duration
		wf           waitFlags
	)
	cmd := &cobra.Command{
		Use:   "upgrade --image FILE",
		Short: "Upgrade the nodes' OS: write a new version into the other slot and boot it on trial",
		Long: `Upgrade sends an OS upgrade artifact (upgrade.tar of make image-os, or of make image-os-k8s for
nodes that run Kubernetes) to each node, one node at a time. The node checks each file's
digest while it writes the slot it is not running, reads the root filesystem back from the
disk, arms a one-shot trial boot of that slot and reboots into it. The trial boot becomes the
default only once every service is running and healthy (its health gate); a trial whose kernel
panics, whose init or machined fails, or that fails the gate comes back on the old slot by
itself, and the node records why (plinthctl get upgradestatus). A hang is not caught yet (no
watchdog): power-cycle the machine and it boots the old slot.

With --stage the node only writes and arms: the trial is its next reboot. With --wait, the
command follows each node until the upgrade is committed or rolled back, and fails if it was
rolled back; the next node is upgraded only once the one before is committed. Without --wait
the nodes are sent the artifact one after the other and reboot independently. Only machines
installed to a disk (metal: VMs, bare metal) have slots.

A node of a local Docker cluster (plinthctl cluster create) has no slots: --image names a node
image (plinth/node:TAG) and plinthctl, on the Docker host, replaces the node's container with
one of that image, keeping its volume (/var: identity, etcd's data, images), address, ports
and configuration. A control plane first hands its etcd leadership on. The new container must
answer and have every service running and healthy, and its etcd member (on a control plane)
voting with a leader, for 10 s within --timeout; otherwise it is removed and the old
container starts again. Docker nodes are always upgraded one at a time
and waited for.`,
		Example: `  plinthctl upgrade --image _out/os/upgrade.tar --wait
  plinthctl -n 10.6.0.3 upgrade --image upgrade.tar --stage
  plinthctl -n 10.5.0.2,10.5.0.3 upgrade --image plinth/node:v0.2.0     # Docker nodes
  plinthctl get upgradestatus`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if image == "" {
				return errors.New("--image is required: the upgrade artifact (make image-os writes _out/os/upgrade.tar), or for Docker nodes a node image (plinth/node:TAG)")
			}
			var drainer *drainer
			return inTurn(g, cmd, func(ctx context.Context, s *session, node string, w io.Writer) (err error) {
				vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				v, err := s.client.Machine.Version(vctx, &machine.VersionRequest{})
				cancel()
				if err != nil {
					return client.Describe(err)
				}
				if v.Platform == "docker" && stage {
					return errors.New("--stage is for machines with A/B slots: a Docker node's container is replaced at once")
				}
				if v.Platform != "docker" {
					if st, err := os.Stat(image); err != nil || st.IsDir() {
						return fmt.Errorf("--image %s: not an upgrade artifact file (make image-os writes _out/os/upgrade.tar): %v", image, err)
					}
				}
				kube, err := runsKubelet(ctx, s)
				if err != nil {
					return err
				}
				// rebooting is set once a metal node reboots into its trial: from then on,
				// only --wait knows when it is back.
				rebooting := false
				if drain && kube && !stage {
					if drainer == nil {
						drainer = newDrainer(cmd.Context(), s)
					}
					kubeNode, _, _ := strings.Cut(v.Hostname, ".")
					drained, err := drainer.drain(ctx, kubeNode, drainTimeout, w)
					if err != nil {
						return fmt.Errorf("%w (upgrade without draining with --drain=false)", err)
					}
					if drained {
						// The node comes back on one version or the other: uncordon it then.
						// Without --wait on metal nothing waits for that.
						defer func() {
							if rebooting && !wf.wait {
								fmt.Fprintf(w, "%s: the node stays cordoned: uncordon it once it is back (kubectl uncordon %s)\n", node, kubeNode)
								return
							}
							if uerr := drainer.uncordon(context.WithoutCancel(ctx), kubeNode, w); uerr != nil && err == nil {
								err = uerr
							}
						}()
					}
				}
				if v.Platform == "docker" {
					return upgradeContainer(ctx, s, node, v, image, wf.timeout, w)
				}
				before := v.BootId
				if !stage {
					forfeitLeadership(ctx, s, w, node)
				}
				resp, err := sendArtifact(ctx, s, image, stage, w)
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "%s: %s written to slot %s (running %s from slot %s), armed for one trial boot (actor %s)\n",
					node, resp.Version, resp.Slot, resp.FromVersion, resp.FromSlot, resp.ActorId)
				if !resp.Rebooting {
					fmt.Fprintf(w, "%s: staged: the trial is the node's next reboot (plinthctl reboot)\n", node)
					return nil
				}
				fmt.Fprintf(w, "%s: rebooting into the trial\n", node)
				rebooting = true
				if !wf.wait {
					return nil
				}
				if err := waitBoot(ctx, s, w, before, wf.timeout); err != nil {
					return err
				}
				return waitUpgradeOutcome(ctx, s, w, resp.Version, wf.timeout)
			})
		},
	}
	cmd.Flags().StringVar(&image, "image", "", "the upgrade artifact to install (upgrade.tar of make image-os); for Docker nodes, the node image (plinth/node:TAG)")
	cmd.Flags().BoolVar(&stage, "stage", false, "write and arm only; the trial is the node's next reboot")
	cmd.Flags().BoolVar(&drain, "drain", true, "cordon and drain a worker node first (its pods evicted, disruption budgets honoured), and uncordon it after; not with --stage")
	cmd.Flags().DurationVar(&drainTimeout, "drain-timeout", 5*time.Minute, "how long a drain waits for the pods to leave")
	wf.add(cmd)
	cmd.Flags().Lookup("timeout").DefValue = "15m0s"
	_ = cmd.Flags().Set("timeout", "15m")
	return cmd
}

// inTurn runs fn on each node of the session one after the other (the endpoint itself when
// no node is named), stopping at the first that fails.
func inTurn(g *globalFlags, cmd *cobra.Command, fn func(ctx context.Context, s *session, node string, w io.Writer) error) error {
	s, err := g.connect()
	if err != nil {
		return err
	}
	defer s.client.Close()
	out := cmd.OutOrStdout()
	if len(s.nodes) == 0 {
		return fn(cmd.Context(), s, s.endpoint, out)
	}
	for i, node := range s.nodes {
		if err := fn(client.WithNode(cmd.Context(), node), s, node, out); err != nil {
			if rest := s.nodes[i+1:]; len(rest) > 0 {
				return fmt.Errorf("node %s: %w (not upgraded: %v)", node, err, rest)
			}
			return fmt.Errorf("node %s: %w", node, err)
		}
	}
	return nil
}

// sendArtifact streams the artifact at path to the node, showing progress.
func sendArtifact(ctx context.Context, s *session, path string, stage bool, w io.Writer) (*machine.UpgradeResponse, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("--image: %w", err)
	}
	stream, err := s.client.Machine.Upgrade(ctx)
	if err != nil {
		return nil, client.Describe(err)
	}
	first := true
	err = sendFile(path, w, func(chunk []byte) error {
		err := stream.Send(&machine.UpgradeRequest{Chunk: chunk, Stage: first && stage})
		first = false
		return err
	})
	if err != nil {
		// The node ended the call: its status says why.
		if _, cerr := stream.CloseAndRecv(); cerr != nil {
			return nil, client.Describe(cerr)
		}
		return nil, err
	}
	fmt.Fprintln(w, "the node verifies and writes it...")
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, client.Describe(err)
	}
	return resp, nil
}

// upgradeStatus reads the node's UpgradeStatus resource.
func upgradeStatus(ctx context.Context, s *session) (resources.UpgradeStatusSpec, error) {
	var spec resources.UpgradeStatusSpec
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := s.client.Resource.Get(ctx, &rpb.GetRequest{Namespace: resources.NamespaceRuntime, Type: resources.UpgradeStatusType, Id: resources.DefaultID})
	if err != nil {
		return spec, err
	}
	if err := yaml.Unmarshal(resp.GetResource().GetSpec(), &spec); err != nil {
		return spec, fmt.Errorf("upgrade status: %w", err)
	}
	return spec, nil
}

// waitUpgradeOutcome follows the node's upgrade status until the upgrade to version is
// committed (nil) or rolled back (an error with the node's reason).
func waitUpgradeOutcome(ctx context.Context, s *session, w io.Writer, version string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fmt.Fprintf(w, "waiting for the trial of %s to be committed or rolled back...\n", version)
	shown := ""
	var last error
	for {
		spec, err := upgradeStatus(ctx, s)
		if err == nil && spec.Last != nil && spec.Last.To == version {
			if spec.Last.State != shown {
				fmt.Fprintf(w, "upgrade to %s: %s\n", version, spec.Last.State)
				shown = spec.Last.State
			}
			switch spec.Last.State {
			case "committed":
				fmt.Fprintf(w, "upgrade to %s committed: slot %s is the default\n", version, spec.Last.Slot)
				return nil
			case "rolled-back":
				return fmt.Errorf("upgrade to %s rolled back: %s", version, spec.Last.Reason)
			}
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("no outcome within %s: %v", timeout, client.Describe(last))
			}
			return fmt.Errorf("no outcome within %s (last state: %s)", timeout, shown)
		case <-time.After(time.Second):
		}
	}
}

func newRollbackCommand(g *globalFlags) *cobra.Command {
	var wf waitFlags
	cmd := &cobra.Command{
		Use:   "rollback",
		Short: "Boot the nodes' other OS slot: the version before the last upgrade",
		Long: `Rollback makes the slot the node is not running the default and reboots into it: after an
upgrade that was committed, that is the version before it. It is refused when the other slot
holds nothing (the node was never upgraded).`,
		Example: `  plinthctl rollback --wait
  plinthctl get upgradestatus`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.onNodes(cmd, true, func(ctx context.Context, s *session, node string, w io.Writer) error {
				before, err := bootIDIf(ctx, s, wf.wait)
				if err != nil {
					return err
				}
				resp, err := s.client.Machine.Rollback(ctx, &machine.RollbackRequest{})
				if err != nil {
					return client.Describe(err)
				}
				fmt.Fprintf(w, "%s: rolling back to %s (slot %s); rebooting (actor %s)\n", node, resp.Version, resp.Slot, resp.ActorId)
				if wf.wait {
					return waitBoot(ctx, s, w, before, wf.timeout)
				}
				return nil
			})
		},
	}
	wf.add(cmd)
	return cmd
}

// settleHealthy is how long a replaced Docker node's services must stay healthy.
const settleHealthy = 10 * time.Second

// upgradeContainer replaces the container of a Docker node with one of image (see
// docker.Provisioner.Replace), waits for it to boot and its services to be healthy, and
// removes the old container; or brings the old one back when the new one does not come up.
func upgradeContainer(ctx context.Context, s *session, node string, v *machine.VersionResponse, image string, timeout time.Duration, w io.Writer) error {
	if st, err := os.Stat(image); err == nil && !st.IsDir() {
		return fmt.Errorf("node %s is a Docker container: --image names a node image (plinth/node:TAG), not an artifact file", node)
	}
	container, _, _ := strings.Cut(v.Hostname, ".") // the container is named as the node's host
	say := func(format string, a ...any) { fmt.Fprintf(w, node+": "+format+"\n", a...) }
	r, err := docker.New().Replace(ctx, container, image, say, func(string) error {
		forfeitLeadership(ctx, s, w, node)
		return nil
	})
	if err != nil {
		return err
	}
	err = waitBoot(ctx, s, w, v.BootId, timeout)
	if err == nil {
		err = waitHealthy(ctx, s, w, timeout)
	}
	if err != nil {
		say("the new container did not come up: %v; bringing %s back", err, r.OldImage)
		if rerr := r.Revert(ctx); rerr != nil {
			return fmt.Errorf("upgrade to %s failed (%v) and the old container did not come back: %w", image, err, rerr)
		}
		return fmt.Errorf("upgrade to %s rolled back: %w", image, err)
	}
	if err := r.Commit(ctx); err != nil {
		return err
	}
	say("upgraded: %s runs %s (was %s)", container, image, r.OldImage)
	return nil
}

// waitHealthy waits until the node's services are all running (or finished) and none is
// unhealthy for settleHealthy in a row.
func waitHealthy(ctx context.Context, s *session, w io.Writer, timeout time.Duration) error {
	fmt.Fprintln(w, "waiting for every service to be running and healthy...")
	err := healthgate.Wait(ctx, timeout, settleHealthy, func(ctx context.Context) []string {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := s.client.Machine.ServiceList(lctx, &machine.ServiceListRequest{})
		cancel()
		if err != nil {
			return []string{client.Describe(err).Error()}
		}
		var bad []string
		for _, st := range resp.GetServices() {
			if why := healthgate.Service(st.Id, st.State, st.Health); why != "" {
				bad = append(bad, why)
			}
		}
		if len(bad) == 0 {
			if why := etcdNotReady(ctx, s); why != "" {
				bad = append(bad, why)
			}
		}
		return bad
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "every service is running and healthy")
	return nil
}

// etcdNotReady says why the node's etcd member is not a voting member that follows a
// leader, or "" when it is or the node runs no etcd.
func etcdNotReady(ctx context.Context, s *session) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := s.client.Machine.EtcdStatus(ctx, &machine.EtcdStatusRequest{})
	switch {
	case status.Code(err) == codes.FailedPrecondition:
		return "" // not a control plane
	case err != nil:
		return "etcd: " + client.Describe(err).Error()
	}
	return healthgate.Etcd(st.Leader, st.IsLearner, st.Errors)
}

// forfeitLeadership asks the node to hand its etcd leadership on before it goes down, so
// that the cluster does not wait out an election timeout. Every node is asked (a worker may
// have been made a control plane since it was created); it is not fatal: a node without
// etcd, or that is not the leader, has nothing to hand on, and if the leader cannot, the
// election after it stops takes over.
func forfeitLeadership(ctx context.Context, s *session, w io.Writer, node string) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := s.client.Machine.EtcdForfeitLeadership(ctx, &machine.EtcdForfeitLeadershipRequest{})
	switch {
	case err == nil:
		fmt.Fprintf(w, "%s: %s\n", node, resp.Message)
	case status.Code(err) != codes.FailedPrecondition:
		fmt.Fprintf(w, "%s: etcd leadership not handed on: %v\n", node, client.Describe(err))
	}
}

// drainer cordons and drains the Kubernetes Node of a worker before its upgrade, through
// an admin kubeconfig from a control plane of the session.
type drainer struct {
	api *kubeclient.Client // nil: the cluster runs no Kubernetes, or no kubeconfig came
	why string             // why there is no api
}

func newDrainer(ctx context.Context, s *session) *drainer {
	_, _, kc, err := controlPlaneKubeconfig(ctx, s)
	if err != nil && len(s.nodes) > 0 {
		// The nodes named may all be workers: the endpoint, a control plane as a rule,
		// gives the kubeconfig then.
		actx, cancel := context.WithTimeout(ctx, nodeAskTimeout)
		resp, kerr := s.client.Machine.Kubeconfig(actx, &machine.KubeconfigRequest{})
		cancel()
		if kerr == nil {
			kc, err = resp.Kubeconfig, nil
		}
	}
	if err != nil {
		return &drainer{why: err.Error()}
	}
	api, err := kubeclient.New(kc, "")
	if err != nil {
		return &drainer{why: err.Error()}
	}
	return &drainer{api: api}
}

// drain cordons and drains the Node named node when it is a worker; drained says whether it
// did (and so whether it must be uncordoned).
func (d *drainer) drain(ctx context.Context, node string, timeout time.Duration, w io.Writer) (drained bool, err error) {
	if d.api == nil {
		fmt.Fprintf(w, "%s: not drained: no Kubernetes API to drain it through (%s)\n", node, firstLine(d.why))
		return false, nil
	}
	n, err := d.api.GetNode(ctx, node)
	if kubeclient.IsNotFound(err) {
		fmt.Fprintf(w, "%s: not drained: no Node of that name in Kubernetes\n", node)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("drain %s: %w", node, err)
	}
	if _, cp := n.Metadata.Labels["node-role.kubernetes.io/control-plane"]; cp {
		return false, nil // control planes hand etcd leadership on instead
	}
	fmt.Fprintf(w, "%s: cordoning and draining\n", node)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	evicted, err := k8sdrain.Drain(ctx, d.api, node, func(format string, a ...any) { fmt.Fprintf(w, node+": "+format+"\n", a...) })
	if err != nil {
		if uerr := d.uncordon(context.WithoutCancel(ctx), node, w); uerr != nil {
			err = errors.Join(err, uerr)
		}
		return false, err
	}
	fmt.Fprintf(w, "%s: drained (%d pods evicted)\n", node, len(evicted))
	return true, nil
}

func (d *drainer) uncordon(ctx context.Context, node string, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := k8sdrain.Cordon(ctx, d.api, node, false); err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: uncordoned\n", node)
	return nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// runsKubelet says whether the node runs Kubernetes (a kubelet service): a node of the
// OS-only image has no Node to drain, and its cluster's API endpoint may lead nowhere.
func runsKubelet(ctx context.Context, s *session) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := s.client.Machine.ServiceList(ctx, &machine.ServiceListRequest{})
	if err != nil {
		return false, client.Describe(err)
	}
	for _, st := range resp.GetServices() {
		if st.Id == "kubelet" {
			return true, nil
		}
	}
	return false, nil
}
