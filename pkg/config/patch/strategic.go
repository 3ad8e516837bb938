package patch

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
)

// directiveKey is the key of the $patch directive in a strategic merge patch.
const directiveKey = "$patch"

// mergeKeys are the keys that identify items of named lists, in the order
// they are tried.
var mergeKeys = []string{"name", "path", "destination", "vlanId", "endpoint"}

// identityKeys are the top-level keys that a patch may only repeat.
var identityKeys = []string{"apiVersion", "kind"}

// checkStrategic validates a strategic merge patch when it is parsed, so that
// errors in $patch directives are reported early, wherever they are.
func checkStrategic(patch map[string]any) error {
	if _, ok := patch[directiveKey]; ok {
		return fmt.Errorf("%s is not allowed at the top level of a patch", directiveKey)
	}
	return checkDirectives(patch, "")
}

func checkDirectives(v any, path string) error {
	switch t := v.(type) {
	case map[string]any:
		if _, err := isDelete(t, path); err != nil {
			return err
		}
		for _, k := range slices.Sorted(maps.Keys(t)) {
			if err := checkDirectives(t[k], joinKey(path, k)); err != nil {
				return err
			}
		}
	case []any:
		for i, x := range t {
			if err := checkDirectives(x, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// isDelete reports whether a patch mapping holds the "$patch: delete"
// directive; any other $patch value is an error.
func isDelete(m map[string]any, path string) (bool, error) {
	d, ok := m[directiveKey]
	if !ok {
		return false, nil
	}
	if s, ok := d.(string); ok && s == "delete" {
		return true, nil
	}
	if path == "" {
		path = "top level"
	}
	return false, fmt.Errorf("%s: unsupported %s directive %s (only \"delete\" is supported)",
		path, directiveKey, formatValue(d))
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// applyStrategic merges a strategic merge patch into doc. Neither argument is
// modified; the result may share unchanged subtrees with doc.
func applyStrategic(doc, patch map[string]any) (map[string]any, error) {
	for _, k := range identityKeys {
		pv, ok := patch[k]
		if !ok {
			continue
		}
		dv, ok := doc[k]
		if !ok {
			return nil, fmt.Errorf("patch %s %s does not match the document, which has no %s", k, formatValue(pv), k)
		}
		if !reflect.DeepEqual(pv, dv) {
			return nil, fmt.Errorf("patch %s %s does not match document %s %s", k, formatValue(pv), k, formatValue(dv))
		}
	}
	return mergeMapping(doc, patch, "", true)
}

// mergeMapping merges the patch mapping into a copy of base.
func mergeMapping(base, patch map[string]any, path string, top bool) (map[string]any, error) {
	out := maps.Clone(base)
	if out == nil {
		out = make(map[string]any, len(patch))
	}
	for _, k := range slices.Sorted(maps.Keys(patch)) {
		if k == directiveKey || (top && slices.Contains(identityKeys, k)) {
			continue
		}
		pv := patch[k]
		childPath := joinKey(path, k)
		if pm, ok := pv.(map[string]any); ok {
			del, err := isDelete(pm, childPath)
			if err != nil {
				return nil, err
			}
			if del {
				delete(out, k)
				continue
			}
		}
		var (
			nv  any
			err error
		)
		if bv, ok := out[k]; ok {
			nv, err = mergeValue(bv, pv, childPath)
		} else {
			nv, err = clean(pv, childPath)
		}
		if err != nil {
			return nil, err
		}
		out[k] = nv
	}
	return out, nil
}

// mergeValue merges a patch value into a base value.
func mergeValue(base, patch any, path string) (any, error) {
	switch pv := patch.(type) {
	case map[string]any:
		if bm, ok := base.(map[string]any); ok {
			return mergeMapping(bm, pv, path, false)
		}
		return clean(pv, path)
	case []any:
		if bl, ok := base.([]any); ok {
			if key := mergeKeyOf(bl, pv); key != "" {
				return mergeNamedList(bl, pv, key, path)
			}
		}
		return clean(pv, path)
	default:
		return patch, nil
	}
}

// mergeKeyOf returns the merge key shared by every item of both lists, or ""
// if the lists are not lists of named items.
func mergeKeyOf(base, patch []any) string {
	if len(base) == 0 || len(patch) == 0 {
		return ""
	}
	for _, key := range mergeKeys {
		if allHaveKey(base, key) && allHaveKey(patch, key) {
			return key
		}
	}
	return ""
}

func allHaveKey(items []any, key string) bool {
	for _, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return false
		}
		v, ok := m[key]
		if !ok {
			return false
		}
		switch v.(type) {
		case map[string]any, []any:
			return false
		}
	}
	return true
}

// mergeNamedList merges a list of named items into a copy of base, matching
// items by key.
func mergeNamedList(base, patch []any, key, path string) ([]any, error) {
	out := slices.Clone(base)
	for _, it := range patch {
		pm, ok := it.(map[string]any)
		if !ok { // cannot happen: mergeKeyOf checked every item
			return nil, fmt.Errorf("%s: list item is not a mapping", path)
		}
		id := scalarID(pm[key])
		itemPath := fmt.Sprintf("%s[%s=%s]", path, key, formatValue(pm[key]))
		matches := func(x any) bool {
			m, ok := x.(map[string]any)
			return ok && scalarID(m[key]) == id
		}

		del, err := isDelete(pm, itemPath)
		if err != nil {
			return nil, err
		}
		if del {
			out = slices.DeleteFunc(out, matches)
			continue
		}

		matched := false
		for i, x := range out {
			if !matches(x) {
				continue
			}
			matched = true
			merged, err := mergeMapping(x.(map[string]any), pm, itemPath, false)
			if err != nil {
				return nil, err
			}
			out[i] = merged
		}
		if !matched {
			c, err := clean(pm, itemPath)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// clean returns a copy of a patch value with its $patch directives resolved:
// keys whose value holds "$patch: delete" and list items that hold it are
// dropped.
func clean(v any, path string) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for _, k := range slices.Sorted(maps.Keys(t)) {
			if k == directiveKey {
				continue
			}
			x := t[k]
			childPath := joinKey(path, k)
			if xm, ok := x.(map[string]any); ok {
				del, err := isDelete(xm, childPath)
				if err != nil {
					return nil, err
				}
				if del {
					continue
				}
			}
			c, err := clean(x, childPath)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(t))
		for i, x := range t {
			itemPath := fmt.Sprintf("%s[%d]", path, i)
			if xm, ok := x.(map[string]any); ok {
				del, err := isDelete(xm, itemPath)
				if err != nil {
					return nil, err
				}
				if del {
					continue
				}
			}
			c, err := clean(x, itemPath)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
		return out, nil
	default:
		return v, nil
	}
}
