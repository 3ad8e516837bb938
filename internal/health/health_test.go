package health

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestEtcdMembersCheck(t *testing.T) {
	var query string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query = r.URL.RawQuery
		_, _ = w.Write([]byte(`{"items":[{"metadata":{"name":"cp-1"}},{"metadata":{"name":"cp-2"}}]}`))
	}))
	t.Cleanup(srv.Close)
	c := &Client{server: srv.URL, http: srv.Client()}
	for _, tc := range []struct {
		name    string
		members []EtcdMember
		want    int
		err     string
	}{
		{"all voting control planes", []EtcdMember{{Name: "cp-1"}, {Name: "cp-2"}}, 2, ""},
		{"a learner", []EtcdMember{{Name: "cp-1"}, {Name: "cp-2", IsLearner: true}}, 2, "learners not promoted yet: cp-2"},
		{"an unstarted learner", []EtcdMember{{Name: "cp-1"}, {IsLearner: true}}, 2, "(not started)"},
		{"a stranger", []EtcdMember{{Name: "cp-1"}, {Name: "old-cp"}}, 2, "not control-plane nodes of this cluster: old-cp"},
		{"a control plane missing", []EtcdMember{{Name: "cp-1"}}, 2, "not voting etcd members: cp-2"},
		{"a control plane missing, any number expected", []EtcdMember{{Name: "cp-1"}}, 0, "not voting etcd members: cp-2"},
		{"more control planes expected than registered", []EtcdMember{{Name: "cp-1"}, {Name: "cp-2"}}, 3, "2 of 3 control planes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := c.etcdMembers(func(context.Context) ([]EtcdMember, error) { return tc.members, nil }, tc.want)
			err := check(context.Background())
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("check = %v, want %q", err, tc.err)
			}
		})
	}
	if query != "labelSelector=node-role.kubernetes.io%2Fcontrol-plane" {
		t.Errorf("nodes query = %q", query)
	}
}
