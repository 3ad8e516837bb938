package etcdjoin

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/etcdgw"
)

// fakeCluster keeps members the way etcd does: an added learner has no name until it
// starts; promotion fails while the learner is not in sync.
// With racer set, an add goes the way of one that loses a race in etcd's raft: racer's
// learner is added instead, and the add is never answered (until its context ends).
type fakeCluster struct {
	mu      sync.Mutex
	members []etcdgw.Member
	nextID  uint64
	inSync  bool
	calls   []string
	racer   string
}

func (f *fakeCluster) MemberList(context.Context) (etcdgw.Header, []etcdgw.Member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "list")
	return etcdgw.Header{}, slices.Clone(f.members), nil
}

func (f *fakeCluster) AddLearner(ctx context.Context, urls []string) (etcdgw.Member, []etcdgw.Member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "add")
	if f.racer != "" {
		f.nextID++
		f.members = append(f.members, etcdgw.Member{ID: f.nextID, PeerURLs: []string{f.racer}, IsLearner: true})
		f.mu.Unlock()
		<-ctx.Done()
		f.mu.Lock()
		return etcdgw.Member{}, nil, ctx.Err()
	}
	for _, m := range f.members {
		if m.IsLearner {
			return etcdgw.Member{}, nil, &etcdgw.Error{Code: 9, Message: "etcdserver: too many learner members in cluster"}
		}
	}
	f.nextID++
	m := etcdgw.Member{ID: f.nextID, PeerURLs: urls, IsLearner: true}
	f.members = append(f.members, m)
	return m, slices.Clone(f.members), nil
}

func (f *fakeCluster) RemoveMember(_ context.Context, id uint64) ([]etcdgw.Member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "remove")
	f.members = slices.DeleteFunc(f.members, func(m etcdgw.Member) bool { return m.ID == id })
	return slices.Clone(f.members), nil
}

func (f *fakeCluster) PromoteMember(_ context.Context, id uint64) ([]etcdgw.Member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "promote")
	if !f.inSync {
		return nil, &etcdgw.Error{Code: 9, Message: "etcdserver: can only promote a learner member which is in sync with leader"}
	}
	for i := range f.members {
		if f.members[i].ID == id {
			f.members[i].IsLearner = false
		}
	}
	return slices.Clone(f.members), nil
}

func oneMember() *fakeCluster {
	return &fakeCluster{nextID: 100, members: []etcdgw.Member{{ID: 1, Name: "cp-1", PeerURLs: []string{"https://10.5.0.3:2380"}}}}
}

var self = Self{Name: "cp-2", PeerURL: "https://10.5.0.4:2380"}

func TestAddSelf(t *testing.T) {
	ctx := context.Background()
	f := oneMember()
	initial, err := AddSelf(ctx, f, self)
	if err != nil {
		t.Fatal(err)
	}
	if want := "cp-1=https://10.5.0.3:2380,cp-2=https://10.5.0.4:2380"; initial != want {
		t.Errorf("initial cluster = %q, want %q", initial, want)
	}
	if len(f.members) != 2 || !f.members[1].IsLearner {
		t.Fatalf("members = %+v, want cp-1 and a learner", f.members)
	}
	// A second attempt (the node stopped before its etcd started) finds the learner it
	// added instead of adding another one, which etcd would refuse anyway.
	again, err := AddSelf(ctx, f, self)
	if err != nil || again != initial {
		t.Errorf("second AddSelf = %q, %v; want %q", again, err, initial)
	}
	if len(f.members) != 2 {
		t.Errorf("members after the second attempt = %+v", f.members)
	}
}

func TestAddSelfReplacesAMemberThatLostItsData(t *testing.T) {
	f := oneMember()
	f.members = append(f.members, etcdgw.Member{ID: 7, Name: "cp-2", PeerURLs: []string{self.PeerURL}})
	initial, err := AddSelf(context.Background(), f, self)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.calls, []string{"list", "remove", "add"}) {
		t.Errorf("calls = %v, want list, remove, add", f.calls)
	}
	if len(f.members) != 2 || f.members[1].ID == 7 || !f.members[1].IsLearner {
		t.Errorf("members = %+v, want the old member replaced by a learner", f.members)
	}
	if want := "cp-1=https://10.5.0.3:2380,cp-2=https://10.5.0.4:2380"; initial != want {
		t.Errorf("initial cluster = %q, want %q", initial, want)
	}
}

