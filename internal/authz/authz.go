// Package authz decides which node API calls a client may make. Every RPC has a minimum
// role in one table; an RPC missing from the table is refused (deny by default).
package authz

import (
	"fmt"
	"slices"
	"strings"

	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/api/resource"
	"github.com/plinthos/plinth/pkg/role"
)

// Level is what a call needs.
type Level int

// The levels, from least to most privileged. Reader < Operator < Admin; EtcdBackup is a
// separate capability that Admin and Operator also hold, and Metrics one that every role
// but EtcdBackup holds.
const (
	Reader Level = iota + 1
	Operator
	Admin
	EtcdBackup
	Metrics
)

func (l Level) String() string {
	switch l {
	case Reader:
		return role.Reader
	case Operator:
		return role.Operator
	case Admin:
		return role.Admin
	case EtcdBackup:
		return role.EtcdBackup
	case Metrics:
		return role.Metrics
	}
	return fmt.Sprintf("level(%d)", l)
}

func m(name string) string { return "/" + machine.MachineService_ServiceDesc.ServiceName + "/" + name }
func r(name string) string {
	return "/" + resource.ResourceService_ServiceDesc.ServiceName + "/" + name
}

// Table maps full gRPC method names to the level they need.
var Table = map[string]Level{
	m("Version"):                     Reader,
	m("ServiceList"):                 Reader,
	m("ServiceInfo"):                 Reader,
	m("ServiceStart"):                Operator,
	m("ServiceStop"):                 Operator,
	m("ServiceRestart"):              Operator,
	m("Logs"):                        Reader,
	m("Dmesg"):                       Reader,
	m("Events"):                      Reader,
	m("Processes"):                   Reader,
	m("Memory"):                      Reader,
	m("Mounts"):                      Reader,
	m("List"):                        Reader,
	m("Read"):                        Reader,
	m("Copy"):                        Operator,
	m("Reboot"):                      Operator,
	m("Shutdown"):                    Operator,
	m("Reset"):                       Admin,
	m("Upgrade"):                     Admin,
	m("Rollback"):                    Admin,
	m("ApplyConfiguration"):          Admin,
	m("GenerateClientConfiguration"): Admin,
	m("Bootstrap"):                   Admin,
	m("Kubeconfig"):                  Admin,
	m("Containers"):                  Reader,
	m("Stats"):                       Reader,
	m("ImageList"):                   Reader,
	m("ImageImport"):                 Operator,
	m("ImageRemove"):                 Operator,
	m("Metrics"):                     Metrics,
	m("EtcdRecover"):                 Admin,
	m("EtcdMembers"):                 Reader,
	m("EtcdStatus"):                  Reader,
	m("EtcdSnapshot"):                EtcdBackup,
	m("EtcdRemoveMember"):            Admin,
	m("EtcdForfeitLeadership"):       Admin,
	m("EtcdLeave"):                   Admin,
	r("Get"):                         Reader,
	r("List"):                        Reader,
	r("Watch"):                       Reader,
	r("Definitions"):                 Reader,
}

// Holds reports whether a client with roles has level l.
func Holds(roles []string, l Level) bool {
	has := func(r string) bool { return slices.Contains(roles, r) }
	switch l {
	case Reader:
		return has(role.Admin) || has(role.Operator) || has(role.Reader)
	case Operator:
		return has(role.Admin) || has(role.Operator)
	case Admin:
		return has(role.Admin)
	case EtcdBackup:
		return has(role.Admin) || has(role.Operator) || has(role.EtcdBackup)
	case Metrics:
		return has(role.Admin) || has(role.Operator) || has(role.Reader) || has(role.Metrics)
	}
	return false
}

// Check returns nil when roles may call method, else an error that says what is needed.
func Check(method string, roles []string) error {
	need, ok := Table[method]
	if !ok {
		return fmt.Errorf("%s is not a known node API call; refused", method)
	}
	if len(roles) == 0 {
		return fmt.Errorf("the client certificate carries no role; %s needs %s", shortName(method), need)
	}
	if !Holds(roles, need) {
		return fmt.Errorf("%s needs role %s (or higher); this client has %s", shortName(method), need, strings.Join(roles, ", "))
	}
	return nil
}

func shortName(method string) string {
	return method[strings.LastIndex(method, "/")+1:]
}
