package machineapi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/internal/fileapi"
	"github.com/plinthos/plinth/pkg/api/machine"
)

// podsDir is where kubelet keeps the containers' logs, as a client path of the file API.
const podsDir = "/var/log/pods"

// podLogFile finds the current log file of a Kubernetes container in files, under
// kubelet's /var/log/pods/NAMESPACE_POD_UID/CONTAINER/N.log, named NAMESPACE/POD/CONTAINER,
// POD/CONTAINER or POD (a pod of one container), and returns its client path. It looks
// with the caller's rights (admin or not) and only through the file API, so that what a
// caller may read is decided in one place.
func podLogFile(ctx context.Context, files fileapi.FS, admin bool, name string) (string, error) {
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
	pods, err := dirNames(ctx, files, admin, podsDir, nsGlob+"_"+pod+"_*")
	if err != nil {
		return "", err
	}
	if len(pods) == 0 {
		return "", status.Errorf(codes.NotFound, "no pod %q on this node (see plinthctl containers -k)", name)
	}
	if len(pods) > 1 && ns == "" {
		return "", status.Errorf(codes.InvalidArgument, "pod %q exists in several namespaces: name it NAMESPACE/POD/CONTAINER", pod)
	}
	dir := path.Join(podsDir, pods[len(pods)-1])
	if ctr == "" {
		ctrs, err := dirNames(ctx, files, admin, dir, "*")
		if err != nil {
			return "", err
		}
		if len(ctrs) != 1 {
			return "", status.Errorf(codes.InvalidArgument, "pod %q has %d containers: name one as POD/CONTAINER", pod, len(ctrs))
		}
		ctr = ctrs[0]
	}
	logs, err := dirNames(ctx, files, admin, path.Join(dir, ctr), "*.log")
	if err != nil && status.Code(err) != codes.NotFound {
		return "", err
	}
	if len(logs) == 0 {
		return "", status.Errorf(codes.NotFound, "no log of container %q in pod %q", ctr, pod)
	}
	// N.log: the highest N is the current run of the container.
	sort.Slice(logs, func(i, j int) bool { return logNumber(logs[i]) < logNumber(logs[j]) })
	return path.Join(dir, ctr, logs[len(logs)-1]), nil
}

// dirNames returns the names of the entries of the directory dir in files that match
// pattern (as path.Match has it), in lexical order, or the file API's error as a status.
func dirNames(ctx context.Context, files fileapi.FS, admin bool, dir, pattern string) ([]string, error) {
	var names []string
	err := files.List(ctx, dir, false, 0, admin, func(e fileapi.Entry) error {
		if ok, _ := path.Match(pattern, e.Name); ok && e.RelativeName != "." {
			names = append(names, e.Name)
		}
		return nil
	})
	if err != nil {
		return nil, fileError(err)
	}
	return names, nil
}

// logNumber returns the N of a log file named N.log.
func logNumber(name string) int {
	n, _ := strconv.Atoi(strings.TrimSuffix(path.Base(name), ".log"))
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

// kubernetesLogs streams a Kubernetes container's log from files: the last tail lines,
// then, with follow, new lines as kubelet's log file grows. The file is opened through
// the file API, with its checks for the caller.
func kubernetesLogs(ctx context.Context, files fileapi.FS, admin bool, req *machine.LogsRequest, stream grpc.ServerStreamingServer[machine.LogsResponse]) error {
	logPath, err := podLogFile(ctx, files, admin, req.GetService())
	if err != nil {
		return err
	}
	f, err := files.Open(logPath, admin)
	if err != nil {
		return fileError(err)
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
			return status.Error(codes.Internal, fmt.Sprintf("read %s: %v", logPath, err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(300 * time.Millisecond):
		}
	}
}
