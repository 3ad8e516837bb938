package machineapi

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/plinthos/plinth/internal/resource"
	"github.com/plinthos/plinth/internal/resources"
	"github.com/plinthos/plinth/internal/yamlx"
	rpb "github.com/plinthos/plinth/pkg/api/resource"
	"github.com/plinthos/plinth/pkg/role"
)

func TestResourceGet(t *testing.T) {
	e := newEnv(t)
	start := time.Now()
	for _, typ := range []string{resources.HostnameType, "hostname", "Hostnames", "  HOSTNAME "} {
		resp, err := e.resource.Get(e.reader(), &rpb.GetRequest{Type: typ, Id: resources.HostnameID})
		if err != nil {
			t.Fatalf("type %q: %v", typ, err)
		}
		md := resp.Resource.Metadata
		if md.Namespace != resources.NamespaceNetwork || md.Type != resources.HostnameType || md.Id != resources.HostnameID ||
			md.Version != 1 || md.Phase != string(resource.PhaseRunning) {
			t.Errorf("type %q: metadata = %v", typ, md)
		}
		if md.Created.AsTime().After(start) || !md.Updated.AsTime().Equal(md.Created.AsTime()) {
			t.Errorf("type %q: times = %v, %v", typ, md.Created.AsTime(), md.Updated.AsTime())
		}
		var spec resources.HostnameSpec
		if err := yamlx.UnmarshalStrict(resp.Resource.Spec, &spec); err != nil {
			t.Fatal(err)
		}
		if spec != (resources.HostnameSpec{Hostname: testHostname, Domainname: "example.org"}) {
			t.Errorf("spec = %+v", spec)
		}
	}
	// With the namespace given.
	if _, err := e.resource.Get(e.reader(), &rpb.GetRequest{Namespace: resources.NamespaceNetwork, Type: "nodeaddress", Id: resources.DefaultID}); err != nil {
		t.Error(err)
	}

	_, err := e.resource.Get(e.reader(), &rpb.GetRequest{Type: "hostname", Id: "nope"})
	wantCode(t, err, codes.NotFound, "not found")
	_, err = e.resource.Get(e.reader(), &rpb.GetRequest{Namespace: "elsewhere", Type: "hostname", Id: resources.HostnameID})
	wantCode(t, err, codes.NotFound, "not found")
	_, err = e.resource.Get(e.reader(), &rpb.GetRequest{Type: "Bogus", Id: "x"})
	wantCode(t, err, codes.NotFound, `unknown resource type "Bogus"`)
}

// TestResourceGetWithoutID: a request without an id is the client's mistake.
func TestResourceGetWithoutID(t *testing.T) {
	e := newEnv(t)
	_, err := e.resource.Get(e.reader(), &rpb.GetRequest{Type: "hostname"})
	wantCode(t, err, codes.InvalidArgument, "")
}

func TestResourceSensitive(t *testing.T) {
	e := newEnv(t)
	reader := func() context.Context { return e.reader() }
	operator := func() context.Context { return asRole(testCtx(t), role.Operator) }
	none := func() context.Context { return testCtx(t) }
	for _, typ := range []string{"mc", resources.MachineConfigType, "apicertificate"} {
		for name, ctx := range map[string]func() context.Context{"reader": reader, "operator": operator, "no role": none} {
			_, err := e.resource.Get(ctx(), &rpb.GetRequest{Type: typ, Id: resources.ActiveID})
			wantCode(t, err, codes.PermissionDenied, "needs role os:admin")

			list, err := e.resource.List(ctx(), &rpb.ListRequest{Type: typ})
			if err == nil {
				_, err = recvAll(list.Recv)
			}
			wantCode(t, err, codes.PermissionDenied, "needs role os:admin")

			watch, err := e.resource.Watch(ctx(), &rpb.WatchRequest{Type: typ})
			if err == nil {
				_, err = watch.Recv()
			}
			if err == nil {
				t.Fatalf("%s watched %s", name, typ)
			}
			wantCode(t, err, codes.PermissionDenied, "needs role os:admin")
		}
	}

	// An admin reads it, also with several roles in one or several metadata values.
	for _, ctx := range []context.Context{
		e.admin(),
		asRole(testCtx(t), role.Reader, role.Admin),
		asRole(asRole(testCtx(t), role.Reader), " "+role.Admin+" "),
	} {
		resp, err := e.resource.Get(ctx, &rpb.GetRequest{Type: "mc", Id: resources.ActiveID})
		if err != nil {
			t.Fatal(err)
		}
		if md := resp.Resource.Metadata; md.Namespace != resources.NamespaceConfig || md.Type != resources.MachineConfigType {
			t.Errorf("metadata = %v", md)
		}
		if !strings.Contains(string(resp.Resource.Spec), "type: controlplane") {
			t.Errorf("spec = %s", resp.Resource.Spec)
		}
	}
}

