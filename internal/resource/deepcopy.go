package resource

import (
	"reflect"
	"sync"
)

// deepCopy returns a copy of v that shares no maps, slices or pointed-to values with it. See
// the package documentation for the supported shapes.
func deepCopy[T any](v T) T {
	rv := reflect.ValueOf(&v).Elem()
	if !hasRefs(rv.Type()) {
		return v
	}
	var out T
	reflect.ValueOf(&out).Elem().Set(copyValue(rv))
	return out
}

// copyValue returns a deep copy of v as a new value of the same type.
func copyValue(v reflect.Value) reflect.Value {
	t := v.Type()
	if !hasRefs(t) {
		return v
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return reflect.Zero(t)
		}
		n := reflect.New(t.Elem())
		n.Elem().Set(copyValue(v.Elem()))
		return n
	case reflect.Interface:
		if v.IsNil() {
			return reflect.Zero(t)
		}
		n := reflect.New(t).Elem()
		n.Set(copyValue(v.Elem()))
		return n
	case reflect.Slice:
		if v.IsNil() {
			return reflect.Zero(t)
		}
		n := reflect.MakeSlice(t, v.Len(), v.Len())
		for i := range v.Len() {
			n.Index(i).Set(copyValue(v.Index(i)))
		}
		return n
	case reflect.Array:
		n := reflect.New(t).Elem()
		for i := range v.Len() {
			n.Index(i).Set(copyValue(v.Index(i)))
		}
		return n
	case reflect.Map:
		if v.IsNil() {
			return reflect.Zero(t)
		}
		n := reflect.MakeMapWithSize(t, v.Len())
		it := v.MapRange()
		for it.Next() {
			n.SetMapIndex(copyValue(it.Key()), copyValue(it.Value()))
		}
		return n
	case reflect.Struct:
		n := reflect.New(t).Elem()
		n.Set(v) // shallow copy, including unexported fields
		for i := range t.NumField() {
			f := t.Field(i)
			if f.IsExported() && hasRefs(f.Type) {
				n.Field(i).Set(copyValue(v.Field(i)))
			}
		}
		return n
	default:
		return v
	}
}

// refCache memoizes hasRefs per type.
var refCache sync.Map // reflect.Type -> bool

// hasRefs reports whether values of t can reach memory that a plain assignment would share
// (through exported fields): pointers, slices, maps or interfaces. Types without them are
// copied by assignment.
func hasRefs(t reflect.Type) bool {
	if v, ok := refCache.Load(t); ok {
		return v.(bool)
	}
	// computeRefs recurses only into arrays and structs, so recursive types (which must go
	// through a pointer, slice, map or interface) terminate.
	r := computeRefs(t)
	refCache.Store(t, r)
	return r
}

func computeRefs(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Slice, reflect.Map:
		return true
	case reflect.Array:
		return hasRefs(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if f.IsExported() && hasRefs(f.Type) {
				return true
			}
		}
		return false
	default:
		return false
	}
}
