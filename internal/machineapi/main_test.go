package machineapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/internal/clock"
	"github.com/plinthos/plinth/internal/configgen"
	"github.com/plinthos/plinth/internal/configmgr"
	"github.com/plinthos/plinth/internal/events"
	"github.com/plinthos/plinth/internal/fileapi"
	"github.com/plinthos/plinth/internal/logstore"
	"github.com/plinthos/plinth/internal/resource"
	"github.com/plinthos/plinth/internal/resources"
	"github.com/plinthos/plinth/internal/service"
	"github.com/plinthos/plinth/pkg/api/machine"
	rpb "github.com/plinthos/plinth/pkg/api/resource"
	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/role"
	"github.com/plinthos/plinth/pkg/secrets"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Fixed values the test server reports.
const (
	testHostname = "node-1"
	testPlatform = "container"
	testEndpoint = "10.5.0.2:50000"
	// previousAlpha is what the previous boot left in alpha's log.
	previousAlpha = "alpha from the previous boot\n"
)

// kmsgRecords is the content of the stand-in for /dev/kmsg, and kmsgLines how Dmesg
// formats it (the dictionary line is dropped).
const kmsgRecords = "6,1,100,-;hello\n" +
	" SUBSYSTEM=acpi\n" +
	"6,2,2000000,-;world\n" +
	"4,3,3500042,-;third record\n"

var kmsgLines = []string{"[    0.000100] hello", "[    2.000000] world", "[    3.500042] third record"}

var (
	configsOnce sync.Once
	configsVal  *configgen.Configs
	configsErr  error
)

// generatedConfigs returns a control-plane and a worker configuration of one cluster,
// generated once for the whole test binary.
func generatedConfigs(t *testing.T) *configgen.Configs {
	t.Helper()
	configsOnce.Do(func() {
		b, err := secrets.Generate(time.Now())
		if err != nil {
			configsErr = err
			return
		}
		configsVal, configsErr = configgen.Generate(b, configgen.Options{ClusterName: "demo", Endpoint: "https://10.5.0.2:6443"})
	})
	if configsErr != nil {
		t.Fatal(configsErr)
	}
	return configsVal
}

func marshalConfig(t *testing.T, c *config.MachineConfig) []byte {
	t.Helper()
	data, err := config.Marshal(c, false)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// lifecycleCall is one call made to fakeLifecycle.
type lifecycleCall struct {
	Op               string
	Actor            string
	Graceful, Reboot bool
	Wipe             WipeMode
}

// fakeLifecycle records the power sequences asked for; err, when set, is returned.
type fakeLifecycle struct {
	mu    sync.Mutex
	calls []lifecycleCall
	err   error
}

func (f *fakeLifecycle) record(c lifecycleCall) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	return f.err
}

func (f *fakeLifecycle) Reboot(actor string) error {
	return f.record(lifecycleCall{Op: "reboot", Actor: actor})
}

func (f *fakeLifecycle) Shutdown(actor string) error {
	return f.record(lifecycleCall{Op: "shutdown", Actor: actor})
}

func (f *fakeLifecycle) Reset(actor string, graceful, reboot bool, wipe WipeMode) error {
	return f.record(lifecycleCall{Op: "reset", Actor: actor, Graceful: graceful, Reboot: reboot, Wipe: wipe})
}

func (f *fakeLifecycle) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeLifecycle) Calls() []lifecycleCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]lifecycleCall(nil), f.calls...)
}

// envOptions changes how newEnv builds the server.
type envOptions struct {
	serverOpts   []grpc.ServerOption
	dialOpts     []grpc.DialOption
	storeOpts    []resource.StoreOption
	upgrader     Upgrader
	containerd   Containerd
	bootstrapper Bootstrapper
}

// env is a machined API served for real on a unix socket, with its parts.
type env struct {
	t         *testing.T
	dir       string
	filesRoot string
	kmsgPath  string

	configs   *configgen.Configs
	logs      *logstore.Store
	events    *events.Stream
	sup       *service.Supervisor
	cfg       *configmgr.Manager
	lifecycle *fakeLifecycle
	store     *resource.Store
	registry  *resource.Registry
	bootID    string

	// say makes the alpha service write a line to its log.
	say chan string
	// stopSupervisor shuts the supervisor down and waits for it.
	stopSupervisor func()

	conn     *grpc.ClientConn
	machine  machine.MachineServiceClient
	resource rpb.ResourceServiceClient

	closeOnce sync.Once
	closeFn   func()
}

func newEnv(t *testing.T) *env { return newEnvWith(t, envOptions{}) }

