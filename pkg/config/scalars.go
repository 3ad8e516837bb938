package config

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Base64 is binary data (here: PEM certificates and keys) written in YAML as a base64 string.
type Base64 []byte

// MarshalYAML writes the bytes as standard base64.
func (b Base64) MarshalYAML() (any, error) {
	return base64.StdEncoding.EncodeToString(b), nil
}

// UnmarshalYAML reads a base64 string.
func (b *Base64) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a base64 string, got %s", kindName(node))
	}
	s := strings.Join(strings.Fields(node.Value), "")
	data, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("not valid base64 (%v); encode the PEM file with `base64 -w0 FILE`", err)
	}
	*b = data
	return nil
}

// FileMode is a file's permission bits, written in YAML in octal (`0o644`). Plain integers
// and strings such as "0644" are accepted too.
type FileMode uint32

// MarshalYAML writes the mode as an octal literal.
func (m FileMode) MarshalYAML() (any, error) {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: fmt.Sprintf("0o%o", uint32(m))}, nil
}

// UnmarshalYAML reads an octal mode.
func (m *FileMode) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected file permissions in octal such as 0o644, got %s", kindName(node))
	}
	v := strings.TrimSpace(node.Value)
	var (
		n   uint64
		err error
	)
	switch {
	case node.Tag == "!!int" && !strings.HasPrefix(v, "0"):
		// A YAML decimal integer: 420 means 0o644.
		n, err = strconv.ParseUint(v, 10, 32)
	case !strings.HasPrefix(v, "0") && v != "" && strings.Trim(v, "01234567") == "":
		// A string such as "644" is ambiguous (decimal or octal?): ask for the prefix.
		return fmt.Errorf("%q is ambiguous; write file permissions in octal with a leading 0o, such as 0o%s", v, v)
	default:
		n, err = strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(v, "0o"), "0O"), 8, 32)
	}
	if err != nil || n > 0o7777 {
		return fmt.Errorf("%q is not a file mode; write it in octal, such as 0o644 or 0o600", v)
	}
	*m = FileMode(n)
	return nil
}

// kindName names a YAML node's kind for error messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	default:
		return "a document"
	}
}
