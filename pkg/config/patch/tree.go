package patch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/plinthos/plinth/internal/yamlx"
)

// maxDocumentSize bounds the size (in bytes of JSON) a document may reach
// while a JSON patch is applied, so that a few "copy" operations cannot
// exhaust memory.
const maxDocumentSize = 16 << 20

// recoverInto turns a panic in a third-party decoder or encoder into an error,
// so that no input can crash the caller.
func recoverInto(err *error, what string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("internal error in %s: %v", what, r)
	}
}

// decodeDocuments decodes every document of a YAML (or JSON) stream into a
// generic tree: maps are map[string]any, lists are []any, scalars are string,
// bool, int, int64, uint64, float64 or nil. Empty documents are returned as
// nil. Empty input yields no documents.
func decodeDocuments(data []byte) (docs []any, err error) {
	defer recoverInto(&err, "YAML decoder")

	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, nil
	}
	// JSON is (almost) YAML, but decoding JSON as JSON avoids YAML's
	// restrictions on tabs and escape sequences.
	if json.Valid(trimmed) {
		v, err := decodeJSON(trimmed)
		if err != nil {
			return nil, err
		}
		return []any{v}, nil
	}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var node yaml.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("invalid YAML: %w", err)
		}
		keepTimestampsAsStrings(&node)
		var v any
		if err := node.Decode(&v); err != nil {
			return nil, fmt.Errorf("invalid YAML: %w", err)
		}
		v, err = normalize(v)
		if err != nil {
			return nil, err
		}
		docs = append(docs, v)
	}
	return docs, nil
}

// keepTimestampsAsStrings retags timestamp scalars as strings: decoding them
// into time.Time would change their text on output (2001-12-14 would become
// 2001-12-14T00:00:00Z).
func keepTimestampsAsStrings(n *yaml.Node) {
	if n == nil {
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!timestamp" {
		n.Tag = "!!str"
	}
	for _, c := range n.Content {
		keepTimestampsAsStrings(c)
	}
}

// decodeJSON decodes one JSON value, keeping integers as integers.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid JSON: unexpected data after the top-level value")
	}
	return normalize(v)
}

// normalize converts a decoded tree to the generic form used by this
// package: mappings with non-string keys become map[string]any, JSON numbers
// become int, int64, uint64 or float64 and timestamps become strings. It
// always returns fresh maps and slices.
func normalize(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			nx, err := normalize(x)
			if err != nil {
				return nil, err
			}
			out[k] = nx
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			ks, err := keyString(k)
			if err != nil {
				return nil, err
			}
			if _, dup := out[ks]; dup {
				return nil, fmt.Errorf("mapping key %q appears more than once", ks)
			}
			nx, err := normalize(x)
			if err != nil {
				return nil, err
			}
			out[ks] = nx
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			nx, err := normalize(x)
			if err != nil {
				return nil, err
			}
			out[i] = nx
		}
		return out, nil
	case json.Number:
		return numberValue(t), nil
	case time.Time:
		return t.Format(time.RFC3339Nano), nil
	default:
		return v, nil
	}
}

// keyString converts a scalar mapping key to its string form.
func keyString(k any) (string, error) {
	switch t := k.(type) {
	case string:
		return t, nil
	case nil:
		return "null", nil
	case bool:
		return strconv.FormatBool(t), nil
	case int:
		return strconv.Itoa(t), nil
	case int64:
		return strconv.FormatInt(t, 10), nil
	case uint64:
		return strconv.FormatUint(t, 10), nil
	case float64:
		return strconv.FormatFloat(t, 'g', -1, 64), nil
	case time.Time:
		return t.Format(time.RFC3339Nano), nil
	default:
		return "", fmt.Errorf("unsupported mapping key of type %T", k)
	}
}

// numberValue converts a JSON number to an integer when it is one.
func numberValue(n json.Number) any {
	s := string(n)
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		if int64(int(i)) == i {
			return int(i)
		}
		return i
	}
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return u
	}
	// Out-of-range values come back as ±Inf, like YAML's decoder would.
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

// encodeYAML encodes a generic tree as a YAML document.
func encodeYAML(v any) (out []byte, err error) {
	defer recoverInto(&err, "YAML encoder")
	if out, err = yamlx.Marshal(v); err != nil {
		return nil, fmt.Errorf("encoding YAML: %w", err)
	}
	return out, nil
}

// formatValue renders a value for an error message.
func formatValue(v any) string {
	switch t := v.(type) {
	case string:
		return strconv.Quote(t)
	case nil:
		return "null"
	default:
		return fmt.Sprintf("%v", t)
	}
}

// scalarID returns a string identifying a scalar value, used to match the
// merge keys of named list items. Numbers compare by value whatever their Go
// type; the string "1" and the number 1 differ.
func scalarID(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool:" + strconv.FormatBool(t)
	case string:
		return "str:" + t
	case int:
		return "num:" + strconv.Itoa(t)
	case int64:
		return "num:" + strconv.FormatInt(t, 10)
	case uint64:
		return "num:" + strconv.FormatUint(t, 10)
	case float64:
		if t == math.Trunc(t) && math.Abs(t) < 1e18 {
			return "num:" + strconv.FormatInt(int64(t), 10)
		}
		return "num:" + strconv.FormatFloat(t, 'g', -1, 64)
	default:
		return fmt.Sprintf("%T:%v", t, t)
	}
}