func newEnvWith(t *testing.T, opts envOptions) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), configs: generatedConfigs(t), lifecycle: &fakeLifecycle{}, bootID: events.NewActorID(),
		say: make(chan string)}
	var cleanups []func()
	e.closeFn = func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	t.Cleanup(e.close)

	// Logs, with alpha's log of the previous boot.
	logDir := filepath.Join(e.dir, "log")
	mustMkdir(t, logDir)
	mustWrite(t, filepath.Join(logDir, "alpha.log"), previousAlpha)
	logs, err := logstore.Open(logDir, logstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.logs = logs
	cleanups = append(cleanups, func() {
		if err := logs.Close(); err != nil {
			t.Errorf("close log store: %v", err)
		}
	})

	e.events = events.New(0, clock.Real{})

	// Services: alpha writes a line, then what it is told; beta writes a line and waits.
	e.sup = service.New(clock.Real{}, logs, e.events, nil)
	say := e.say
	for _, svc := range []service.Service{
		{ID: "alpha", Runner: service.GoroutineRunner{Name: "alpha", Func: func(ctx context.Context, w io.Writer) error {
			fmt.Fprintln(w, "alpha started")
			for {
				select {
				case <-ctx.Done():
					return nil
				case line := <-say:
					fmt.Fprintln(w, line)
				}
			}
		}}},
		{ID: "beta", DependsOn: []string{"alpha"}, Runner: service.GoroutineRunner{Name: "beta", Func: func(ctx context.Context, w io.Writer) error {
			fmt.Fprintln(w, "beta started")
			<-ctx.Done()
			return nil
		}}},
	} {
		if err := e.sup.Add(svc); err != nil {
			t.Fatal(err)
		}
	}
	supCtx, supCancel := context.WithCancel(context.Background())
	supDone := make(chan error, 1)
	go func() { supDone <- e.sup.Run(supCtx) }()
	var supOnce sync.Once
	e.stopSupervisor = func() {
		supOnce.Do(func() {
			supCancel()
			if err := <-supDone; err != nil {
				t.Errorf("supervisor: %v", err)
			}
		})
	}
	cleanups = append(cleanups, e.stopSupervisor)
	if err := e.sup.StartAll(); err != nil {
		t.Fatal(err)
	}
	e.waitState("alpha", service.Running)
	e.waitState("beta", service.Running)
	e.waitLog("alpha", "alpha started")
	e.waitLog("beta", "beta started")

	// Configuration, booted from a seed file.
	seed := filepath.Join(e.dir, "seed.yaml")
	mustWrite(t, seed, string(marshalConfig(t, e.configs.ControlPlane)))
	e.cfg = configmgr.New(filepath.Join(e.dir, "state"), config.ModeDocker, clock.Real{}, slog.New(slog.DiscardHandler))
	if _, err := e.cfg.Boot(seed); err != nil {
		t.Fatal(err)
	}
	cleanups = append(cleanups, e.cfg.Close)

	// The kernel log stand-in and the browsable files.
	e.kmsgPath = filepath.Join(e.dir, "kmsg")
	mustWrite(t, e.kmsgPath, kmsgRecords)
	e.filesRoot = filepath.Join(e.dir, "root")
	mustMkdir(t, filepath.Join(e.filesRoot, "etc"))
	mustMkdir(t, filepath.Join(e.filesRoot, "var", "log"))
	mustMkdir(t, filepath.Join(e.filesRoot, "secret"))
	mustWrite(t, filepath.Join(e.filesRoot, "etc", "hostname"), testHostname+"\n")
	mustWrite(t, filepath.Join(e.filesRoot, "var", "log", "messages"), "m1\nm2\n")
	mustWrite(t, filepath.Join(e.filesRoot, "secret", "token"), "s3cr3t")

	// Resources.
	e.registry, err = resources.Definitions()
	if err != nil {
		t.Fatal(err)
	}
	e.store = resource.NewStore(clock.Real{}, opts.storeOpts...)
	for _, r := range []resource.Resource{
		resource.New(resources.NamespaceNetwork, resources.HostnameType, resources.HostnameID, resources.HostnameSpec{Hostname: testHostname, Domainname: "example.org"}),
		resource.New(resources.NamespaceNetwork, resources.NodeAddressType, resources.DefaultID, resources.NodeAddressSpec{Addresses: []string{"10.5.0.2"}}),
		resource.New(resources.NamespaceConfig, resources.MachineConfigType, resources.ActiveID, resources.MachineConfigSpec{Config: e.configs.ControlPlane}),
		resource.New(resources.NamespaceRuntime, resources.VersionType, resources.VersionID, resources.VersionSpec{Tag: "v0.0.1", Platform: testPlatform}),
	} {
		if err := e.store.Create(r); err != nil {
			t.Fatal(err)
		}
	}

	// The server, on a unix socket. The socket lives in a short directory of its own:
	// t.TempDir() paths can exceed the 108 bytes a socket path may have.
	sockDir, err := os.MkdirTemp("", "mapi")
	if err != nil {
		t.Fatal(err)
	}
	cleanups = append(cleanups, func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "machined.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(opts.serverOpts...)
	machine.RegisterMachineServiceServer(gs, &MachineServer{
		Supervisor:  e.sup,
		LogStore:    logs,
		EventStream: e.events,
		Config:      e.cfg,
		Lifecycle:   e.lifecycle,
		Platform:    testPlatform,
		Hostname:    func() string { return testHostname },
		Endpoints:   func() []string { return []string{testEndpoint} },
		BootID:      e.bootID,
		System: System{
			ProcRoot: "/proc",
			KmsgPath: e.kmsgPath,
			Files:    fileapi.FS{Root: e.filesRoot, Allowed: []string{"/etc/hostname", "/var/log"}},
		},
		Upgrader:     opts.upgrader,
		Containerd:   opts.containerd,
		Bootstrapper: opts.bootstrapper,
	})
	rpb.RegisterResourceServiceServer(gs, &ResourceServer{Store: e.store, Registry: e.registry})
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	cleanups = append(cleanups, func() {
		gs.Stop()
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("serve: %v", err)
		}
	})

	dialOpts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts.dialOpts...)
	conn, err := grpc.NewClient("unix://"+sock, dialOpts...)
	if err != nil {
		t.Fatal(err)
	}
	cleanups = append(cleanups, func() { conn.Close() })
	e.conn = conn
	e.machine = machine.NewMachineServiceClient(conn)
	e.resource = rpb.NewResourceServiceClient(conn)
	return e
}

