package resource

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/plinthos/plinth/internal/clock"
)

// DefaultEventLogSize is how many changes per (namespace, type) the store keeps for watchers
// that lag behind.
const DefaultEventLogSize = 1024

// StoreOption configures a Store.
type StoreOption func(*Store)

// WithEventLogSize sets how many changes per (namespace, type) a watcher may lag behind
// before it overflows (see the package documentation). Values below 1 are raised to 1.
func WithEventLogSize(n int) StoreOption {
	return func(s *Store) { s.logSize = max(n, 1) }
}

// Store is the in-memory resource store. It is safe for concurrent use.
type Store struct {
	clk     clock.Clock
	logSize int

	mu      sync.RWMutex
	buckets map[bucketKey]*bucket
}

type bucketKey struct{ ns, typ string }

// bucket holds the resources of one (namespace, type) and their event log.
type bucket struct {
	items map[string]Resource // immutable stored values
	log   eventLog
}

// NewStore returns an empty store that stamps times from clk.
func NewStore(clk clock.Clock, opts ...StoreOption) *Store {
	s := &Store{clk: clk, logSize: DefaultEventLogSize, buckets: map[bucketKey]*bucket{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Count is how many resources of one type a namespace holds.
type Count struct {
	Namespace, Type string
	N               int
}

// Counts returns the number of resources of each namespace and type that holds any,
// sorted by namespace and type.
func (s *Store) Counts() []Count {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Count
	for k, b := range s.buckets {
		if len(b.items) > 0 {
			out = append(out, Count{Namespace: k.ns, Type: k.typ, N: len(b.items)})
		}
	}
	slices.SortFunc(out, func(a, b Count) int {
		if a.Namespace != b.Namespace {
			return strings.Compare(a.Namespace, b.Namespace)
		}
		return strings.Compare(a.Type, b.Type)
	})
	return out
}

// bucket returns the bucket of ns/typ, creating it when create is set; s.mu must be held
// (for writing when create is set).
func (s *Store) bucket(ns, typ string, create bool) *bucket {
	k := bucketKey{ns, typ}
	b := s.buckets[k]
	if b == nil && create {
		b = &bucket{items: map[string]Resource{}, log: eventLog{max: s.logSize}}
		s.buckets[k] = b
	}
	return b
}

func validate(ns, typ, id string, needID bool) error {
	if ns == "" || typ == "" || (needID && id == "") {
		return wrap(ns, typ, id, ErrInvalid, "namespace, type and id must not be empty")
	}
	return nil
}

// Get returns a deep copy of the resource, or ErrNotFound.
func (s *Store) Get(ns, typ, id string) (Resource, error) {
	if err := validate(ns, typ, id, true); err != nil {
		return nil, err
	}
	s.mu.RLock()
	var r Resource
	if b := s.bucket(ns, typ, false); b != nil {
		r = b.items[id]
	}
	s.mu.RUnlock()
	if r == nil {
		return nil, wrap(ns, typ, id, ErrNotFound, "")
	}
	return r.DeepCopy(), nil
}

// List returns deep copies of the resources of ns/typ, sorted by ID.
func (s *Store) List(ns, typ string) ([]Resource, error) {
	if err := validate(ns, typ, "", false); err != nil {
		return nil, err
	}
	s.mu.RLock()
	var items []Resource
	if b := s.bucket(ns, typ, false); b != nil {
		items = sortedItems(b.items)
	}
	s.mu.RUnlock()
	out := make([]Resource, len(items))
	for i, r := range items {
		out[i] = r.DeepCopy()
	}
	return out, nil
}

// sortedItems returns the values of items ordered by ID.
func sortedItems(items map[string]Resource) []Resource {
	ids := slices.Sorted(maps.Keys(items))
	out := make([]Resource, len(ids))
	for i, id := range ids {
		out[i] = items[id]
	}
	return out
}

// Create stores a deep copy of r with Version 1, Phase running when empty, and Created and
// Updated set to now; it copies that metadata back into r. It fails with ErrAlreadyExists.
func (s *Store) Create(r Resource) error {
	md := r.Metadata()
	if err := validate(md.Namespace, md.Type, md.ID, true); err != nil {
		return err
	}
	if md.Phase == PhaseTearingDown {
		return wrap(md.Namespace, md.Type, md.ID, ErrPhaseConflict, "cannot create a resource that is tearing down")
	}
	stored := r.DeepCopy()
	smd := stored.Metadata()
	if smd.Phase == "" {
		smd.Phase = PhaseRunning
	}
	smd.Version = 1

	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bucket(md.Namespace, md.Type, true)
	if _, ok := b.items[md.ID]; ok {
		return wrap(md.Namespace, md.Type, md.ID, ErrAlreadyExists, "")
	}
	now := s.clk.Now()
	smd.Created, smd.Updated = now, now
	b.items[md.ID] = stored
	b.log.append(logEntry{typ: Created, id: md.ID, res: stored})
	syncMetadata(md, smd)
	return nil
}

// Update replaces the stored resource with a deep copy of r. r's version must be the stored
// one (else ErrConflict), its owner the stored owner (else ErrOwnerMismatch), and it must not
// move a tearing-down resource back to running (else ErrPhaseConflict). The stored copy gets
// the next version and Updated set to now; that metadata is copied back into r.
func (s *Store) Update(r Resource) error {
	md := r.Metadata()
	if err := validate(md.Namespace, md.Type, md.ID, true); err != nil {
		return err
	}
	stored := r.DeepCopy()
	smd := stored.Metadata()

	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bucket(md.Namespace, md.Type, false)
	var old Resource
	if b != nil {
		old = b.items[md.ID]
	}
	if old == nil {
		return wrap(md.Namespace, md.Type, md.ID, ErrNotFound, "")
	}
	omd := old.Metadata()
	switch {
	case reflect.TypeOf(old) != reflect.TypeOf(r):
		return wrap(md.Namespace, md.Type, md.ID, ErrInvalid, fmt.Sprintf("stored as %T, updated with %T", old, r))
	case md.Version != omd.Version:
		return wrap(md.Namespace, md.Type, md.ID, ErrConflict, fmt.Sprintf("writing version %d, stored version is %d", md.Version, omd.Version))
	case md.Owner != omd.Owner:
		return wrap(md.Namespace, md.Type, md.ID, ErrOwnerMismatch, fmt.Sprintf("owned by %q, written by %q", omd.Owner, md.Owner))
	case omd.Phase == PhaseTearingDown && smd.Phase != PhaseTearingDown:
		return wrap(md.Namespace, md.Type, md.ID, ErrPhaseConflict, "a resource that is tearing down cannot become "+string(smd.Phase))
	}
	if smd.Phase == "" {
		smd.Phase = omd.Phase
	}
	smd.Version = omd.Version + 1
	smd.Created = omd.Created
	smd.Updated = s.clk.Now()
	b.items[md.ID] = stored
	b.log.append(logEntry{typ: Updated, id: md.ID, res: stored, old: old})
	syncMetadata(md, smd)
	return nil
}

// Teardown moves a resource to PhaseTearingDown (a new version, announced as Updated) to tell
// its consumers it is going away. owner must be the stored owner (else ErrOwnerMismatch). It
// does nothing for a resource already tearing down.
func (s *Store) Teardown(ns, typ, id, owner string) error {
	if err := validate(ns, typ, id, true); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bucket(ns, typ, false)
	var old Resource
	if b != nil {
		old = b.items[id]
	}
	if old == nil {
		return wrap(ns, typ, id, ErrNotFound, "")
	}
	omd := old.Metadata()
	if omd.Owner != owner {
		return wrap(ns, typ, id, ErrOwnerMismatch, fmt.Sprintf("owned by %q, torn down by %q", omd.Owner, owner))
	}
	if omd.Phase == PhaseTearingDown {
		return nil
	}
	stored := old.DeepCopy()
	smd := stored.Metadata()
	smd.Phase = PhaseTearingDown
	smd.Version++
	smd.Updated = s.clk.Now()
	b.items[id] = stored
	b.log.append(logEntry{typ: Updated, id: id, res: stored, old: old})
	return nil
}

// Destroy removes a resource. owner must be the stored owner (else ErrOwnerMismatch); it fails
// with ErrNotFound.
func (s *Store) Destroy(ns, typ, id, owner string) error {
	if err := validate(ns, typ, id, true); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bucket(ns, typ, false)
	var old Resource
	if b != nil {
		old = b.items[id]
	}
	if old == nil {
		return wrap(ns, typ, id, ErrNotFound, "")
	}
	if o := old.Metadata().Owner; o != owner {
		return wrap(ns, typ, id, ErrOwnerMismatch, fmt.Sprintf("owned by %q, destroyed by %q", o, owner))
	}
	delete(b.items, id)
	b.log.append(logEntry{typ: Destroyed, id: id, res: old})
	return nil
}

// syncMetadata copies the fields the store sets from the stored metadata into the caller's.
func syncMetadata(dst, src *Metadata) {
	dst.Version = src.Version
	dst.Phase = src.Phase
	dst.Created = src.Created
	dst.Updated = src.Updated
}