func TestAddSelfPassesEtcdsRefusal(t *testing.T) {
	f := oneMember()
	f.members = append(f.members, etcdgw.Member{ID: 9, PeerURLs: []string{"https://10.5.0.5:2380"}, IsLearner: true})
	_, err := AddSelf(context.Background(), f, self)
	var e *etcdgw.Error
	if !errors.As(err, &e) || e.Code != 9 {
		t.Errorf("AddSelf with another learner joining = %v, want etcd's refusal", err)
	}
}

// Two nodes that ask to be added at the same moment: etcd takes the other's and never
// answers this one's. AddSelf must see the other learner and say so, not wait out its
// context (it did: the node waited 10 s, the bound of one call, before it tried again).
func TestAddSelfSeesItsAddDropped(t *testing.T) {
	f := oneMember()
	f.racer = "https://10.5.0.5:2380"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := AddSelf(ctx, f, self)
	if !errors.Is(err, ErrAddDropped) {
		t.Fatalf("AddSelf that lost the race = %v, want ErrAddDropped", err)
	}
	if ctx.Err() != nil {
		t.Error("AddSelf waited out its context")
	}
}

func TestInitialClusterNamesUnstartedMembers(t *testing.T) {
	ms := []etcdgw.Member{
		{ID: 1, Name: "cp-1", PeerURLs: []string{"https://10.5.0.3:2380"}},
		{ID: 0xab, PeerURLs: []string{"https://10.5.0.5:2380"}},
		{ID: 2, PeerURLs: []string{self.PeerURL}},
	}
	want := "cp-1=https://10.5.0.3:2380,unstarted-ab=https://10.5.0.5:2380,cp-2=https://10.5.0.4:2380"
	if got := InitialCluster(ms, self); got != want {
		t.Errorf("InitialCluster = %q, want %q", got, want)
	}
}

func TestPromote(t *testing.T) {
	ctx := context.Background()
	f := oneMember()
	if _, err := Promote(ctx, f, self); !errors.Is(err, ErrNotMember) {
		t.Errorf("Promote before joining = %v, want ErrNotMember", err)
	}
	if _, err := AddSelf(ctx, f, self); err != nil {
		t.Fatal(err)
	}
	// Before its etcd started, the answer carries the initial cluster of the members now:
	// here a third member was added meanwhile.
	f.members = append(f.members, etcdgw.Member{ID: 3, Name: "cp-3", PeerURLs: []string{"https://10.5.0.5:2380"}})
	var ns *NotStartedError
	if done, err := Promote(ctx, f, self); done || !errors.As(err, &ns) ||
		ns.InitialCluster != "cp-1=https://10.5.0.3:2380,cp-2=https://10.5.0.4:2380,cp-3=https://10.5.0.5:2380" {
		t.Errorf("Promote before the start = %v, %v; want a NotStartedError with the three members", done, err)
	}
	if slices.Contains(f.calls, "promote") {
		t.Error("an unstarted learner was sent to promotion")
	}
	f.members[1].Name = self.Name // its etcd started
	done, err := Promote(ctx, f, self)
	var e *etcdgw.Error
	if done || !errors.As(err, &e) {
		t.Errorf("Promote of a learner not in sync = %v, %v; want false and etcd's refusal", done, err)
	}
	f.inSync = true
	if done, err := Promote(ctx, f, self); !done || err != nil {
		t.Errorf("Promote in sync = %v, %v", done, err)
	}
	if f.members[1].IsLearner {
		t.Error("still a learner after promotion")
	}
	f.calls = nil
	if done, err := Promote(ctx, f, self); !done || err != nil || slices.Contains(f.calls, "promote") {
		t.Errorf("Promote of a voter = %v, %v, calls %v; want true without a promote call", done, err, f.calls)
	}
}