// close tears everything down; it may be called more than once.
func (e *env) close() { e.closeOnce.Do(e.closeFn) }

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *env) waitState(id string, want service.State) {
	e.t.Helper()
	waitFor(e.t, fmt.Sprintf("service %s to be %s", id, want), func() bool {
		st, err := e.sup.Status(id)
		return err == nil && st.State == want
	})
}

func (e *env) waitLog(name, line string) {
	e.t.Helper()
	waitFor(e.t, fmt.Sprintf("%q in the log of %s", line, name), func() bool {
		for _, l := range e.logs.Log(name).Tail(-1) {
			if l == line {
				return true
			}
		}
		return false
	})
}

// sayAlpha makes alpha write line to its log.
func (e *env) sayAlpha(line string) {
	e.t.Helper()
	select {
	case e.say <- line:
	case <-time.After(5 * time.Second):
		e.t.Fatal("alpha is not listening")
	}
}

// ctx returns a context for one test step, cancelled at the end of the test.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// asRole adds the roles apid forwards to the outgoing metadata.
func asRole(ctx context.Context, roles ...string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, role.MetadataKey, strings.Join(roles, ","))
}

func (e *env) admin() context.Context    { return asRole(testCtx(e.t), role.Admin) }
func (e *env) reader() context.Context   { return asRole(testCtx(e.t), role.Reader) }
func (e *env) operator() context.Context { return asRole(testCtx(e.t), role.Operator) }

// wantCode checks that err is a gRPC status with code want and, when contains is not
// empty, a message holding it.
func wantCode(t *testing.T, err error, want codes.Code, contains string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", want)
	}
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("error %v is not a gRPC status", err)
	}
	if st.Code() != want {
		t.Fatalf("code = %s (%q), want %s", st.Code(), st.Message(), want)
	}
	if contains != "" && !strings.Contains(st.Message(), contains) {
		t.Fatalf("message %q does not contain %q", st.Message(), contains)
	}
}

// recvAll receives a server stream to its end and returns the messages and the final
// error (nil for io.EOF).
func recvAll[T any](recv func() (T, error)) ([]T, error) {
	var out []T
	for {
		m, err := recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

// dataOf concatenates the data of chunk messages.
func dataOf[T interface{ GetData() []byte }](msgs []T) []byte {
	var out []byte
	for _, m := range msgs {
		out = append(out, m.GetData()...)
	}
	return out
}

// linesOf splits newline-terminated text into lines.
func linesOf(data []byte) []string {
	s := strings.TrimSuffix(string(data), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
