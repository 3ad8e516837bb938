package machineapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/plinthos/plinth/internal/configgen"
	"github.com/plinthos/plinth/internal/configmgr"
	"github.com/plinthos/plinth/internal/etcdintent"
	"github.com/plinthos/plinth/internal/events"
	"github.com/plinthos/plinth/internal/k8s/certs"
	"github.com/plinthos/plinth/internal/logstore"
	"github.com/plinthos/plinth/internal/service"
	"github.com/plinthos/plinth/internal/version"
	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/clientconfig"
	"github.com/plinthos/plinth/pkg/role"
)

// Lifecycle runs the node's power sequences. Each returns at once; the sequence runs in the
// background under the given actor id, reporting on the event stream.
type Lifecycle interface {
	Reboot(actorID string) error
	Shutdown(actorID string) error
	Reset(actorID string, graceful, reboot bool, wipe WipeMode) error
}

// MachineServer implements the machine service.
type MachineServer struct {
	machine.UnimplementedMachineServiceServer

	Supervisor  *service.Supervisor
	LogStore    *logstore.Store
	EventStream *events.Stream
	Config      *configmgr.Manager
	Lifecycle   Lifecycle
	// Platform is local, container or metal.
	Platform string
	// Hostname returns the node's current host name.
	Hostname func() string
	// Endpoints are the addresses put in client configs minted by GenerateClientConfiguration.
	Endpoints func() []string
	// BootID identifies this boot of machined.
	BootID string
	// System locates /proc, the kernel log and the browsable files.
	System System
	// Bootstrapper starts a new cluster; nil on nodes that run no etcd.
	Bootstrapper Bootstrapper
	// Containerd lists containers and their resource use; nil on nodes without containerd.
	Containerd Containerd
	// Etcd talks to this node's etcd member; nil on nodes that run no etcd (the etcd RPCs
	// also check that the node is a control plane).
	Etcd EtcdClient
	// Upgrader upgrades the OS; nil on platforms without A/B slots.
	Upgrader Upgrader
	// Metrics renders machined's metrics in Prometheus's text format; nil where there are
	// none (maintenance mode).
	MetricsText func() ([]byte, error)
}

// Metrics implements the Metrics RPC: the same text as the metrics endpoint serves, and,
// like it, only while the configuration enables metrics.
func (s *MachineServer) Metrics(context.Context, *machine.MetricsRequest) (*machine.MetricsResponse, error) {
	if s.MetricsText == nil {
		return nil, status.Error(codes.FailedPrecondition, "this node serves no metrics in maintenance mode")
	}
	if s.Config != nil {
		if cfg, _ := s.Config.Active(); cfg == nil || !cfg.Machine.Metrics.Enabled {
			return nil, status.Error(codes.FailedPrecondition, "metrics are off on this node: set machine.metrics.enabled: true (applies without a reboot)")
		}
	}
	text, err := s.MetricsText()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "gather metrics: %v", err)
	}
	return &machine.MetricsResponse{Text: text}, nil
}

// Version implements the Version RPC.
func (s *MachineServer) Version(context.Context, *machine.VersionRequest) (*machine.VersionResponse, error) {
	return &machine.VersionResponse{Tag: version.Tag, GoVersion: runtime.Version(), Os: runtime.GOOS, Arch: runtime.GOARCH,
		Platform: s.Platform, Hostname: s.Hostname(), BootId: s.BootID}, nil
}

func serviceToProto(st service.Status) *machine.ServiceState {
	out := &machine.ServiceState{Id: st.ID, State: string(st.State), Message: st.Message, Since: timestamppb.New(st.Since),
		Runner: st.Runner, Restarts: int32(st.Restarts)}
	if st.Healthy != nil {
		out.Health = "unhealthy"
		if *st.Healthy {
			out.Health = "healthy"
		}
	}
	for _, tr := range st.History {
		out.History = append(out.History, &machine.ServiceTransition{Time: timestamppb.New(tr.Time), From: string(tr.From), To: string(tr.To), Message: tr.Message})
	}
	return out
}

// ServiceList implements the ServiceList RPC.
func (s *MachineServer) ServiceList(context.Context, *machine.ServiceListRequest) (*machine.ServiceListResponse, error) {
	resp := &machine.ServiceListResponse{}
	for _, st := range s.Supervisor.List() {
		resp.Services = append(resp.Services, serviceToProto(st))
	}
	return resp, nil
}

