package machineapi

import (
	"context"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"

	"github.com/plinthos/plinth/internal/events"
	"github.com/plinthos/plinth/pkg/api/machine"
	rpb "github.com/plinthos/plinth/pkg/api/resource"
)

// TestStreamCancellationLeaksNothing opens every following stream, receives from each,
// and cancels the client context: the server's side of each stream (log follower, event
// subscription, kernel log reader, resource watcher) must end by the cancellation alone,
// while the connection and the server stay up. Then everything is torn down and no
// goroutine may remain.
func TestStreamCancellationLeaksNothing(t *testing.T) {
	e := newEnv(t)
	// Make sure the connection is up before taking the reference set of goroutines.
	if _, err := e.machine.Version(e.reader(), &machine.VersionRequest{}); err != nil {
		t.Fatal(err)
	}
	before := goleak.IgnoreCurrent()

	actor := events.NewActorID()
	e.events.Publish(events.Event{ActorID: actor, Type: events.TypeTask, Message: "there"})

	ctx, cancel := context.WithCancel(e.admin())
	logs, err := e.machine.Logs(ctx, &machine.LogsRequest{Service: "alpha", Follow: true, TailLines: -1})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := e.machine.Events(ctx, &machine.EventsRequest{ActorId: actor, TailEvents: -1, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	dmesg, err := e.machine.Dmesg(ctx, &machine.DmesgRequest{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	watch, err := e.resource.Watch(ctx, &rpb.WatchRequest{Type: "hostname"})
	if err != nil {
		t.Fatal(err)
	}
	watchID, err := e.resource.Watch(ctx, &rpb.WatchRequest{Type: "mc", Id: "active"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := logs.Recv(); err != nil {
		t.Fatal(err)
	}
	if _, err := evs.Recv(); err != nil {
		t.Fatal(err)
	}
	if _, err := dmesg.Recv(); err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatal(err)
	}
	if _, err := watchID.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	for name, recv := range map[string]func() error{
		"logs":     func() error { _, err := logs.Recv(); return err },
		"events":   func() error { _, err := evs.Recv(); return err },
		"dmesg":    func() error { _, err := dmesg.Recv(); return err },
		"watch":    func() error { _, err := watch.Recv(); return err },
		"watch id": func() error { _, err := watchID.Recv(); return err },
	} {
		var err error
		for err == nil {
			err = recv()
		}
		t.Run(name, func(t *testing.T) { wantCode(t, err, codes.Canceled, "") })
	}
	// The server ends its side of the streams by itself.
	goleak.VerifyNone(t, before)
	if t.Failed() {
		return
	}

	// The server still answers.
	if _, err := e.machine.Version(e.reader(), &machine.VersionRequest{}); err != nil {
		t.Fatal(err)
	}
	e.close()
	goleak.VerifyNone(t)
}