func TestResourceList(t *testing.T) {
	e := newEnv(t)
	r := resource.New(resources.NamespaceNetwork, resources.HostnameType, "another", resources.HostnameSpec{Hostname: "another"})
	if err := e.store.Create(r); err != nil {
		t.Fatal(err)
	}
	list, err := e.resource.List(e.reader(), &rpb.ListRequest{Type: "hostnames"})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := recvAll(list.Recv)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range msgs {
		ids = append(ids, m.Resource.Metadata.Id)
	}
	if !slices.Equal(ids, []string{"another", resources.HostnameID}) {
		t.Errorf("ids = %v, want them sorted", ids)
	}

	// A type without resources, or a namespace without them, lists nothing.
	for _, req := range []*rpb.ListRequest{{Type: "svc"}, {Namespace: "elsewhere", Type: "hostname"}} {
		list, err := e.resource.List(e.reader(), req)
		if err != nil {
			t.Fatal(err)
		}
		if msgs, err := recvAll(list.Recv); err != nil || len(msgs) != 0 {
			t.Errorf("list %v = %v, %v", req, msgs, err)
		}
	}

	list, err = e.resource.List(e.reader(), &rpb.ListRequest{Type: "nope"})
	if err == nil {
		_, err = recvAll(list.Recv)
	}
	wantCode(t, err, codes.NotFound, "unknown resource type")
}