func (s *MachineServer) status(id string) (service.Status, error) {
	st, err := s.Supervisor.Status(id)
	if err != nil {
		return st, status.Errorf(codes.NotFound, "no service %q; list them with `plinthctl services`", id)
	}
	return st, nil
}

// ServiceInfo implements the ServiceInfo RPC.
func (s *MachineServer) ServiceInfo(_ context.Context, req *machine.ServiceInfoRequest) (*machine.ServiceInfoResponse, error) {
	st, err := s.status(req.GetId())
	if err != nil {
		return nil, err
	}
	return &machine.ServiceInfoResponse{Service: serviceToProto(st)}, nil
}

// ServiceStart implements the ServiceStart RPC.
func (s *MachineServer) ServiceStart(_ context.Context, req *machine.ServiceStartRequest) (*machine.ServiceStartResponse, error) {
	if _, err := s.status(req.GetId()); err != nil {
		return nil, err
	}
	if err := s.Supervisor.Start(req.GetId()); err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	return &machine.ServiceStartResponse{Message: fmt.Sprintf("service %q started", req.GetId())}, nil
}

// A protected service (apid, trustd) is how clients reach the node: the API never stops
// it, since nothing could start it again, and only an admin may restart it, which cuts
// every client off for a moment and then brings it back by itself.
func protectedStopError(id string) error {
	return status.Errorf(codes.FailedPrecondition,
		"service %q cannot be stopped through the node API: it is how clients reach this node and nothing could start it again; restart it (needs os:admin) or reboot the node", id)
}

func protectedRestartError(id string) error {
	return status.Errorf(codes.PermissionDenied,
		"service %q cannot be restarted by this client: restarting it cuts every client of the node off for a moment, so it needs os:admin", id)
}

// ServiceStop implements the ServiceStop RPC.
func (s *MachineServer) ServiceStop(ctx context.Context, req *machine.ServiceStopRequest) (*machine.ServiceStopResponse, error) {
	st, err := s.status(req.GetId())
	if err != nil {
		return nil, err
	}
	if st.Protected {
		return nil, protectedStopError(st.ID)
	}
	if err := s.Supervisor.Stop(ctx, req.GetId()); err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	return &machine.ServiceStopResponse{Message: fmt.Sprintf("service %q stopped", req.GetId())}, nil
}

// ServiceRestart implements the ServiceRestart RPC.
func (s *MachineServer) ServiceRestart(ctx context.Context, req *machine.ServiceRestartRequest) (*machine.ServiceRestartResponse, error) {
	st, err := s.status(req.GetId())
	if err != nil {
		return nil, err
	}
	if st.Protected && !isAdmin(ctx) {
		return nil, protectedRestartError(st.ID)
	}
	// The restart completes even when the caller goes away: restarting apid cuts the very
	// call that asked for it, and a restart cancelled between its stop and its start
	// would leave the service stopped.
	if err := s.Supervisor.Restart(context.WithoutCancel(ctx), req.GetId()); err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	return &machine.ServiceRestartResponse{Message: fmt.Sprintf("service %q restarted", req.GetId())}, nil
}

// logChunk is the most log data sent in one message.
const logChunk = 64 << 10

// Logs implements the Logs RPC: the last lines from memory (or the previous boot's file),
// then, with follow, new lines until the client goes away.
func (s *MachineServer) Logs(req *machine.LogsRequest, stream grpc.ServerStreamingServer[machine.LogsResponse]) error {
	if req.GetKubernetes() {
		if req.GetPrevious() {
			return status.Error(codes.InvalidArgument, "--previous applies to service logs; kubelet keeps a container's earlier runs as N.log files (plinthctl ls /var/log/pods)")
		}
		return kubernetesLogs(stream.Context(), s.System.Files, isAdmin(stream.Context()), req, stream)
	}
	name := req.GetService()
	if err := logstore.ValidName(name); err != nil {
		return status.Errorf(codes.InvalidArgument, "service name: %v", err)
	}
	if _, err := s.Supervisor.Status(name); err != nil && name != "machined" {
		return status.Errorf(codes.NotFound, "no service %q; list them with `plinthctl services`", name)
	}
	log := s.LogStore.Log(name)
	if req.GetPrevious() {
		rc, err := log.Previous()
		if errors.Is(err, fs.ErrNotExist) {
			return status.Errorf(codes.NotFound, "no log of %q from the previous boot", name)
		}
		if err != nil {
			return status.Errorf(codes.Internal, "previous log of %q: %v", name, err)
		}
		defer rc.Close()
		return sendReader(rc, func(b []byte) error { return stream.Send(&machine.LogsResponse{Data: b}) })
	}
	tail := int(req.GetTailLines())
	if !req.GetFollow() {
		return sendLines(log.Tail(tail), func(b []byte) error { return stream.Send(&machine.LogsResponse{Data: b}) })
	}
	lines := log.Follow(stream.Context(), tail)
	return streamLines(stream.Context(), lines, func(b []byte) error { return stream.Send(&machine.LogsResponse{Data: b}) })
}

