package patch

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"
)

// operation is one validated RFC 6902 operation.
type operation struct {
	op   string
	path string
	from string // move and copy only
	raw  jsonpatch.Operation
}

// String describes the operation for error messages, e.g. "remove /a/b" or
// "move /a/c from /a/b".
func (o operation) String() string {
	if o.op == "move" || o.op == "copy" {
		return fmt.Sprintf("%s %s from %s", o.op, o.path, o.from)
	}
	return o.op + " " + o.path
}

// parseOperations turns a top-level sequence into JSON patch operations. The
// sequence is a JSON patch only if every item is a mapping with an "op" key.
func parseOperations(items []any) ([]operation, error) {
	for i, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("a top-level sequence must be a JSON patch (a sequence of operations with an \"op\" key), but item %d is %s",
				i+1, describeKind(it))
		}
		if _, ok := m["op"]; !ok {
			return nil, fmt.Errorf("a top-level sequence must be a JSON patch (a sequence of operations with an \"op\" key), but item %d has no \"op\" key", i+1)
		}
	}

	ops := make([]operation, 0, len(items))
	for i, it := range items {
		op, err := parseOperation(it.(map[string]any))
		if err != nil {
			return nil, fmt.Errorf("invalid JSON patch: operation %d: %w", i+1, err)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

func parseOperation(m map[string]any) (operation, error) {
	var o operation
	kind, ok := m["op"].(string)
	if !ok {
		return o, fmt.Errorf("\"op\" must be a string, got %s", describeKind(m["op"]))
	}
	switch kind {
	case "add", "remove", "replace", "move", "copy", "test":
	default:
		return o, fmt.Errorf("unsupported op %q (expected add, remove, replace, move, copy or test)", kind)
	}
	o.op = kind

	var err error
	if o.path, err = pointerField(m, "path"); err != nil {
		return o, fmt.Errorf("%s: %w", kind, err)
	}
	switch kind {
	case "move", "copy":
		if o.from, err = pointerField(m, "from"); err != nil {
			return o, fmt.Errorf("%s %s: %w", kind, o.path, err)
		}
	case "add", "replace", "test":
		if _, ok := m["value"]; !ok {
			return o, fmt.Errorf("%s %s: missing \"value\"", kind, o.path)
		}
	}

	data, err := json.Marshal(m)
	if err != nil {
		return o, fmt.Errorf("%s: cannot convert to JSON: %w", o, err)
	}
	if err := json.Unmarshal(data, &o.raw); err != nil {
		return o, fmt.Errorf("%s: %w", o, err)
	}
	return o, nil
}

// pointerField returns a JSON pointer field of an operation.
func pointerField(m map[string]any, field string) (string, error) {
	v, ok := m[field]
	if !ok {
		return "", fmt.Errorf("missing %q", field)
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%q must be a string, got %s", field, describeKind(v))
	}
	if s != "" && !strings.HasPrefix(s, "/") {
		return "", fmt.Errorf("%q must be a JSON pointer, empty or starting with \"/\", got %q", field, s)
	}
	return s, nil
}

// applyOperations applies JSON patch operations, one at a time so that errors
// can name the failing operation, to the document converted to JSON.
func applyOperations(doc map[string]any, ops []operation) (map[string]any, error) {
	cur, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("converting the document to JSON: %w", err)
	}
	opts := jsonpatch.NewApplyOptions()
	opts.AccumulatedCopySizeLimit = maxDocumentSize
	opts.EscapeHTML = false

	for i, op := range ops {
		next, err := applyOperation(op, cur, opts)
		if err == nil && len(next) > maxDocumentSize {
			err = fmt.Errorf("the document would grow beyond %d bytes", maxDocumentSize)
		}
		if err != nil {
			return nil, fmt.Errorf("operation %d (%s): %w", i+1, op, err)
		}
		cur = next
	}

	v, err := decodeJSON(cur)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the result must be a mapping, got %s", describeKind(v))
	}
	return m, nil
}

func applyOperation(op operation, doc []byte, opts *jsonpatch.ApplyOptions) (out []byte, err error) {
	defer recoverInto(&err, "JSON patch")
	out, err = jsonpatch.Patch{op.raw}.ApplyWithOptions(doc, opts)
	if err == nil && out == nil {
		err = errors.New("empty result")
	}
	return out, err
}
