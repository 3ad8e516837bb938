package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/plinthos/plinth/internal/maintenance"
	"github.com/plinthos/plinth/internal/ports"
	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/client"
)

type waitFlags struct {
	wait    bool
	timeout time.Duration
}

func (f *waitFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.wait, "wait", false, "wait until the operation has finished, showing progress")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 5*time.Minute, "how long --wait waits")
}

// bootID returns the node's current boot id.
func bootID(ctx context.Context, s *session) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := s.client.Machine.Version(ctx, &machine.VersionRequest{})
	if err != nil {
		return "", err
	}
	return v.BootId, nil
}

// bootIDIf returns the node's boot id when wait is set (to tell its reboot by a new one
// later), else "".
func bootIDIf(ctx context.Context, s *session, wait bool) (string, error) {
	if !wait {
		return "", nil
	}
	id, err := bootID(ctx, s)
	if err != nil {
		return "", client.Describe(err)
	}
	return id, nil
}

// waitBoot waits until the node answers with a boot id other than before: the reboot is
// done.
func waitBoot(ctx context.Context, s *session, w io.Writer, before string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fmt.Fprintln(w, "waiting for the node to boot again...")
	var last error
	for {
		id, err := bootID(ctx, s)
		if err == nil && id != before {
			fmt.Fprintln(w, "the node is back")
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("the node did not come back within %s: %v", timeout, client.Describe(last))
			}
			return fmt.Errorf("the node did not reboot within %s", timeout)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// waitGone waits until the node stops answering.
func waitGone(ctx context.Context, s *session, w io.Writer, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fmt.Fprintln(w, "waiting for the node to stop...")
	for {
		if _, err := bootID(ctx, s); err != nil {
			fmt.Fprintln(w, "the node is down")
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the node still answers after %s", timeout)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func newRebootCommand(g *globalFlags) *cobra.Command {
	var wf waitFlags
	cmd := &cobra.Command{
		Use:   "reboot",
		Short: "Reboot the nodes (in Docker: restart the container; in local mode: restart machined)",
		Example: `  plinthctl reboot
  plinthctl -n 10.5.0.3 reboot --wait`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.onNodes(cmd, false, func(ctx context.Context, s *session, node string, w io.Writer) error {
				before, err := bootIDIf(ctx, s, wf.wait)
				if err != nil {
					return err
				}
				resp, err := s.client.Machine.Reboot(ctx, &machine.RebootRequest{})
				if err != nil {
					return client.Describe(err)
				}
				fmt.Fprintf(w, "%s: reboot started (actor %s)\n", node, resp.ActorId)
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

func newShutdownCommand(g *globalFlags) *cobra.Command {
	var (
		wf    waitFlags
		force bool
	)
	cmd := &cobra.Command{
		Use:     "shutdown",
		Short:   "Shut the nodes down",
		Example: `  plinthctl -n 10.5.0.3 shutdown --wait`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.onNodes(cmd, false, func(ctx context.Context, s *session, node string, w io.Writer) error {
				resp, err := s.client.Machine.Shutdown(ctx, &machine.ShutdownRequest{Force: force})
				if err != nil {
					return client.Describe(err)
				}
				fmt.Fprintf(w, "%s: shutdown started (actor %s)\n", node, resp.ActorId)
				if wf.wait {
					return waitGone(ctx, s, w, wf.timeout)
				}
				return nil
			})
		},
	}
	wf.add(cmd)
	cmd.Flags().BoolVar(&force, "force", false, "do not wait for services to stop gracefully")
	return cmd
}

func newResetCommand(g *globalFlags) *cobra.Command {
	var (
		wf               waitFlags
		graceful, reboot bool
		wipeMode         string
	)
	cmd := &cobra.Command{
		Use:   "reset",
		Short: "Wipe the nodes' state (configuration, identity) and shut them down or reboot them",
		Long: `Reset wipes nodes and shuts them down, or reboots them (--reboot) into maintenance mode.

--wipe-mode says what goes:
  system-disk  the configuration, the node's identity and etcd's state, then, at the next
               boot before anything starts, the contents of EPHEMERAL (/var: containerd's
               images and containers, kubelet, etcd's data, logs). The default.
  all          that, and on a machine installed on a disk, the disk's partition table and
               boot loader: the machine no longer boots Plinth (it boots its next device,
               such as the install media). Refused in Docker.
  user-disks   refused: no disks besides the system disk can be configured yet.
--graceful (the default) makes a control plane leave etcd first.`,
		Example: `  plinthctl -n 10.5.0.3 reset --reboot --wait
  plinthctl -n 10.5.0.3 reset --graceful=false
  plinthctl -n 10.5.0.3 reset --wipe-mode all --reboot`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.onNodes(cmd, false, func(ctx context.Context, s *session, node string, w io.Writer) error {
				before, err := bootIDIf(ctx, s, wf.wait && reboot)
				if err != nil {
					return err
				}
				resp, err := s.client.Machine.Reset(ctx, &machine.ResetRequest{Graceful: graceful, Reboot: reboot, WipeMode: wipeMode})
				if err != nil {
					return client.Describe(err)
				}
				fmt.Fprintf(w, "%s: reset started (actor %s)\n", node, resp.ActorId)
				switch {
				case wf.wait && reboot:
					return waitBoot(ctx, s, w, before, wf.timeout)
				case wf.wait:
					return waitGone(ctx, s, w, wf.timeout)
				}
				return nil
			})
		},
	}
	wf.add(cmd)
	cmd.Flags().BoolVar(&graceful, "graceful", true, "leave the cluster (etcd) cleanly before wiping")
	cmd.Flags().BoolVar(&reboot, "reboot", false, "reboot after the reset instead of shutting down")
	cmd.Flags().StringVar(&wipeMode, "wipe-mode", "system-disk", "what to erase: system-disk, all or user-disks (see above)")
	return cmd
}

func newApplyConfigCommand(g *globalFlags) *cobra.Command {
	var (
		file, mode  string
		dryRun      bool
		tryTimeout  time.Duration
		maint       bool
		fingerprint string
	)
	cmd := &cobra.Command{
		Use:     "apply-config",
		Aliases: []string{"apply"},
		Short:   "Apply a new machine configuration to the nodes",
		Long: `Send a machine configuration to the nodes. Modes:
  auto       apply now; reboot only if the change needs it (default)
  no-reboot  apply now; refuse a change that needs a reboot
  staged     store it; it applies at the next reboot
  try        apply now and roll back after --timeout unless another apply-config confirms it
--dry-run shows the difference (secrets masked) and changes nothing. An invalid configuration
is refused with the validation messages, and the running one stays.

--maintenance configures a machine that has none yet (it booted without a configuration and
its console says "maintenance mode"). It takes the configuration only from an os:admin of the
CA given to it as its trust anchor (plinth.trust=, which 'plinthctl config info' prints), and
plinthctl sends it only to the machine whose certificate fingerprint its console shows
(--fingerprint): the configuration holds the cluster's keys. Give the machine's address
with -e; the machine stores the configuration and reboots into it. A machine booted from the
install media (plinth.iso) first installs Plinth to machine.install.disk (everything on that
disk is lost), stores the configuration there and reboots from the disk.`,
		Example: `  plinthctl apply-config -f controlplane.yaml --dry-run
  plinthctl -n 10.5.0.3 apply-config -f worker.yaml --mode no-reboot
  plinthctl apply-config -f cp.yaml --mode try --timeout 2m
  plinthctl apply-config --maintenance -e 10.0.2.15 --fingerprint sha256:9f86d0... -f controlplane.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("read configuration: %w", err)
			}
			if maint {
				for _, f := range []string{"dry-run", "mode", "timeout"} {
					if cmd.Flags().Changed(f) {
						return fmt.Errorf("--%s does not apply with --maintenance: the machine has no configuration to compare with or keep; it stores this one and reboots into it", f)
					}
				}
				return applyMaintenance(cmd, g, data, fingerprint)
			}
			if fingerprint != "" {
				return errors.New("--fingerprint is for --maintenance: a configured node is verified by its CA")
			}
			return g.onNodes(cmd, false, func(ctx context.Context, s *session, node string, w io.Writer) error {
				resp, err := s.client.Machine.ApplyConfiguration(ctx, &machine.ApplyConfigurationRequest{
					Data: data, Mode: mode, DryRun: dryRun, TryTimeout: durationpb.New(tryTimeout)})
				if err != nil {
					return client.Describe(err)
				}
				if resp.Diff != "" {
					fmt.Fprint(w, resp.Diff)
				} else {
					fmt.Fprintln(w, "no changes")
				}
				fmt.Fprintf(w, "%s: %s (mode %s)\n", node, resp.Message, resp.Mode)
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the machine configuration to apply (required)")
	cmd.Flags().StringVarP(&mode, "mode", "m", "auto", "auto, no-reboot, staged or try")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show the difference and change nothing")
	cmd.Flags().DurationVar(&tryTimeout, "timeout", time.Minute, "with --mode try: how long until the rollback")
	cmd.Flags().BoolVar(&maint, "maintenance", false, "configure a machine in maintenance mode (no configuration yet), at the endpoint given with -e")
	cmd.Flags().StringVar(&fingerprint, "fingerprint", "", "with --maintenance: the machine's certificate fingerprint, as its console shows it (sha256:...)")
	_ = cmd.MarkFlagRequired("file")
	_ = cmd.RegisterFlagCompletionFunc("mode", cobra.FixedCompletions([]string{"auto", "no-reboot", "staged", "try"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// applyMaintenance sends data to the machine in maintenance mode at the one endpoint given,
// with the context's admin certificate and CA, trusting the machine only by fingerprint.
func applyMaintenance(cmd *cobra.Command, g *globalFlags, data []byte, fingerprint string) error {
	if fingerprint == "" {
		return errors.New("--maintenance needs --fingerprint: the machine's console shows it (the configuration holds the cluster's keys: it goes only to the machine you can see)")
	}
	if len(g.endpoints) != 1 || len(g.nodes) > 0 {
		return errors.New("--maintenance needs the machine's address as the one endpoint (-e ADDRESS), and no -n: a machine in maintenance mode forwards nothing")
	}
	_, _, _, cc, err := loadClientConfig(g)
	if err != nil {
		return err
	}
	tlsCfg, err := maintenance.ClientTLS(cc.CA, cc.Crt, cc.Key, fingerprint)
	if err != nil {
		return err
	}
	endpoint := g.endpoints[0]
	if _, _, err := net.SplitHostPort(endpoint); err != nil {
		endpoint = net.JoinHostPort(strings.Trim(endpoint, "[]"), strconv.Itoa(ports.NodeAPI))
	}
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)))
	if err != nil {
		return err
	}
	defer conn.Close()
	// Long enough for an install from the media on a slow (emulated) machine.
	ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Minute)
	defer cancel()
	fmt.Fprintf(cmd.ErrOrStderr(), "sending the configuration to %s (a machine booted from the install media installs first)...\n", g.endpoints[0])
	resp, err := machine.NewMachineServiceClient(conn).ApplyConfiguration(ctx, &machine.ApplyConfigurationRequest{Data: data})
	if err != nil {
		return client.Describe(err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", g.endpoints[0], resp.Message)
	return nil
}