// sendLines sends lines in chunks of at most logChunk bytes; a longer line is split.
func sendLines(lines []string, send func([]byte) error) error {
	buf := make([]byte, 0, logChunk)
	for _, l := range lines {
		line := []byte(l + "\n")
		if len(buf)+len(line) > logChunk && len(buf) > 0 {
			if err := send(buf); err != nil {
				return err
			}
			buf = make([]byte, 0, logChunk)
		}
		for len(line) > logChunk {
			if err := send(line[:logChunk]); err != nil {
				return err
			}
			line = line[logChunk:]
		}
		buf = append(buf, line...)
	}
	if len(buf) > 0 {
		return send(buf)
	}
	return nil
}

// streamLines sends lines as they come, batching what is already waiting.
func streamLines(ctx context.Context, lines <-chan string, send func([]byte) error) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case l, ok := <-lines:
			if !ok {
				return nil
			}
			batch := []string{l}
		drain:
			for len(batch) < 1024 {
				select {
				case l, ok := <-lines:
					if !ok {
						break drain
					}
					batch = append(batch, l)
				default:
					break drain
				}
			}
			if err := sendLines(batch, send); err != nil {
				return err
			}
		}
	}
}

func sendReader(r io.Reader, send func([]byte) error) error {
	br := bufio.NewReaderSize(r, logChunk)
	for {
		buf := make([]byte, logChunk)
		n, err := io.ReadFull(br, buf)
		if n > 0 {
			if serr := send(buf[:n]); serr != nil {
				return serr
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return status.Errorf(codes.Internal, "read: %v", err)
		}
	}
}

// Events implements the Events RPC.
func (s *MachineServer) Events(req *machine.EventsRequest, stream grpc.ServerStreamingServer[machine.EventsResponse]) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	tail := int(req.GetTailEvents())
	if tail == 0 && !req.GetFollow() && req.GetSinceId() == "" {
		tail = -1
	}
	ch := s.EventStream.Subscribe(ctx, events.SubscribeOptions{TailEvents: tail, SinceID: req.GetSinceId(), ActorID: req.GetActorId()})
	for {
		var ev events.Event
		var ok bool
		if req.GetFollow() {
			ev, ok = <-ch
		} else {
			// Without follow, send what is buffered and stop when nothing more is waiting.
			select {
			case ev, ok = <-ch:
			case <-time.After(100 * time.Millisecond):
				return nil
			}
		}
		if !ok {
			return nil
		}
		if err := stream.Send(&machine.EventsResponse{Id: ev.ID, Time: timestamppb.New(ev.Time), ActorId: ev.ActorID, Type: ev.Type,
			Message: ev.Message, Data: ev.Data}); err != nil {
			return err
		}
	}
}

// ApplyConfiguration implements the ApplyConfiguration RPC.
func (s *MachineServer) ApplyConfiguration(_ context.Context, req *machine.ApplyConfigurationRequest) (*machine.ApplyConfigurationResponse, error) {
	res, err := s.Config.Apply(req.GetData(), req.GetMode(), req.GetDryRun(), req.GetTryTimeout().AsDuration())
	switch {
	case errors.Is(err, configmgr.ErrInvalid):
		return nil, status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, configmgr.ErrNeedsReboot):
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	case err != nil:
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	resp := &machine.ApplyConfigurationResponse{Mode: res.Mode, Message: res.Message, Diff: res.Diff}
	if !req.GetDryRun() {
		actor := events.NewActorID()
		s.EventStream.Publish(events.Event{ActorID: actor, Type: "config", Message: "configuration applied (" + res.Mode + ")", Data: map[string]string{"mode": res.Mode}})
		resp.ActorId = actor
		if res.RebootNeeded {
			if err := s.Lifecycle.Reboot(actor); err != nil {
				return nil, status.Errorf(codes.Internal, "configuration stored, but the reboot failed: %v", err)
			}
		}
	}
	return resp, nil
}

