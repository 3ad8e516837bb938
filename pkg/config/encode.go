package config

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/plinthos/plinth/internal/yamlx"
)

// Marshal encodes a configuration as YAML. With withDocs, each field carries a comment
// explaining it (taken from the Go doc comments, see docs/reference/config.md); the first
// item of each list and map is annotated, not every one.
func Marshal(c *MachineConfig, withDocs bool) ([]byte, error) {
	n, err := toNode(reflect.ValueOf(c))
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	if withDocs {
		n.HeadComment = wrapComment(typeDocs["MachineConfig"])
		annotate(n, reflect.TypeFor[MachineConfig]())
	}
	out, err := yamlx.Marshal(n)
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return out, nil
}

// annotate puts the doc comment of each struct field on its key node.
func annotate(n *yaml.Node, t reflect.Type) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fields[k.Value]
			if !ok {
				continue
			}
			if doc := fieldDocs[t.Name()+"."+k.Value]; doc != "" {
				k.HeadComment = wrapComment(doc)
			}
			annotate(v, f.Type)
		}
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode && len(n.Content) > 0 {
			annotate(n.Content[0], t.Elem())
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode && len(n.Content) > 1 {
			annotate(n.Content[1], t.Elem())
		}
	}
}

// wrapComment folds a doc comment into lines of at most 90 characters.
func wrapComment(doc string) string {
	var lines []string
	var line strings.Builder
	for _, word := range strings.Fields(doc) {
		if line.Len() > 0 && line.Len()+1+len(word) > 90 {
			lines = append(lines, line.String())
			line.Reset()
		}
		if line.Len() > 0 {
			line.WriteByte(' ')
		}
		line.WriteString(word)
	}
	if line.Len() > 0 {
		lines = append(lines, line.String())
	}
	return strings.Join(lines, "\n")
}
