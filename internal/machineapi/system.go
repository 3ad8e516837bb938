package machineapi

import (
	"context"
	"errors"
	"io"
	"io/fs"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/plinthos/plinth/internal/fileapi"
	"github.com/plinthos/plinth/internal/sysinfo"
	"github.com/plinthos/plinth/pkg/api/machine"
)

// System gives the machine service its view of the machine: where /proc is, which kernel
// log to read, and the file tree clients may browse.
type System struct {
	ProcRoot string
	KmsgPath string
	Files    fileapi.FS
	// ProcessTree, when set, limits Processes to this process and its descendants: in
	// local mode machined shares the host's /proc, and the node's processes are its own
	// tree, not every process of the developer's machine.
	ProcessTree int32
}

// Processes implements the Processes RPC.
func (s *MachineServer) Processes(context.Context, *machine.ProcessesRequest) (*machine.ProcessesResponse, error) {
	procs, err := sysinfo.Processes(s.System.ProcRoot)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if s.System.ProcessTree != 0 {
		procs = subtree(procs, s.System.ProcessTree)
	}
	resp := &machine.ProcessesResponse{}
	for _, p := range procs {
		resp.Processes = append(resp.Processes, &machine.Process{Pid: p.PID, Ppid: p.PPID, State: p.State, Threads: p.Threads,
			CpuSeconds: p.CPUSeconds, ResidentBytes: p.ResidentBytes, ProportionalBytes: p.ProportionalBytes, VirtualBytes: p.VirtualBytes,
			Command: p.Command, Args: p.Args})
	}
	return resp, nil
}

// Memory implements the Memory RPC.
func (s *MachineServer) Memory(context.Context, *machine.MemoryRequest) (*machine.MemoryResponse, error) {
	m, err := sysinfo.Memory(s.System.ProcRoot)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &machine.MemoryResponse{TotalBytes: m.Total, FreeBytes: m.Free, AvailableBytes: m.Available, BuffersBytes: m.Buffers,
		CachedBytes: m.Cached, SwapTotalBytes: m.SwapTotal, SwapFreeBytes: m.SwapFree}, nil
}

// Mounts implements the Mounts RPC.
func (s *MachineServer) Mounts(context.Context, *machine.MountsRequest) (*machine.MountsResponse, error) {
	mounts, err := sysinfo.Mounts(s.System.ProcRoot)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	resp := &machine.MountsResponse{}
	for _, m := range mounts {
		resp.Mounts = append(resp.Mounts, &machine.Mount{Source: m.Source, Target: m.Target, Filesystem: m.FSType, SizeBytes: m.SizeBytes, AvailableBytes: m.AvailableBytes})
	}
	return resp, nil
}

// Dmesg implements the Dmesg RPC.
func (s *MachineServer) Dmesg(req *machine.DmesgRequest, stream grpc.ServerStreamingServer[machine.DmesgResponse]) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	tail := int(req.GetTailLines())
	if tail < 0 {
		tail = 0 // all
	}
	lines, err := sysinfo.ReadKernelLog(ctx, s.System.KmsgPath, req.GetFollow(), tail)
	if err != nil {
		if errors.Is(err, sysinfo.ErrKernelLogUnreadable) {
			return status.Error(codes.FailedPrecondition, err.Error())
		}
		return status.Error(codes.Internal, err.Error())
	}
	return streamLines(ctx, lines, func(b []byte) error { return stream.Send(&machine.DmesgResponse{Data: b}) })
}

// fileError maps file API errors to gRPC codes.
func fileError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fileapi.ErrRestricted):
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.Is(err, fs.ErrNotExist):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, fileapi.ErrNotAbsolute), errors.Is(err, fileapi.ErrNotRegular), errors.Is(err, fileapi.ErrOutsideRoot),
		errors.Is(err, fileapi.ErrTooManyLinks):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Internal, err.Error())
}

// List implements the List RPC.
func (s *MachineServer) List(req *machine.ListRequest, stream grpc.ServerStreamingServer[machine.ListResponse]) error {
	root := req.GetRoot()
	if root == "" {
		root = "/"
	}
	err := s.System.Files.List(stream.Context(), root, req.GetRecurse(), int(req.GetRecursionDepth()), isAdmin(stream.Context()), func(e fileapi.Entry) error {
		return stream.Send(&machine.ListResponse{Name: e.ClientPath, RelativeName: e.RelativeName, Size: e.Size, Mode: uint32(e.Mode),
			Modified: timestamppb.New(e.Modified), IsDir: e.IsDir, Link: e.Link, Error: e.Err})
	})
	return fileError(err)
}

// Read implements the Read RPC.
func (s *MachineServer) Read(req *machine.ReadRequest, stream grpc.ServerStreamingServer[machine.ReadResponse]) error {
	err := s.System.Files.Read(stream.Context(), req.GetPath(), isAdmin(stream.Context()), 0, func(b []byte) error {
		// Read reuses its buffer; a sent message must not change afterwards.
		return stream.Send(&machine.ReadResponse{Data: append([]byte(nil), b...)})
	})
	return fileError(err)
}