// GenerateClientConfiguration implements the GenerateClientConfiguration RPC: an admin
// mints a client config for other roles, signed by the node API CA.
func (s *MachineServer) GenerateClientConfiguration(_ context.Context, req *machine.GenerateClientConfigurationRequest) (*machine.GenerateClientConfigurationResponse, error) {
	roles, err := role.Parse(strings.Join(req.GetRoles(), ","))
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	cfg, _ := s.Config.Current()
	if len(cfg.Machine.CA.Key) == 0 {
		return nil, status.Error(codes.FailedPrecondition, "this node does not hold the node API CA key; ask a control-plane node")
	}
	ttl := req.GetCrtTtl().AsDuration()
	if ttl <= 0 {
		ttl = configgen.DefaultClientCertValidity
	}
	if ttl > configgen.MaxClientCertValidity {
		return nil, status.Errorf(codes.InvalidArgument, "a client certificate may be valid for at most %s (one year), not %s; ask for less (--crt-ttl)", configgen.MaxClientCertValidity, ttl)
	}
	ctx, err := configgen.NewContext(cfg.Machine.CA, s.Endpoints(), roles, ttl, time.Now())
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	cc := &clientconfig.Config{Context: cfg.Cluster.Name, Contexts: map[string]*clientconfig.Context{cfg.Cluster.Name: ctx}}
	data, err := cc.Encode()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &machine.GenerateClientConfigurationResponse{Ca: ctx.CA, Crt: ctx.Crt, Key: ctx.Key, Plinthconfig: data}, nil
}

// Reboot implements the Reboot RPC.
func (s *MachineServer) Reboot(context.Context, *machine.RebootRequest) (*machine.RebootResponse, error) {
	actor := events.NewActorID()
	if err := s.Lifecycle.Reboot(actor); err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	return &machine.RebootResponse{ActorId: actor}, nil
}

// Shutdown implements the Shutdown RPC.
func (s *MachineServer) Shutdown(context.Context, *machine.ShutdownRequest) (*machine.ShutdownResponse, error) {
	actor := events.NewActorID()
	if err := s.Lifecycle.Shutdown(actor); err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	return &machine.ShutdownResponse{ActorId: actor}, nil
}

// Reset implements the Reset RPC.
func (s *MachineServer) Reset(ctx context.Context, req *machine.ResetRequest) (*machine.ResetResponse, error) {
	wipe, err := ParseWipeMode(req.GetWipeMode())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if wipe == WipeUserDisks {
		return nil, status.Error(codes.FailedPrecondition, "wipe mode user-disks: this machine has no user disks (configuring disks besides the system disk is not supported yet); use system-disk or all")
	}
	if req.GetGraceful() {
		if err := s.leaveBeforeReset(ctx); err != nil {
			return nil, err
		}
	}
	actor := events.NewActorID()
	if err := s.Lifecycle.Reset(actor, req.GetGraceful(), req.GetReboot(), wipe); err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	return &machine.ResetResponse{ActorId: actor}, nil
}

// WipeMode says what a reset erases.
type WipeMode string

// The wipe modes.
const (
	// WipeSystemDisk erases the configuration, the identity and etcd's state, and the
	// contents of EPHEMERAL (containerd, kubelet, logs) at the next boot.
	WipeSystemDisk WipeMode = "system-disk"
	// WipeAll also erases the boot disk's partition table and boot loader: the machine no
	// longer boots Plinth (it boots the next device, such as the install media).
	WipeAll WipeMode = "all"
	// WipeUserDisks would erase the disks besides the system disk; none can be configured.
	WipeUserDisks WipeMode = "user-disks"
)

// ParseWipeMode reads a wipe mode; empty is WipeSystemDisk.
func ParseWipeMode(s string) (WipeMode, error) {
	switch m := WipeMode(s); m {
	case "":
		return WipeSystemDisk, nil
	case WipeSystemDisk, WipeAll, WipeUserDisks:
		return m, nil
	}
	return "", fmt.Errorf("unknown wipe mode %q: want system-disk, all or user-disks", s)
}

// Bootstrapper starts a new cluster on a control-plane node.
type Bootstrapper interface {
	Bootstrap(ctx context.Context) (string, error)
}

// Recoverer starts a new etcd cluster from a snapshot; a Bootstrapper may be one.
type Recoverer interface {
	Recover(ctx context.Context, snapshotPath string, force bool) (string, error)
}

