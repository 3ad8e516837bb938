package role_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/plinthos/plinth/pkg/role"
)

func TestParseAccepts(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []role.Role
	}{
		{"os:admin", []role.Role{role.Admin}},
		{"os:reader,os:operator", []role.Role{role.Reader, role.Operator}},
		{" os:admin , os:etcd:backup ", []role.Role{role.Admin, role.EtcdBackup}},
		{"os:admin,os:reader,os:admin", []role.Role{role.Admin, role.Reader}},
		{"os:reader,,os:reader,", []role.Role{role.Reader}},
		{strings.Join(role.All, ","), role.All},
	} {
		got, err := role.Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Parse(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct {
		in, wantErr string
	}{
		{"", "no role given"},
		{" , ,", "no role given"},
		{"os:root", `unknown role "os:root"`},
		{"os:admin,admin", `unknown role "admin"`},
		{"OS:ADMIN", `unknown role "OS:ADMIN"`},
		{"os:admin os:reader", `unknown role "os:admin os:reader"`},
	} {
		got, err := role.Parse(tc.in)
		if err == nil {
			t.Errorf("Parse(%q) = %q, want an error", tc.in, got)
			continue
		}
		if !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("Parse(%q) error %q does not contain %q", tc.in, err, tc.wantErr)
		}
		// The message must tell the user which roles exist.
		for _, r := range role.All {
			if !strings.Contains(err.Error(), r) {
				t.Errorf("Parse(%q) error %q does not list role %s", tc.in, err, r)
			}
		}
	}
}

func TestAllIsComplete(t *testing.T) {
	want := []role.Role{role.Admin, role.Operator, role.Reader, role.EtcdBackup, role.Metrics}
	if !slices.Equal(role.All, want) {
		t.Errorf("All = %q, want %q", role.All, want)
	}
}