// chunkWriter sends what is written as stream messages of at most logChunk bytes.
type chunkWriter struct {
	send func([]byte) error
}

func (c chunkWriter) Write(p []byte) (int, error) {
	for off := 0; off < len(p); off += logChunk {
		end := min(off+logChunk, len(p))
		if err := c.send(append([]byte(nil), p[off:end]...)); err != nil {
			return off, err
		}
	}
	return len(p), nil
}

// Copy implements the Copy RPC: a tar stream of the file or directory.
func (s *MachineServer) Copy(req *machine.CopyRequest, stream grpc.ServerStreamingServer[machine.CopyResponse]) error {
	w := chunkWriter{send: func(b []byte) error { return stream.Send(&machine.CopyResponse{Data: b}) }}
	err := s.System.Files.Copy(stream.Context(), req.GetRootPath(), isAdmin(stream.Context()), w)
	return fileError(err)
}

// errNoContainerd answers container calls on a node that runs no containerd.
var errNoContainerd = status.Error(codes.FailedPrecondition, "this node runs no containerd (containers exist on Kubernetes nodes, in docker mode)")

// Containers implements the Containers RPC.
func (s *MachineServer) Containers(ctx context.Context, req *machine.ContainersRequest) (*machine.ContainersResponse, error) {
	if s.Containerd == nil {
		return nil, errNoContainerd
	}
	list, err := s.Containerd.Containers(ctx, req.GetKubernetes())
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &machine.ContainersResponse{Containers: list}, nil
}

// Containerd reads a node's containers (containerd's): their list, the resource use
// of the running ones, and the images of the Kubernetes containers.
type Containerd interface {
	Containers(ctx context.Context, kubernetes bool) ([]*machine.Container, error)
	Stats(ctx context.Context, kubernetes bool) ([]*machine.ContainerStats, error)
	Images(ctx context.Context) ([]*machine.Image, error)
	// Import loads the image archive r into the Kubernetes image store and returns the
	// images it held. An archive that is not one is refused, and the store keeps what it had.
	Import(ctx context.Context, r io.Reader) ([]*machine.Image, error)
	// Remove removes images from that store by name and returns them. A name the store
	// lacks, or an image a container was made from, is refused with nothing removed.
	Remove(ctx context.Context, names []string) ([]*machine.Image, error)
}

// ImageImport implements the ImageImport RPC.
func (s *MachineServer) ImageImport(stream grpc.ClientStreamingServer[machine.ImageImportRequest, machine.ImageImportResponse]) error {
	if s.Containerd == nil {
		return errNoContainerd
	}
	_, r, err := readChunks(stream.Recv, "image archive")
	if err != nil {
		return err
	}
	images, err := s.Containerd.Import(stream.Context(), r)
	if err != nil {
		if st, ok := status.FromError(err); ok {
			return st.Err()
		}
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return stream.SendAndClose(&machine.ImageImportResponse{Images: images})
}

// ImageRemove implements the ImageRemove RPC.
func (s *MachineServer) ImageRemove(ctx context.Context, req *machine.ImageRemoveRequest) (*machine.ImageRemoveResponse, error) {
	if s.Containerd == nil {
		return nil, errNoContainerd
	}
	images, err := s.Containerd.Remove(ctx, req.Names)
	if err != nil {
		if st, ok := status.FromError(err); ok {
			return nil, st.Err()
		}
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &machine.ImageRemoveResponse{Images: images}, nil
}

// ImageList implements the ImageList RPC.
func (s *MachineServer) ImageList(ctx context.Context, _ *machine.ImageListRequest) (*machine.ImageListResponse, error) {
	if s.Containerd == nil {
		return nil, errNoContainerd
	}
	images, err := s.Containerd.Images(ctx)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &machine.ImageListResponse{Images: images}, nil
}

// Stats implements the Stats RPC.
func (s *MachineServer) Stats(ctx context.Context, req *machine.StatsRequest) (*machine.StatsResponse, error) {
	if s.Containerd == nil {
		return nil, errNoContainerd
	}
	stats, err := s.Containerd.Stats(ctx, req.GetKubernetes())
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &machine.StatsResponse{Stats: stats}, nil
}

// subtree keeps root and its descendants.
func subtree(procs []sysinfo.Process, root int32) []sysinfo.Process {
	parent := make(map[int32]int32, len(procs))
	for _, p := range procs {
		parent[p.PID] = p.PPID
	}
	var out []sysinfo.Process
	for _, p := range procs {
		for pid, hops := p.PID, 0; pid != 0 && hops < len(procs); pid, hops = parent[pid], hops+1 {
			if pid == root {
				out = append(out, p)
				break
			}
		}
	}
	return out
}