// Leaver is told when the node removed its own etcd member (EtcdLeave), so that its etcd
// stays down and it does not join again until a reset; a Bootstrapper may be one.
type Leaver interface {
	EtcdLeft() error
}

// ErrEtcdHealthy is returned (wrapped) by a Recoverer that refuses while etcd answers.
var ErrEtcdHealthy = errors.New("etcd is healthy")

// recoverDir holds a snapshot while it is restored (on /var: it may be large).
var recoverDir = "/var/lib/plinth/recover"

// EtcdRecover implements the EtcdRecover RPC.
func (s *MachineServer) EtcdRecover(stream grpc.ClientStreamingServer[machine.EtcdRecoverRequest, machine.EtcdRecoverResponse]) error {
	r, ok := s.Bootstrapper.(Recoverer)
	if s.Bootstrapper == nil || !ok {
		return status.Error(codes.FailedPrecondition, "this node runs no etcd: recover etcd on a control-plane node in container or metal mode")
	}
	first, chunks, err := readChunks(stream.Recv, "snapshot")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(recoverDir, 0o700); err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	f, err := os.CreateTemp(recoverDir, "snapshot-*.db")
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	defer os.Remove(f.Name())
	n, err := io.Copy(f, chunks)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return status.Errorf(codes.Aborted, "receive the snapshot: %v", err)
	}
	if n == 0 {
		return status.Error(codes.InvalidArgument, "the snapshot is empty")
	}
	msg, err := r.Recover(stream.Context(), f.Name(), first.GetForce())
	switch {
	case errors.Is(err, ErrEtcdHealthy), errors.Is(err, ErrCannotBootstrap):
		return status.Error(codes.FailedPrecondition, err.Error())
	case err != nil:
		return status.Error(codes.Internal, err.Error())
	}
	s.EventStream.Publish(events.Event{Type: "sequence", Message: "etcd recovery: " + msg, Data: map[string]string{"sequence": "etcd-recover"}})
	return stream.SendAndClose(&machine.EtcdRecoverResponse{Message: msg})
}

// ErrAlreadyBootstrapped is returned by a Bootstrapper asked to bootstrap twice.
var ErrAlreadyBootstrapped = etcdintent.ErrAlreadyBootstrapped

// ErrBootstrapUnsure is returned by a Bootstrapper that cannot tell yet whether the
// cluster was bootstrapped elsewhere; the caller may try again.
var ErrBootstrapUnsure = etcdintent.ErrUnsure

// ErrCannotBootstrap is returned by a Bootstrapper on a node that cannot bootstrap (a
// worker, or a node without etcd).
var ErrCannotBootstrap = errors.New("this node cannot bootstrap")

// Bootstrap implements the Bootstrap RPC.
func (s *MachineServer) Bootstrap(ctx context.Context, _ *machine.BootstrapRequest) (*machine.BootstrapResponse, error) {
	if s.Bootstrapper == nil {
		return nil, status.Error(codes.FailedPrecondition, "this node runs no etcd: bootstrap a control-plane node in container or metal mode")
	}
	msg, err := s.Bootstrapper.Bootstrap(ctx)
	switch {
	case errors.Is(err, ErrAlreadyBootstrapped):
		return nil, status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, ErrCannotBootstrap):
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, ErrBootstrapUnsure):
		return nil, status.Error(codes.Unavailable, err.Error())
	case err != nil:
		return nil, status.Error(codes.Internal, err.Error())
	}
	s.EventStream.Publish(events.Event{Type: "sequence", Message: "bootstrap: " + msg, Data: map[string]string{"sequence": "bootstrap"}})
	return &machine.BootstrapResponse{Message: msg}, nil
}

// Kubeconfig implements the Kubeconfig RPC: a fresh admin client certificate from the
// Kubernetes CA (control planes only), valid one year.
func (s *MachineServer) Kubeconfig(context.Context, *machine.KubeconfigRequest) (*machine.KubeconfigResponse, error) {
	cfg, _ := s.Config.Current()
	if len(cfg.Cluster.CA.Key) == 0 {
		return nil, status.Error(codes.FailedPrecondition, "this node does not hold the Kubernetes CA key; ask a control-plane node")
	}
	data, err := certs.AdminKubeconfig(cfg, time.Now())
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &machine.KubeconfigResponse{Kubeconfig: data}, nil
}
