package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Document is a decoded machine configuration together with where each field came from,
// so that validation problems can name the line.
type Document struct {
	// Config is the decoded configuration, without defaults applied.
	Config *MachineConfig
	// File is the name the configuration was loaded from (may be empty).
	File string

	positions map[string]position
}

type position struct{ line, column int }

// LoadFile reads and strictly decodes a configuration file.
func LoadFile(path string) (*Document, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Load(data, path)
}

// Load strictly decodes a configuration: an unknown or misspelled field, a value of the
// wrong type, or a missing or unknown apiVersion/kind is an error of type Problems that
// names the file, line and field. file is used only in messages.
func Load(data []byte, file string) (*Document, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var found *yaml.Node
	var problems Problems
	for i := 0; ; i++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, Problems{syntaxProblem(file, err)}
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			continue // an empty document between separators
		}
		if root.Kind != yaml.MappingNode {
			problems = append(problems, Problem{File: file, Line: root.Line, Column: root.Column,
				Msg: fmt.Sprintf("a configuration document must be a mapping with apiVersion and kind, got %s", kindName(root))})
			continue
		}
		apiVersion, kind := scalarField(root, "apiVersion"), scalarField(root, "kind")
		switch {
		case kind == nil:
			problems = append(problems, Problem{File: file, Line: root.Line, Column: root.Column, Field: "kind",
				Msg: fmt.Sprintf("document %d has no kind; add `kind: %s`", i+1, KindMachineConfig)})
		case kind.Value != KindMachineConfig:
			problems = append(problems, Problem{File: file, Line: kind.Line, Column: kind.Column, Field: "kind",
				Msg: fmt.Sprintf("unknown kind %q; this release understands only %s", kind.Value, KindMachineConfig)})
		case apiVersion == nil:
			problems = append(problems, Problem{File: file, Line: root.Line, Column: root.Column, Field: "apiVersion",
				Msg: fmt.Sprintf("document %d has no apiVersion; add `apiVersion: %s`", i+1, APIVersion)})
		case apiVersion.Value != APIVersion:
			problems = append(problems, Problem{File: file, Line: apiVersion.Line, Column: apiVersion.Column, Field: "apiVersion",
				Msg: fmt.Sprintf("unsupported apiVersion %q; this release understands %s", apiVersion.Value, APIVersion)})
		case found != nil:
			problems = append(problems, Problem{File: file, Line: root.Line, Column: root.Column,
				Msg: fmt.Sprintf("a second %s document; a file holds the configuration of one machine", KindMachineConfig)})
		default:
			found = root
		}
	}
	if len(problems) > 0 {
		return nil, problems.sorted()
	}
	if found == nil {
		return nil, Problems{{File: file, Msg: fmt.Sprintf("no %s document found; generate one with `plinthctl gen config`", KindMachineConfig)}}
	}
	d := &Document{File: file, positions: map[string]position{}}
	c := checker{file: file, positions: d.positions}
	c.check(found, reflect.TypeFor[MachineConfig](), "")
	if len(c.problems) > 0 {
		return nil, c.problems.sorted()
	}
	var cfg MachineConfig
	if err := found.Decode(&cfg); err != nil {
		// The checker accepts only what decodes; this is a bug, not bad input.
		return nil, Problems{{File: file, Msg: fmt.Sprintf("decode: %v", err)}}
	}
	d.Config = &cfg
	return d, nil
}

// locate fills in the file, line and column of problems from the positions recorded
// while decoding, using the nearest enclosing field that has one.
func (d *Document) locate(ps Problems) Problems {
	for i := range ps {
		ps[i].File = d.File
		for path := ps[i].Field; ; path = parentPath(path) {
			if pos, ok := d.positions[path]; ok {
				ps[i].Line, ps[i].Column = pos.line, pos.column
				break
			}
			if path == "" {
				break
			}
		}
	}
	return ps
}

// parentPath strips the last element of a field path: a.b[2] -> a.b -> a -> "".
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// syntaxProblem turns a YAML parser error into a located problem.
func syntaxProblem(file string, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := Problem{File: file, Msg: "invalid YAML: " + msg}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Msg = "invalid YAML: " + strings.TrimSpace(strings.Replace(msg, m[0]+":", "", 1))
	}
	return p
}

// scalarField returns the value node of key in a mapping when it is a scalar.
func scalarField(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yaml.ScalarNode {
			return m.Content[i+1]
		}
	}
	return nil
}

