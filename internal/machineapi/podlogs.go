package machineapi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/pkg/api/machine"
)

// podLogFile finds the current log file of a Kubernetes container under podsDir (kubelet's
// /var/log/pods/NAMESPACE_POD_UID/CONTAINER/N.log), named NAMESPACE/POD/CONTAINER,
// POD/CONTAINER or POD (a pod of one container).
func podLogFile(podsDir, name string) (string, error) {
	parts := strings.Split(name, "/")
	var ns, pod, ctr string
	switch len(parts) {
	case 3:
		ns, pod, ctr = parts[0], parts[1], parts[2]
	case 2:
		pod, ctr = parts[0], parts[1]
	case 1:
		pod = parts[0]
	}
	if pod == "" || strings.ContainsAny(name, "*?[\\") || strings.Contains(name, "..") {
		return "", status.Errorf(codes.InvalidArgument, "%q is not NAMESPACE/POD/CONTAINER, POD/CONTAINER or POD", name)
	}
	nsGlob := ns
	if nsGlob == "" {
		nsGlob = "*"
	}
	pods, _ := filepath.Glob(filepath.Join(podsDir, nsGlob+"_"+pod+"_*"))
	if len(pods) == 0 {
		return "", status.Errorf(codes.NotFound, "no pod %q on this node (see plinthctl containers -k)", name)
	}
	if len(pods) > 1 && ns == "" {
		return "", status.Errorf(codes.InvalidArgument, "pod %q exists in several namespaces: name it NAMESPACE/POD/CONTAINER", pod)
	}
	dir := pods[len(pods)-1]
	if ctr == "" {
		ctrs, _ := os.ReadDir(dir)
		if len(ctrs) != 1 {
			return "", status.Errorf(codes.InvalidArgument, "pod %q has %d containers: name one as POD/CONTAINER", pod, len(ctrs))
		}
		ctr = ctrs[0].Name()
	}
	files, _ := filepath.Glob(filepath.Join(dir, ctr, "*.log"))
	if len(files) == 0 {
		return "", status.Errorf(codes.NotFound, "no log of container %q in pod %q", ctr, pod)
	}
	// N.log: the highest N is the current run of the container.
	sort.Slice(files, func(i, j int) bool { return logNumber(files[i]) < logNumber(files[j]) })
	return files[len(files)-1], nil
}

func logNumber(path string) int {
	n, _ := strconv.Atoi(strings.TrimSuffix(filepath.Base(path), ".log"))
	return n
}

// criMessage strips the CRI log prefix ("TIME STREAM TAG ") from a line.
func criMessage(line string) string {
	f := strings.SplitN(line, " ", 4)
	if len(f) == 4 && (f[1] == "stdout" || f[1] == "stderr") {
		return f[3]
	}
	return line
}

// kubernetesLogs streams a Kubernetes container's log: the last tail lines, then, with
// follow, new lines as kubelet's log file grows.
func kubernetesLogs(ctx context.Context, podsDir string, req *machine.LogsRequest, stream grpc.ServerStreamingServer[machine.LogsResponse]) error {
	path, err := podLogFile(podsDir, req.GetService())
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return status.Error(codes.NotFound, err.Error())
	}
	defer f.Close()
	send := func(b []byte) error { return stream.Send(&machine.LogsResponse{Data: b}) }
	var lines []string
	r := bufio.NewReader(f)
	tail := int(req.GetTailLines())
	for {
		line, err := r.ReadString('\n')
		if len(line) > 0 && strings.HasSuffix(line, "\n") {
			lines = append(lines, criMessage(strings.TrimSuffix(line, "\n")))
			if tail >= 0 && len(lines) > tail {
				lines = lines[1:]
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return status.Error(codes.Internal, err.Error())
		}
	}
	if err := sendLines(lines, send); err != nil || !req.GetFollow() {
		return err
	}
	var partial string
	for {
		line, err := r.ReadString('\n')
		partial += line
		if err == nil {
			if err := sendLines([]string{criMessage(strings.TrimSuffix(partial, "\n"))}, send); err != nil {
				return err
			}
			partial = ""
			continue
		}
		if err != io.EOF {
			return status.Error(codes.Internal, fmt.Sprintf("read %s: %v", path, err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(300 * time.Millisecond):
		}
	}
}
