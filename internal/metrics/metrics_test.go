package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/internal/controller"
	"github.com/plinthos/plinth/internal/service"
	"github.com/plinthos/plinth/pkg/role"
)

func TestText(t *testing.T) {
	yes, no := true, false
	m := New(Sources{
		Services: func() []service.Status {
			return []service.Status{
				{ID: "kubelet", State: service.Running, Healthy: &yes, Restarts: 3},
				{ID: "etcd", State: service.Waiting, Healthy: &no},
				{ID: "trustd", State: service.Running},
			}
		},
		Controllers: func() []controller.ControllerStatus {
			return []controller.ControllerStatus{{Name: "k8s.KubeletSpec", Running: true, Runs: 2, Failures: 1}}
		},
		Resources: func() []ResourceCount {
			return []ResourceCount{{Namespace: "runtime", Type: "Services.runtime.plinth.dev", Count: 9}}
		},
		LogBytes: func() map[string]int64 { return map[string]int64{"kubelet": 4096} },
	})

	// A call of an admin that succeeds, a reader's that fails, and one apid sent no role with.
	unary := m.UnaryInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/plinth.machine.v1alpha1.MachineService/Version"}
	admin := metadata.NewIncomingContext(context.Background(), metadata.Pairs(role.MetadataKey, role.Reader, role.MetadataKey, role.Admin))
	if _, err := unary(admin, nil, info, func(context.Context, any) (any, error) { return "ok", nil }); err != nil {
		t.Fatal(err)
	}
	reader := metadata.NewIncomingContext(context.Background(), metadata.Pairs(role.MetadataKey, role.Reader))
	denied := status.Error(codes.NotFound, "no")
	if _, err := unary(reader, nil, info, func(context.Context, any) (any, error) { return nil, denied }); !errors.Is(err, denied) {
		t.Fatalf("the handler's error was not passed on: %v", err)
	}
	_, _ = unary(context.Background(), nil, info, func(context.Context, any) (any, error) { return nil, nil })

	text, err := m.Text()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`plinth_service_running{service="kubelet"} 1`,
		`plinth_service_running{service="etcd"} 0`,
		`plinth_service_state{service="etcd",state="Waiting"} 1`,
		`plinth_service_healthy{service="kubelet"} 1`,
		`plinth_service_healthy{service="etcd"} 0`,
		`plinth_service_restarts_total{service="kubelet"} 3`,
		`plinth_controller_running{controller="k8s.KubeletSpec"} 1`,
		`plinth_controller_runs_total{controller="k8s.KubeletSpec"} 2`,
		`plinth_controller_failures_total{controller="k8s.KubeletSpec"} 1`,
		`plinth_resources{namespace="runtime",type="Services.runtime.plinth.dev"} 9`,
		`plinth_log_store_bytes{log="kubelet"} 4096`,
		`plinth_api_calls_total{code="OK",method="/plinth.machine.v1alpha1.MachineService/Version",role="os:admin"} 1`,
		`plinth_api_calls_total{code="NotFound",method="/plinth.machine.v1alpha1.MachineService/Version",role="os:reader"} 1`,
		`plinth_api_calls_total{code="OK",method="/plinth.machine.v1alpha1.MachineService/Version",role="none"} 1`,
		`plinth_api_call_duration_seconds_count{method="/plinth.machine.v1alpha1.MachineService/Version",role="os:admin"} 1`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(string(text), want) {
			t.Errorf("the metrics lack %q", want)
		}
	}
	// A service without a health check has no health metric.
	if strings.Contains(string(text), `plinth_service_healthy{service="trustd"}`) {
		t.Error("a service without a health check reports health")
	}
}

type stream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s stream) Context() context.Context { return s.ctx }

func TestStreamInterceptor(t *testing.T) {
	m := New(Sources{})
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(role.MetadataKey, role.Operator))
	err := m.StreamInterceptor()(nil, stream{ctx: ctx}, &grpc.StreamServerInfo{FullMethod: "/x/Logs"}, func(any, grpc.ServerStream) error {
		return status.Error(codes.Canceled, "client went away")
	})
	if status.Code(err) != codes.Canceled {
		t.Fatalf("err %v", err)
	}
	text, _ := m.Text()
	if !strings.Contains(string(text), `plinth_api_calls_total{code="Canceled",method="/x/Logs",role="os:operator"} 1`) {
		t.Errorf("stream call not counted:\n%s", text)
	}
}