func TestResourceDefinitions(t *testing.T) {
	e := newEnv(t)
	resp, err := e.resource.Definitions(e.reader(), &rpb.DefinitionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := e.registry.List()
	if len(resp.Definitions) != len(want) || len(want) != 17 {
		t.Fatalf("%d definitions served, %d registered, want 17", len(resp.Definitions), len(want))
	}
	for i, d := range resp.Definitions {
		w := want[i]
		if d.Type != w.Type || !slices.Equal(d.Aliases, w.Aliases) || d.DefaultNamespace != w.DefaultNamespace || d.Sensitive != w.Sensitive {
			t.Errorf("definition %d = %v, want %+v", i, d, w)
		}
	}
	var sensitive []string
	for _, d := range resp.Definitions {
		if d.Sensitive {
			sensitive = append(sensitive, d.Type)
		}
	}
	if want := []string{resources.APICertificateType, resources.MachineConfigType}; !slices.Equal(sensitive, want) {
		t.Errorf("sensitive = %v, want %v", sensitive, want)
	}
}

// recvWatch receives one watch event.
func recvWatch(t *testing.T, w grpc.ServerStreamingClient[rpb.WatchResponse]) *rpb.WatchResponse {
	t.Helper()
	m, err := w.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func describeWatch(m *rpb.WatchResponse) string {
	if m.Resource == nil {
		return m.EventType.String()
	}
	return m.EventType.String() + " " + m.Resource.Metadata.Id
}

func TestResourceWatch(t *testing.T) {
	e := newEnv(t)
	if err := e.store.Create(resource.New(resources.NamespaceNetwork, resources.HostnameType, "another", resources.HostnameSpec{Hostname: "another"})); err != nil {
		t.Fatal(err)
	}
	w, err := e.resource.Watch(e.reader(), &rpb.WatchRequest{Type: "hostname"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 3 {
		got = append(got, describeWatch(recvWatch(t, w)))
	}
	if want := []string{"EVENT_TYPE_CREATED another", "EVENT_TYPE_CREATED hostname", "EVENT_TYPE_BOOTSTRAPPED"}; !slices.Equal(got, want) {
		t.Fatalf("bootstrap = %v, want %v", got, want)
	}

	// A live update.
	r, err := e.store.Get(resources.NamespaceNetwork, resources.HostnameType, resources.HostnameID)
	if err != nil {
		t.Fatal(err)
	}
	r.(*resource.Typed[resources.HostnameSpec]).TypedSpec().Hostname = "renamed"
	if err := e.store.Update(r); err != nil {
		t.Fatal(err)
	}
	m := recvWatch(t, w)
	if m.EventType != rpb.EventType_EVENT_TYPE_UPDATED || m.Resource.Metadata.Id != resources.HostnameID || m.Resource.Metadata.Version != 2 ||
		!strings.Contains(string(m.Resource.Spec), "hostname: renamed") {
		t.Errorf("update = %v", m)
	}
	// A destruction.
	if err := e.store.Destroy(resources.NamespaceNetwork, resources.HostnameType, "another", ""); err != nil {
		t.Fatal(err)
	}
	if m := recvWatch(t, w); describeWatch(m) != "EVENT_TYPE_DESTROYED another" {
		t.Errorf("destroy = %v", m)
	}
	// Another namespace or type is not watched.
	if err := e.store.Create(resource.New("elsewhere", resources.HostnameType, "x", resources.HostnameSpec{})); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Create(resource.New(resources.NamespaceRuntime, resources.ServiceType, "x", resources.ServiceSpec{})); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Create(resource.New(resources.NamespaceNetwork, resources.HostnameType, "third", resources.HostnameSpec{})); err != nil {
		t.Fatal(err)
	}
	if m := recvWatch(t, w); describeWatch(m) != "EVENT_TYPE_CREATED third" {
		t.Errorf("next event = %v", m)
	}
}

func TestResourceWatchID(t *testing.T) {
	e := newEnv(t)
	w, err := e.resource.Watch(e.reader(), &rpb.WatchRequest{Type: "hostname", Id: "later"})
	if err != nil {
		t.Fatal(err)
	}
	// The resource does not exist yet: only the marker.
	if m := recvWatch(t, w); describeWatch(m) != "EVENT_TYPE_BOOTSTRAPPED" {
		t.Fatalf("first event = %v", m)
	}
	if err := e.store.Create(resource.New(resources.NamespaceNetwork, resources.HostnameType, "other", resources.HostnameSpec{})); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Create(resource.New(resources.NamespaceNetwork, resources.HostnameType, "later", resources.HostnameSpec{Hostname: "late"})); err != nil {
		t.Fatal(err)
	}
	if m := recvWatch(t, w); describeWatch(m) != "EVENT_TYPE_CREATED later" {
		t.Errorf("event = %v, want only the watched id", m)
	}
}

func TestResourceWatchEndsWithClient(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(e.reader())
	w, err := e.resource.Watch(ctx, &rpb.WatchRequest{Type: "hostname"})
	if err != nil {
		t.Fatal(err)
	}
	recvWatch(t, w)
	cancel()
	for {
		if _, err := w.Recv(); err != nil {
			wantCode(t, err, codes.Canceled, "")
			break
		}
	}
	w, err = e.resource.Watch(e.reader(), &rpb.WatchRequest{Type: "bogus"})
	if err == nil {
		_, err = w.Recv()
	}
	wantCode(t, err, codes.NotFound, "unknown resource type")
}

// TestResourceWatchOverflow: a watcher that falls further behind than the store's event
// log keeps is told so with ResourceExhausted, after what it had received.
func TestResourceWatchOverflow(t *testing.T) {
	// A small flow-control window without the dynamic window, so that a client that does
	// not read blocks the server after a few large messages.
	e := newEnvWith(t, envOptions{
		storeOpts: []resource.StoreOption{resource.WithEventLogSize(2)},
		dialOpts:  []grpc.DialOption{grpc.WithInitialWindowSize(64 << 10), grpc.WithInitialConnWindowSize(64 << 10)},
	})
	big := strings.Repeat("a", 256<<10)
	w, err := e.resource.Watch(e.reader(), &rpb.WatchRequest{Type: "nodeaddress"})
	if err != nil {
		t.Fatal(err)
	}
	// The watch has started once the first event is there.
	if m := recvWatch(t, w); describeWatch(m) != "EVENT_TYPE_CREATED default" {
		t.Fatalf("first event = %v", m)
	}
	for i := range 60 {
		r, err := e.store.Get(resources.NamespaceNetwork, resources.NodeAddressType, resources.DefaultID)
		if err != nil {
			t.Fatal(err)
		}
		r.(*resource.Typed[resources.NodeAddressSpec]).TypedSpec().Addresses = []string{big, string(rune('a' + i%26))}
		if err := e.store.Update(r); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := recvAll(w.Recv)
	wantCode(t, err, codes.ResourceExhausted, "fell behind")
	if len(msgs) == 0 || msgs[0].EventType != rpb.EventType_EVENT_TYPE_BOOTSTRAPPED || len(msgs) > 40 {
		t.Errorf("%d events before the overflow", len(msgs))
	}
}
