package authz

import (
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/api/resource"
	"github.com/plinthos/plinth/pkg/role"
)

func methods(desc grpc.ServiceDesc) []string {
	var out []string
	for _, md := range desc.Methods {
		out = append(out, "/"+desc.ServiceName+"/"+md.MethodName)
	}
	for _, sd := range desc.Streams {
		out = append(out, "/"+desc.ServiceName+"/"+sd.StreamName)
	}
	return out
}

// TestEveryRPCHasALevel fails when an RPC is added to the API without a row in Table.
func TestEveryRPCHasALevel(t *testing.T) {
	all := append(methods(machine.MachineService_ServiceDesc), methods(resource.ResourceService_ServiceDesc)...)
	for _, name := range all {
		if _, ok := Table[name]; !ok {
			t.Errorf("%s has no entry in the authorization table", name)
		}
	}
	if len(Table) != len(all) {
		t.Errorf("table has %d entries for %d RPCs: remove entries of RPCs that no longer exist", len(Table), len(all))
	}
}

func TestCheck(t *testing.T) {
	cases := []struct {
		roles []string
		level Level
		want  bool
	}{
		{[]string{role.Admin}, Admin, true},
		{[]string{role.Admin}, Operator, true},
		{[]string{role.Admin}, Reader, true},
		{[]string{role.Admin}, EtcdBackup, true},
		{[]string{role.Operator}, Admin, false},
		{[]string{role.Operator}, Operator, true},
		{[]string{role.Operator}, Reader, true},
		{[]string{role.Operator}, EtcdBackup, true},
		{[]string{role.Reader}, Admin, false},
		{[]string{role.Reader}, Operator, false},
		{[]string{role.Reader}, Reader, true},
		{[]string{role.Reader}, EtcdBackup, false},
		{[]string{role.EtcdBackup}, Reader, false},
		{[]string{role.EtcdBackup}, EtcdBackup, true},
		{[]string{role.Admin}, Metrics, true},
		{[]string{role.Operator}, Metrics, true},
		{[]string{role.Reader}, Metrics, true},
		{[]string{role.Metrics}, Metrics, true},
		{[]string{role.EtcdBackup}, Metrics, false},
		// The metrics role reads metrics and nothing else.
		{[]string{role.Metrics}, Reader, false},
		{[]string{role.Metrics}, EtcdBackup, false},
		{[]string{"os:root"}, Reader, false},
		{nil, Reader, false},
		{[]string{role.Reader, role.Operator}, Operator, true},
	}
	for _, c := range cases {
		if got := Holds(c.roles, c.level); got != c.want {
			t.Errorf("Holds(%v, %v) = %v, want %v", c.roles, c.level, got, c.want)
		}
	}
	reboot := "/" + machine.MachineService_ServiceDesc.ServiceName + "/Reboot"
	err := Check(reboot, []string{role.Reader})
	if err == nil || !strings.Contains(err.Error(), "Reboot needs role os:operator") || !strings.Contains(err.Error(), "os:reader") {
		t.Errorf("Check(Reboot, reader) = %v", err)
	}
	if err := Check(reboot, []string{role.Operator}); err != nil {
		t.Errorf("Check(Reboot, operator) = %v", err)
	}
	if err := Check("/plinth.machine.v1alpha1.MachineService/Unknown", []string{role.Admin}); err == nil {
		t.Error("an RPC missing from the table was allowed")
	}
	if err := Check(reboot, nil); err == nil || !strings.Contains(err.Error(), "no role") {
		t.Errorf("Check without roles = %v", err)
	}
}
