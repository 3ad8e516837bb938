package machineapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/plinthos/plinth/internal/clock"
	"github.com/plinthos/plinth/internal/configmgr"
	"github.com/plinthos/plinth/internal/events"
	"github.com/plinthos/plinth/internal/logstore"
	"github.com/plinthos/plinth/internal/service"
	"github.com/plinthos/plinth/internal/version"
	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/clientconfig"
	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/pki"
	"github.com/plinthos/plinth/pkg/role"
)

func TestVersion(t *testing.T) {
	e := newEnv(t)
	resp, err := e.machine.Version(e.reader(), &machine.VersionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := &machine.VersionResponse{Tag: version.Tag, GoVersion: runtime.Version(), Os: runtime.GOOS, Arch: runtime.GOARCH,
		Platform: testPlatform, Hostname: testHostname, BootId: e.bootID}
	if resp.Tag != want.Tag || resp.GoVersion != want.GoVersion || resp.Os != want.Os || resp.Arch != want.Arch ||
		resp.Platform != want.Platform || resp.Hostname != want.Hostname || resp.BootId != want.BootId {
		t.Errorf("Version = %v, want %v", resp, want)
	}
	if resp.BootId == "" || resp.Tag == "" || resp.GoVersion == "" {
		t.Errorf("Version leaves fields empty: %v", resp)
	}
}

func TestServiceListAndInfo(t *testing.T) {
	e := newEnv(t)
	list, err := e.machine.ServiceList(e.reader(), &machine.ServiceListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range list.Services {
		ids = append(ids, s.Id)
		if s.State != string(service.Running) {
			t.Errorf("service %s is %s, want Running", s.Id, s.State)
		}
		if s.Runner != "goroutine "+s.Id {
			t.Errorf("service %s runner = %q", s.Id, s.Runner)
		}
		if s.Since == nil || s.Since.AsTime().IsZero() {
			t.Errorf("service %s has no since time", s.Id)
		}
		if s.Health != "" {
			t.Errorf("service %s without health check has health %q", s.Id, s.Health)
		}
	}
	if !slices.Equal(ids, []string{"alpha", "beta"}) {
		t.Fatalf("services = %v, want [alpha beta] in the order they were added", ids)
	}

	info, err := e.machine.ServiceInfo(e.reader(), &machine.ServiceInfoRequest{Id: "beta"})
	if err != nil {
		t.Fatal(err)
	}
	s := info.Service
	if s.Id != "beta" || s.State != string(service.Running) || s.Restarts != 0 {
		t.Errorf("ServiceInfo(beta) = %v", s)
	}
	// Initialized -> Preparing -> Waiting -> Running.
	var path []string
	for _, tr := range s.History {
		path = append(path, tr.From+">"+tr.To)
		if tr.Time == nil || tr.Time.AsTime().IsZero() {
			t.Errorf("transition %v has no time", tr)
		}
	}
	if want := []string{"Initialized>Preparing", "Preparing>Waiting", "Waiting>Running"}; !slices.Equal(path, want) {
		t.Errorf("history = %v, want %v", path, want)
	}

	_, err = e.machine.ServiceInfo(e.reader(), &machine.ServiceInfoRequest{Id: "nope"})
	wantCode(t, err, codes.NotFound, `"nope"`)
}

func TestServiceStopStartRestart(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		call func(id string) error
	}{
		{"start", func(id string) error {
			_, err := e.machine.ServiceStart(e.admin(), &machine.ServiceStartRequest{Id: id})
			return err
		}},
		{"stop", func(id string) error {
			_, err := e.machine.ServiceStop(e.admin(), &machine.ServiceStopRequest{Id: id})
			return err
		}},
		{"restart", func(id string) error {
			_, err := e.machine.ServiceRestart(e.admin(), &machine.ServiceRestartRequest{Id: id})
			return err
		}},
	} {
		wantCode(t, tc.call("nope"), codes.NotFound, `no service "nope"`)
	}

	stop, err := e.machine.ServiceStop(e.admin(), &machine.ServiceStopRequest{Id: "beta"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stop.Message, `"beta" stopped`) {
		t.Errorf("stop message = %q", stop.Message)
	}
	// Stop waits for the runner to return.
	st, _ := e.sup.Status("beta")
	if st.State != service.Finished {
		t.Errorf("after ServiceStop beta is %s, want Finished", st.State)
	}

	start, err := e.machine.ServiceStart(e.admin(), &machine.ServiceStartRequest{Id: "beta"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(start.Message, `"beta" started`) {
		t.Errorf("start message = %q", start.Message)
	}
	e.waitState("beta", service.Running)

	restart, err := e.machine.ServiceRestart(e.admin(), &machine.ServiceRestartRequest{Id: "beta"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(restart.Message, `"beta" restarted`) {
		t.Errorf("restart message = %q", restart.Message)
	}
	e.waitState("beta", service.Running)
	info, err := e.machine.ServiceInfo(e.reader(), &machine.ServiceInfoRequest{Id: "beta"})
	if err != nil {
		t.Fatal(err)
	}
	if info.Service.Restarts != 1 {
		t.Errorf("restarts = %d, want 1 (the requested restart)", info.Service.Restarts)
	}
}

func TestServiceStartAfterShutdownIsFailedPrecondition(t *testing.T) {
	e := newEnv(t)
	// Once the supervisor shuts down, it refuses to start services.
	e.stopSupervisor()
	_, err := e.machine.ServiceStart(e.admin(), &machine.ServiceStartRequest{Id: "alpha"})
	wantCode(t, err, codes.FailedPrecondition, "shutting down")
}

func TestLogsTail(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.sayAlpha("line " + string(rune('0'+i)))
	}
	e.waitLog("alpha", "line 4")
	all := []string{"alpha started", "line 0", "line 1", "line 2", "line 3", "line 4"}

	for _, tc := range []struct {
		tail int32
		want []string
	}{
		{-1, all},
		{2, all[4:]},
		{100, all},
		{0, nil},
	} {
		stream, err := e.machine.Logs(e.reader(), &machine.LogsRequest{Service: "alpha", TailLines: tc.tail})
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := recvAll(stream.Recv)
		if err != nil {
			t.Fatalf("tail %d: %v", tc.tail, err)
		}
		if got := linesOf(dataOf(msgs)); !slices.Equal(got, tc.want) {
			t.Errorf("tail %d: lines = %q, want %q", tc.tail, got, tc.want)
		}
	}

	// machined's own log is not a service but may be read.
	e.logs.Log("machined").Write([]byte("machined says hi\n"))
	stream, err := e.machine.Logs(e.reader(), &machine.LogsRequest{Service: "machined", TailLines: -1})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := recvAll(stream.Recv)
	if err != nil {
		t.Fatal(err)
	}
	if got := linesOf(dataOf(msgs)); !slices.Equal(got, []string{"machined says hi"}) {
		t.Errorf("machined log = %q", got)
	}
}

func TestLogsFollow(t *testing.T) {
	e := newEnv(t)
	ctx := e.reader()
	stream, err := e.machine.Logs(ctx, &machine.LogsRequest{Service: "alpha", Follow: true, TailLines: 1})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(first.Data); got != "alpha started\n" {
		t.Fatalf("first message = %q, want the last line", got)
	}
	// The follower is subscribed now: a new line arrives.
	e.sayAlpha("written after the subscription")
	var got []string
	for !slices.Contains(got, "written after the subscription") {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, linesOf(m.Data)...)
	}
	if !slices.Equal(got, []string{"written after the subscription"}) {
		t.Errorf("followed lines = %q", got)
	}
}

func TestLogsErrors(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name     string
		req      *machine.LogsRequest
		code     codes.Code
		contains string
	}{
		{"unknown service", &machine.LogsRequest{Service: "nope"}, codes.NotFound, `no service "nope"`},
		{"unknown service follow", &machine.LogsRequest{Service: "nope", Follow: true}, codes.NotFound, `no service "nope"`},
		{"invalid name", &machine.LogsRequest{Service: "../etc/passwd"}, codes.InvalidArgument, "service name"},
		{"empty name", &machine.LogsRequest{}, codes.InvalidArgument, "service name"},
		{"no previous log", &machine.LogsRequest{Service: "beta", Previous: true}, codes.NotFound, `no log of "beta" from the previous boot`},
		{"kubernetes", &machine.LogsRequest{Service: "abc", Kubernetes: true}, codes.NotFound, "/var/log/pods"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream, err := e.machine.Logs(e.reader(), tc.req)
			if err == nil {
				_, err = recvAll(stream.Recv)
			}
			wantCode(t, err, tc.code, tc.contains)
		})
	}
}

func TestLogsPrevious(t *testing.T) {
	e := newEnv(t)
	stream, err := e.machine.Logs(e.reader(), &machine.LogsRequest{Service: "alpha", Previous: true})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := recvAll(stream.Recv)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(dataOf(msgs)); got != previousAlpha {
		t.Errorf("previous log = %q, want %q", got, previousAlpha)
	}
}

// TestLogsMessagesAtMost64KiB checks the promise of sendLines: no Logs message is larger
// than logChunk, even with lines of the largest length the log store keeps.
func TestLogsMessagesAtMost64KiB(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("x", logstore.MaxLineBytes)
	e.sayAlpha(long)
	e.waitLog("alpha", long)
	stream, err := e.machine.Logs(e.reader(), &machine.LogsRequest{Service: "alpha", TailLines: -1})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := recvAll(stream.Recv)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		if len(m.Data) > logChunk {
			t.Errorf("message %d has %d bytes, more than %d", i, len(m.Data), logChunk)
		}
	}
	if got, want := string(dataOf(msgs)), "alpha started\n"+long+"\n"; got != want {
		t.Errorf("log data differs: %d bytes, want %d", len(got), len(want))
	}
}

func TestEvents(t *testing.T) {
	e := newEnv(t)
	actor := events.NewActorID()
	var published []events.Event
	for i := range 4 {
		published = append(published, e.events.Publish(events.Event{ActorID: actor, Type: events.TypeTask, Message: "step " + string(rune('a'+i)),
			Data: map[string]string{"n": string(rune('0' + i))}}))
		e.events.Publish(events.Event{ActorID: "someone-else", Type: events.TypeTask, Message: "noise"})
	}
	ids := func(msgs []*machine.EventsResponse) []string {
		var out []string
		for _, m := range msgs {
			out = append(out, m.Id)
		}
		return out
	}
	idsOf := func(evs []events.Event) []string {
		var out []string
		for _, ev := range evs {
			out = append(out, ev.ID)
		}
		return out
	}
	get := func(req *machine.EventsRequest) []*machine.EventsResponse {
		t.Helper()
		stream, err := e.machine.Events(e.reader(), req)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := recvAll(stream.Recv)
		if err != nil {
			t.Fatal(err)
		}
		return msgs
	}

	// All of the actor's events, with their fields.
	msgs := get(&machine.EventsRequest{ActorId: actor, TailEvents: -1})
	if got, want := ids(msgs), idsOf(published); !slices.Equal(got, want) {
		t.Fatalf("events of the actor = %v, want %v", got, want)
	}
	m := msgs[1]
	if m.ActorId != actor || m.Type != events.TypeTask || m.Message != "step b" || m.Data["n"] != "1" ||
		!m.Time.AsTime().Equal(published[1].Time) {
		t.Errorf("event = %v, want %+v", m, published[1])
	}

	// The last two of the actor's events.
	if got, want := ids(get(&machine.EventsRequest{ActorId: actor, TailEvents: 2})), idsOf(published[2:]); !slices.Equal(got, want) {
		t.Errorf("tail 2 = %v, want %v", got, want)
	}
	// Since an ID.
	if got, want := ids(get(&machine.EventsRequest{ActorId: actor, SinceId: published[1].ID})), idsOf(published[2:]); !slices.Equal(got, want) {
		t.Errorf("since %s = %v, want %v", published[1].ID, got, want)
	}
	// Without tail, since or follow, everything buffered: the services' events too.
	all := get(&machine.EventsRequest{})
	var services, noise int
	for _, m := range all {
		switch {
		case m.Type == events.TypeService:
			services++
		case m.ActorId == "someone-else":
			noise++
		}
	}
	if services == 0 || noise != 4 || len(all) < 12 {
		t.Errorf("all events: %d, %d of services, %d of the other actor", len(all), services, noise)
	}
}

func TestEventsFollow(t *testing.T) {
	e := newEnv(t)
	actor := events.NewActorID()
	first := e.events.Publish(events.Event{ActorID: actor, Type: events.TypeSequence, Message: "before"})
	stream, err := e.machine.Events(e.reader(), &machine.EventsRequest{ActorId: actor, TailEvents: 1, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if m.Id != first.ID {
		t.Fatalf("first event = %v, want %v", m, first)
	}
	e.events.Publish(events.Event{ActorID: "someone-else", Type: events.TypeSequence, Message: "filtered out"})
	next := e.events.Publish(events.Event{ActorID: actor, Type: events.TypeSequence, Message: "after"})
	m, err = stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if m.Id != next.ID || m.Message != "after" {
		t.Errorf("followed event = %v, want %v", m, next)
	}
}

// withHostname returns the control-plane configuration with another host name: a change
// that applies without a reboot.
func (e *env) withHostname(h string) []byte {
	c := *e.configs.ControlPlane
	c.Machine.Network.Hostname = h
	return marshalConfig(e.t, &c)
}

func (e *env) currentHostname() string {
	c, _ := e.cfg.Current()
	return c.Machine.Network.Hostname
}

func TestApplyConfigurationInvalid(t *testing.T) {
	e := newEnv(t)
	_, before := e.cfg.Current()
	bad := []byte("apiVersion: plinth.dev/v1alpha1\nkind: MachineConfig\nmachine:\n  typo: 1\n")
	_, err := e.machine.ApplyConfiguration(e.admin(), &machine.ApplyConfigurationRequest{Data: bad, Mode: configmgr.ModeNoReboot})
	wantCode(t, err, codes.InvalidArgument, `machine.typo: unknown field "typo" (did you mean "type"?)`)

	_, err = e.machine.ApplyConfiguration(e.admin(), &machine.ApplyConfigurationRequest{Data: e.withHostname("x"), Mode: "sometimes"})
	wantCode(t, err, codes.InvalidArgument, `unknown mode "sometimes"`)

	if _, after := e.cfg.Current(); !bytes.Equal(before, after) {
		t.Error("a refused configuration changed the active one")
	}
	if calls := e.lifecycle.Calls(); len(calls) != 0 {
		t.Errorf("lifecycle calls: %v", calls)
	}
}

func TestApplyConfigurationDryRun(t *testing.T) {
	e := newEnv(t)
	_, before := e.cfg.Current()
	for _, mode := range []string{configmgr.ModeNoReboot, configmgr.ModeAuto, ""} {
		resp, err := e.machine.ApplyConfiguration(e.admin(), &machine.ApplyConfigurationRequest{Data: e.withHostname("dry-host"), Mode: mode, DryRun: true})
		if err != nil {
			t.Fatalf("mode %q: %v", mode, err)
		}
		if resp.Mode != configmgr.ModeNoReboot || !strings.Contains(resp.Diff, "+    hostname: dry-host") ||
			!strings.Contains(resp.Message, "dry run") || resp.ActorId != "" {
			t.Errorf("mode %q: dry run = %v", mode, resp)
		}
		if strings.Contains(resp.Diff, e.configs.ControlPlane.Cluster.Secret) {
			t.Errorf("the diff shows the cluster secret:\n%s", resp.Diff)
		}
	}
	// A change that would need a reboot, in dry run: nothing happens either.
	resp, err := e.machine.ApplyConfiguration(e.admin(), &machine.ApplyConfigurationRequest{Data: marshalConfig(t, e.configs.Worker), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Mode != configmgr.ModeReboot || !strings.Contains(resp.Diff, "type: worker") {
		t.Errorf("dry run of a reboot change = %v", resp)
	}
	if _, after := e.cfg.Current(); !bytes.Equal(before, after) {
		t.Error("a dry run changed the active configuration")
	}
	if calls := e.lifecycle.Calls(); len(calls) != 0 {
		t.Errorf("lifecycle calls: %v", calls)
	}
	stream, err := e.machine.Events(e.reader(), &machine.EventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := recvAll(stream.Recv)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.Type == events.TypeConfig {
			t.Errorf("a dry run published %v", m)
		}
	}
}

func TestApplyConfigurationNoReboot(t *testing.T) {
	e := newEnv(t)
	resp, err := e.machine.ApplyConfiguration(e.admin(), &machine.ApplyConfigurationRequest{Data: e.withHostname("new-host"), Mode: configmgr.ModeNoReboot})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Mode != configmgr.ModeNoReboot || resp.ActorId == "" || !strings.Contains(resp.Diff, "hostname: new-host") {
		t.Errorf("apply = %v", resp)
	}
	if got := e.currentHostname(); got != "new-host" {
		t.Errorf("active host name = %q", got)
	}
	if calls := e.lifecycle.Calls(); len(calls) != 0 {
		t.Errorf("a no-reboot apply called the lifecycle: %v", calls)
	}
	// The change is announced under the returned actor.
	stream, err := e.machine.Events(e.reader(), &machine.EventsRequest{ActorId: resp.ActorId, TailEvents: -1})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := recvAll(stream.Recv)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Type != events.TypeConfig || msgs[0].Data["mode"] != configmgr.ModeNoReboot {
		t.Errorf("events of the apply = %v", msgs)
	}
}

func TestApplyConfigurationNoRebootRefusesRebootChange(t *testing.T) {
	e := newEnv(t)
	_, before := e.cfg.Current()
	for _, mode := range []string{configmgr.ModeNoReboot, configmgr.ModeTry} {
		_, err := e.machine.ApplyConfiguration(e.admin(), &machine.ApplyConfigurationRequest{Data: marshalConfig(t, e.configs.Worker), Mode: mode})
		wantCode(t, err, codes.FailedPrecondition, "machine.type changed")
	}
	if _, after := e.cfg.Current(); !bytes.Equal(before, after) {
		t.Error("a refused configuration changed the active one")
	}
	if calls := e.lifecycle.Calls(); len(calls) != 0 {
		t.Errorf("lifecycle calls: %v", calls)
	}
}

func TestApplyConfigurationAutoReboots(t *testing.T) {
	e := newEnv(t)
	resp, err := e.machine.ApplyConfiguration(e.admin(), &machine.ApplyConfigurationRequest{Data: marshalConfig(t, e.configs.Worker), Mode: configmgr.ModeAuto})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Mode != configmgr.ModeReboot || resp.ActorId == "" || !strings.Contains(resp.Message, "reboot") {
		t.Errorf("apply = %v", resp)
	}
	calls := e.lifecycle.Calls()
	if want := []lifecycleCall{{Op: "reboot", Actor: resp.ActorId}}; !slices.Equal(calls, want) {
		t.Errorf("lifecycle calls = %v, want %v", calls, want)
	}
	if c, _ := e.cfg.Current(); c.Machine.Type != config.TypeWorker {
		t.Errorf("active type = %q, want worker", c.Machine.Type)
	}
}

func TestApplyConfigurationRebootFailure(t *testing.T) {
	e := newEnv(t)
	e.lifecycle.setErr(errors.New("no power"))
	_, err := e.machine.ApplyConfiguration(e.admin(), &machine.ApplyConfigurationRequest{Data: marshalConfig(t, e.configs.Worker)})
	wantCode(t, err, codes.Internal, "configuration stored, but the reboot failed: no power")
}

func TestApplyConfigurationStaged(t *testing.T) {
	e := newEnv(t)
	_, before := e.cfg.Current()
	resp, err := e.machine.ApplyConfiguration(e.admin(), &machine.ApplyConfigurationRequest{Data: marshalConfig(t, e.configs.Worker), Mode: configmgr.ModeStaged})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Mode != configmgr.ModeStaged || resp.ActorId == "" || !strings.Contains(resp.Message, "next reboot") {
		t.Errorf("apply = %v", resp)
	}
	if _, after := e.cfg.Current(); !bytes.Equal(before, after) {
		t.Error("a staged configuration became active at once")
	}
	if calls := e.lifecycle.Calls(); len(calls) != 0 {
		t.Errorf("a staged apply called the lifecycle: %v", calls)
	}
}

func TestApplyConfigurationTry(t *testing.T) {
	e := newEnv(t)
	resp, err := e.machine.ApplyConfiguration(e.admin(), &machine.ApplyConfigurationRequest{Data: e.withHostname("trial"), Mode: configmgr.ModeTry,
		TryTimeout: durationpb.New(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Mode != configmgr.ModeTry || !strings.Contains(resp.Message, "1h0m0s") {
		t.Errorf("apply = %v", resp)
	}
	if got := e.currentHostname(); got != "trial" {
		t.Errorf("active host name = %q", got)
	}
}

func TestGenerateClientConfiguration(t *testing.T) {
	e := newEnv(t)
	start := time.Now()
	resp, err := e.machine.GenerateClientConfiguration(e.admin(), &machine.GenerateClientConfigurationRequest{
		Roles: []string{role.Reader}, CrtTtl: durationpb.New(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := clientconfig.Decode(resp.Plinthconfig)
	if err != nil {
		t.Fatal(err)
	}
	name, ctx, err := cc.Current()
	if err != nil {
		t.Fatal(err)
	}
	if name != "demo" {
		t.Errorf("context = %q, want the cluster name", name)
	}
	if !slices.Equal(ctx.Endpoints, []string{testEndpoint}) {
		t.Errorf("endpoints = %v", ctx.Endpoints)
	}
	osCA := e.configs.ControlPlane.Machine.CA
	if !bytes.Equal(ctx.CA, osCA.Crt) || !bytes.Equal(resp.Ca, osCA.Crt) || !bytes.Equal(ctx.Crt, resp.Crt) || !bytes.Equal(ctx.Key, resp.Key) {
		t.Error("the plinthconfig does not hold the returned CA, certificate and key")
	}
	if bytes.Contains(resp.Plinthconfig, osCA.Key) || bytes.Contains(resp.Key, osCA.Key) {
		t.Error("the CA key leaked into the client config")
	}
	ca, err := pki.ParseCertPEM(osCA.Crt)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.ParseCertPEM(ctx.Crt)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cert.Subject.Organization, []string{role.Reader}) {
		t.Errorf("roles = %v, want [%s]", cert.Subject.Organization, role.Reader)
	}
	if err := pki.Verify(ca, cert, pki.UsageClient, time.Now()); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	if d := cert.NotAfter.Sub(start); d < 55*time.Minute || d > 2*time.Hour {
		t.Errorf("certificate valid until %v, %v from now, want about 1h", cert.NotAfter, d)
	}
	if _, err := pki.LoadKeyPair(ctx.Crt, ctx.Key); err != nil {
		t.Errorf("key does not match the certificate: %v", err)
	}

	// Several roles, and the default validity.
	resp, err = e.machine.GenerateClientConfiguration(e.admin(), &machine.GenerateClientConfigurationRequest{Roles: []string{role.Operator, role.EtcdBackup}})
	if err != nil {
		t.Fatal(err)
	}
	cert, err = pki.ParseCertPEM(resp.Crt)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cert.Subject.Organization, []string{role.Operator, role.EtcdBackup}) {
		t.Errorf("roles = %v", cert.Subject.Organization)
	}
	if d := cert.NotAfter.Sub(start); d < 29*24*time.Hour || d > 31*24*time.Hour {
		t.Errorf("default validity is %v, want 30 days", d)
	}
	// The lifetime is capped at one year: the CA's ten years are not for the asking
	// (regression test of finding 9).
	_, err = e.machine.GenerateClientConfiguration(e.admin(), &machine.GenerateClientConfigurationRequest{Roles: []string{role.Reader},
		CrtTtl: durationpb.New(10 * 365 * 24 * time.Hour)})
	wantCode(t, err, codes.InvalidArgument, "at most 8760h0m0s (one year)")

	for _, roles := range [][]string{{"os:root"}, {role.Reader, "os:root"}, nil, {""}} {
		_, err := e.machine.GenerateClientConfiguration(e.admin(), &machine.GenerateClientConfigurationRequest{Roles: roles})
		wantCode(t, err, codes.InvalidArgument, "role")
	}
}

func TestGenerateClientConfigurationWithoutCAKey(t *testing.T) {
	e := newEnv(t)
	// A worker holds no node API CA key.
	if _, err := e.machine.ApplyConfiguration(e.admin(), &machine.ApplyConfigurationRequest{Data: marshalConfig(t, e.configs.Worker)}); err != nil {
		t.Fatal(err)
	}
	_, err := e.machine.GenerateClientConfiguration(e.admin(), &machine.GenerateClientConfigurationRequest{Roles: []string{role.Reader}})
	wantCode(t, err, codes.FailedPrecondition, "CA key")
}

func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	reboot, err := e.machine.Reboot(e.admin(), &machine.RebootRequest{})
	if err != nil {
		t.Fatal(err)
	}
	shutdown, err := e.machine.Shutdown(e.admin(), &machine.ShutdownRequest{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	reset1, err := e.machine.Reset(e.admin(), &machine.ResetRequest{Graceful: true, Reboot: false})
	if err != nil {
		t.Fatal(err)
	}
	reset2, err := e.machine.Reset(e.admin(), &machine.ResetRequest{Graceful: false, Reboot: true, WipeMode: "all"})
	if err != nil {
		t.Fatal(err)
	}
	// An unknown wipe mode, and user disks (none can be configured), are refused before
	// anything happens.
	_, err = e.machine.Reset(e.admin(), &machine.ResetRequest{WipeMode: "everything"})
	wantCode(t, err, codes.InvalidArgument, "unknown wipe mode")
	_, err = e.machine.Reset(e.admin(), &machine.ResetRequest{WipeMode: "user-disks"})
	wantCode(t, err, codes.FailedPrecondition, "no user disks")
	want := []lifecycleCall{
		{Op: "reboot", Actor: reboot.ActorId},
		{Op: "shutdown", Actor: shutdown.ActorId},
		{Op: "reset", Actor: reset1.ActorId, Graceful: true, Wipe: WipeSystemDisk},
		{Op: "reset", Actor: reset2.ActorId, Reboot: true, Wipe: WipeAll},
	}
	if got := e.lifecycle.Calls(); !slices.Equal(got, want) {
		t.Errorf("calls = %v, want %v", got, want)
	}
	seen := map[string]bool{}
	for _, c := range want {
		if len(c.Actor) != 32 || seen[c.Actor] {
			t.Errorf("actor id %q is not a fresh 32-digit id", c.Actor)
		}
		seen[c.Actor] = true
	}

	e.lifecycle.setErr(errors.New("busy"))
	_, err = e.machine.Reboot(e.admin(), &machine.RebootRequest{})
	wantCode(t, err, codes.FailedPrecondition, "busy")
	_, err = e.machine.Shutdown(e.admin(), &machine.ShutdownRequest{})
	wantCode(t, err, codes.FailedPrecondition, "busy")
	_, err = e.machine.Reset(e.admin(), &machine.ResetRequest{})
	wantCode(t, err, codes.FailedPrecondition, "busy")
}

// TestProtectedServicesCannotBeStopped is the regression test of finding 5: an operator
// stopping apid cut the node off its API until a power cycle. A protected service cannot
// be stopped through the API by any role, and only an admin may restart it (it comes back
// by itself).
func TestProtectedServicesCannotBeStopped(t *testing.T) {
	e := newEnv(t)
	sup := service.New(clock.Real{}, nil, events.New(0, clock.Real{}), nil)
	for _, id := range []string{"apid", "trustd"} {
		if err := sup.Add(service.Service{ID: id, Protected: true, Runner: service.GoroutineRunner{Name: id, Func: func(ctx context.Context, _ io.Writer) error {
			<-ctx.Done()
			return nil
		}}}); err != nil {
			t.Fatal(err)
		}
	}
	s := &MachineServer{Supervisor: sup}
	for _, id := range []string{"apid", "trustd"} {
		for name, ctx := range map[string]context.Context{"admin": e.admin(), "operator": e.operator()} {
			_, err := s.ServiceStop(ctx, &machine.ServiceStopRequest{Id: id})
			wantCode(t, err, codes.FailedPrecondition, "cannot be stopped through the node API")
			if name == "operator" {
				_, err = s.ServiceRestart(ctx, &machine.ServiceRestartRequest{Id: id})
				wantCode(t, err, codes.PermissionDenied, "needs os:admin")
			}
		}
	}
}