// checker walks a YAML tree beside the Go type it decodes into and records every
// mismatch, so that all problems are reported at once with their lines.
type checker struct {
	file      string
	positions map[string]position
	problems  Problems
	visited   int // nodes visited, aliases counted each time they are followed
}

// maxNodes bounds the nodes a document may expand to, so a small file of nested aliases
// cannot make decoding take exponential time. Real configurations have a few hundred.
const maxNodes = 20000

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// maxProblems bounds how many problems are reported; past it, one more says so.
const maxProblems = 100

func (c *checker) add(n *yaml.Node, path, format string, args ...any) {
	switch {
	case len(c.problems) < maxProblems:
		c.problems = append(c.problems, Problem{File: c.file, Line: n.Line, Column: n.Column, Field: path,
			Msg: fmt.Sprintf(format, args...)})
	case len(c.problems) == maxProblems:
		c.problems = append(c.problems, Problem{File: c.file, Msg: fmt.Sprintf("more than %d problems; fix these first", maxProblems)})
	}
}

func (c *checker) check(n *yaml.Node, t reflect.Type, path string) {
	if c.visited++; c.visited == maxNodes {
		c.add(n, path, "the document expands to more than %d values (too many aliases?); write it out plainly", maxNodes)
	}
	if c.visited >= maxNodes {
		return
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	c.positions[path] = position{n.Line, n.Column}
	if n.Style&yaml.TaggedStyle != 0 {
		// An explicit tag (!!int abc, !!null {...}) can make a node undecodable in ways the
		// checks below do not see; try it.
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			c.add(n, path, "cannot read %s as %s: %s", kindName(n), t.Kind(), strings.TrimPrefix(err.Error(), "yaml: "))
			return
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // null leaves the zero value
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			c.add(n, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		c.checkStruct(n, t, path)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.add(n, path, "expected a mapping of names to values, got %s", kindName(n))
			return
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				c.add(k, path, "keys must be plain names, got %s", kindName(k))
				continue
			}
			if seen[k.Value] {
				c.add(k, mapPath(path, k.Value), "%q appears twice; keep one", k.Value)
			}
			seen[k.Value] = true
			c.check(v, t.Elem(), mapPath(path, k.Value))
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			c.add(n, path, "expected a list, got %s; write `- item` lines or `[a, b]`", kindName(n))
			return
		}
		for i, item := range n.Content {
			c.check(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			c.add(n, path, "expected a string, got %s", kindName(n))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			c.add(n, path, "expected true or false, got %s", kindName(n))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(reflect.New(t).Interface()) != nil {
			c.add(n, path, "expected a whole number that fits %s, got %s", t.Kind(), kindName(n))
		}
	case reflect.Interface:
		// anything goes
	default:
		c.add(n, path, "cannot decode into %s", t)
	}
}

func (c *checker) checkStruct(n *yaml.Node, t reflect.Type, path string) {
	fields := yamlFields(t)
	if n.Kind != yaml.MappingNode {
		c.add(n, path, "expected a mapping with fields such as %s, got %s", fieldList(fields), kindName(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := joinPath(path, k.Value)
		f, ok := fields[k.Value]
		switch {
		case k.Kind != yaml.ScalarNode:
			c.add(k, path, "keys must be plain field names, got %s", kindName(k))
			continue
		case !ok:
			msg := fmt.Sprintf("unknown field %q", k.Value)
			if s := suggest(k.Value, fields); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			} else {
				msg += "; valid fields here: " + fieldList(fields)
			}
			c.add(k, p, "%s", msg)
			continue
		case seen[k.Value]:
			c.add(k, p, "field %q appears twice; keep one", k.Value)
		}
		seen[k.Value] = true
		c.check(v, f.Type, p)
	}
}

// yamlFields maps the YAML names of a struct's fields to the fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	fields := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f
	}
	return fields
}

// YAMLFieldNames lists the YAML names of a struct type's fields in declaration order.
func YAMLFieldNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.IsExported() && name != "-" && name != "" {
			names = append(names, name)
		}
	}
	return names
}

func fieldList(fields map[string]reflect.StructField) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// mapPath appends a map key; keys that are not simple names are quoted.
func mapPath(path, key string) string {
	if key != "" && strings.IndexFunc(key, func(r rune) bool {
		return !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) < 0 {
		return joinPath(path, key)
	}
	return fmt.Sprintf("%s[%q]", path, key)
}
