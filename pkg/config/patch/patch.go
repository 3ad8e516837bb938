package patch

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

type kind uint8

const (
	kindInvalid kind = iota
	kindStrategic
	kindJSON
)

// Patch is one parsed patch.
type Patch struct {
	kind kind
	// source is the file the patch was read from, "" for inline text.
	source string
	// doc is the 1-based position of the patch in a multi-document patch
	// text, 0 when the text holds a single patch.
	doc int

	strategic map[string]any // kindStrategic
	ops       []operation    // kindJSON
}

// String describes the patch, e.g. "strategic merge patch from file p.yaml"
// or "JSON patch (inline)".
func (p Patch) String() string {
	var name string
	switch p.kind {
	case kindStrategic:
		name = "strategic merge patch"
	case kindJSON:
		name = "JSON patch"
	default:
		name = "invalid patch"
	}
	switch {
	case p.source == "" && p.doc == 0:
		return name + " (inline)"
	case p.source == "":
		return fmt.Sprintf("%s (inline, document %d)", name, p.doc)
	case p.doc == 0:
		return fmt.Sprintf("%s from file %s", name, p.source)
	default:
		return fmt.Sprintf("%s from file %s (document %d)", name, p.source, p.doc)
	}
}

// Parse parses patch text; source names where it came from (a file name or
// "inline") for error messages.
//
// Every non-empty YAML document of data becomes one Patch: a mapping is a
// strategic merge patch, a sequence of mappings with an "op" key is a JSON
// patch (RFC 6902). Anything else is an error, as is text without any
// document.
func Parse(data []byte, source string) ([]Patch, error) {
	if source == "inline" {
		source = ""
	}
	return parse(data, source)
}

func parse(data []byte, source string) ([]Patch, error) {
	where := "inline patch"
	if source != "" {
		where = "patch file " + source
	}

	docs, err := decodeDocuments(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	nonEmpty := 0
	for _, d := range docs {
		if d != nil {
			nonEmpty++
		}
	}
	if nonEmpty == 0 {
		return nil, fmt.Errorf("%s: patch is empty", where)
	}

	patches := make([]Patch, 0, nonEmpty)
	for i, d := range docs {
		if d == nil {
			continue
		}
		p := Patch{source: source}
		docWhere := where
		if nonEmpty > 1 {
			p.doc = i + 1
			docWhere = fmt.Sprintf("%s, document %d", where, p.doc)
		}
		switch t := d.(type) {
		case map[string]any:
			if err := checkStrategic(t); err != nil {
				return nil, fmt.Errorf("%s: invalid strategic merge patch: %w", docWhere, err)
			}
			p.kind, p.strategic = kindStrategic, t
		case []any:
			ops, err := parseOperations(t)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", docWhere, err)
			}
			p.kind, p.ops = kindJSON, ops
		default:
			msg := fmt.Sprintf("%s: expected a mapping (strategic merge patch) or a sequence of operations (JSON patch), got the scalar %s",
				docWhere, formatValue(d))
			if source == "" {
				msg += ` (to read a patch from a file, use "@path")`
			}
			return nil, errors.New(msg)
		}
		patches = append(patches, p)
	}
	return patches, nil
}

// Load parses one command-line argument: "@file" reads the file, anything
// else is inline text.
func Load(arg string) ([]Patch, error) {
	name, isFile := strings.CutPrefix(arg, "@")
	if !isFile {
		return parse([]byte(arg), "")
	}
	if name == "" {
		return nil, errors.New(`patch argument "@": missing file name after "@"`)
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading patch file: %w", err)
	}
	return parse(data, name)
}

// LoadAll loads several arguments in order.
func LoadAll(args []string) ([]Patch, error) {
	var all []Patch
	for _, arg := range args {
		ps, err := Load(arg)
		if err != nil {
			return nil, err
		}
		all = append(all, ps...)
	}
	return all, nil
}

// Apply applies patches in order to a YAML document and returns the resulting
// YAML document. The result's key order need not match the input (callers
// re-decode it into typed structs).
func Apply(doc []byte, patches []Patch) ([]byte, error) {
	docs, err := decodeDocuments(doc)
	if err != nil {
		return nil, fmt.Errorf("document: %w", err)
	}
	var tree map[string]any
	n := 0
	for _, d := range docs {
		if d == nil {
			continue
		}
		n++
		m, ok := d.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("document: expected a mapping, got %s", describeKind(d))
		}
		tree = m
	}
	switch {
	case n == 0:
		return nil, errors.New("document is empty")
	case n > 1:
		return nil, fmt.Errorf("document: expected one YAML document, got %d", n)
	}

	for _, p := range patches {
		tree, err = p.apply(tree)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	return encodeYAML(tree)
}

func (p Patch) apply(doc map[string]any) (map[string]any, error) {
	switch p.kind {
	case kindStrategic:
		return applyStrategic(doc, p.strategic)
	case kindJSON:
		return applyOperations(doc, p.ops)
	default:
		return nil, errors.New("patch was not created by Parse or Load")
	}
}

// describeKind names the kind of a generic value for error messages.
func describeKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a sequence"
	default:
		return "the scalar " + formatValue(v)
	}
}
