package resource

import (
	"errors"
	"fmt"
)

// Sentinel errors returned, wrapped with the resource they concern, by the Store and the
// Registry. Test for them with errors.Is.
var (
	// ErrNotFound reports that the resource (or resource definition) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists reports that a resource (or definition, or alias) with that identity
	// exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict reports that the resource changed since the version the writer read; read it
	// again and retry.
	ErrConflict = errors.New("version conflict")
	// ErrOwnerMismatch reports that the resource is owned by someone else than the writer.
	ErrOwnerMismatch = errors.New("owner mismatch")
	// ErrPhaseConflict reports a write that would move a resource from tearing down back to
	// running, or create a resource that is already tearing down.
	ErrPhaseConflict = errors.New("phase conflict")
	// ErrInvalid reports a malformed argument: an empty namespace, type or ID, or a resource
	// whose Go type differs from the stored one.
	ErrInvalid = errors.New("invalid resource")
)

// wrap attaches the resource identity and an optional detail to a sentinel error.
func wrap(ns, typ, id string, sentinel error, detail string) error {
	if detail != "" {
		return fmt.Errorf("%s: %w: %s", key(ns, typ, id), sentinel, detail)
	}
	return fmt.Errorf("%s: %w", key(ns, typ, id), sentinel)
}
