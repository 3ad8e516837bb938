package config

import (
	"encoding/base64"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// toNode builds the YAML node of a configuration value directly, field by field, instead of
// through the YAML library's own encoder: that encoder writes some multi-line strings (one
// that starts with an empty line, for example) as block scalars it cannot read back. Here
// every string gets a style that round-trips.
func toNode(v reflect.Value) (*yaml.Node, error) {
	if v.Kind() != reflect.Pointer && v.CanAddr() {
		v = v.Addr()
	}
	if v.IsValid() && v.CanInterface() {
		if m, ok := v.Interface().(yaml.Marshaler); ok && !(v.Kind() == reflect.Pointer && v.IsNil()) {
			out, err := m.MarshalYAML()
			if err != nil {
				return nil, err
			}
			if n, ok := out.(*yaml.Node); ok {
				return n, nil
			}
			return toNode(reflect.ValueOf(out))
		}
	}
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			fv := v.Field(i)
			if strings.Contains(opts, "omitempty") && empty(fv) {
				continue
			}
			val, err := toNode(fv)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			n.Content = append(n.Content, str(name), val)
		}
		return n, nil
	case reflect.Map:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		slices.Sort(keys)
		for _, k := range keys {
			val, err := toNode(v.MapIndex(reflect.ValueOf(k).Convert(v.Type().Key())))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			n.Content = append(n.Content, str(k), val)
		}
		return n, nil
	case reflect.Slice, reflect.Array:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for i := range v.Len() {
			item, err := toNode(v.Index(i))
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, item)
		}
		return n, nil
	case reflect.String:
		return str(v.String()), nil
	case reflect.Bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v.Bool())}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(v.Int(), 10)}, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatUint(v.Uint(), 10)}, nil
	}
	return nil, fmt.Errorf("cannot encode %s", v.Type())
}

// empty is omitempty's notion of nothing: a zero value, or an empty slice or map.
func empty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Slice, reflect.Map:
		return v.Len() == 0
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() && !empty(v.Field(i)) {
				return false
			}
		}
		return true
	}
	return v.IsZero()
}

// str makes a string node: a literal block for well-formed multi-line text, else double
// quotes when the text has line breaks or would read back as another type, else plain.
func str(s string) *yaml.Node {
	if !utf8.ValidString(s) {
		// Not text: written as binary, which decodes back into the same string.
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!binary", Value: base64.StdEncoding.EncodeToString([]byte(s))}
	}
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	switch {
	case strings.Contains(s, "\n") && literalSafe(s):
		n.Style = yaml.LiteralStyle
	case strings.ContainsAny(s, "\n\r\t") || s != strings.TrimSpace(s):
		n.Style = yaml.DoubleQuotedStyle
	default:
		var probe any
		if err := yaml.Unmarshal([]byte(s), &probe); err != nil || probe != s {
			n.Style = yaml.DoubleQuotedStyle
		}
	}
	return n
}

// literalSafe reports whether text reads back unchanged from a literal block: it ends with
// one line break, starts with a visible character, and has no trailing blanks or tabs.
func literalSafe(s string) bool {
	if !strings.HasSuffix(s, "\n") || strings.HasSuffix(s, "\n\n") || strings.ContainsAny(s, "\r\t") {
		return false
	}
	if s[0] == ' ' || s[0] == '\n' {
		return false
	}
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if line != strings.TrimRight(line, " ") {
			return false
		}
	}
	return true
}
