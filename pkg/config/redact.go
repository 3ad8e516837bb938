package config

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/plinthos/plinth/internal/yamlx"
)

// Every field of the configuration types that holds text (a string, bytes, or a list or
// map of them) is classified by a struct tag with the key TagKey:
//
//	plinth:"secret"  the value may be a secret: keys, tokens, passwords, and free text or
//	                 flags where users put them (environment, file contents, manifests,
//	                 extra arguments). Masked whole; the keys of a map stay visible.
//	plinth:"url"     a URL, shown except for the credentials it may carry: the user
//	                 information (`user:password@`), query values and fragment are masked.
//	plinth:"public"  never a secret: names, versions, addresses, CIDRs, paths, images.
//
// The tag is the only source of truth for what Redact masks; a test fails when a text field
// has none. Fields of struct types are not tagged: their own fields are. A text field
// without a valid tag is masked as a secret.
const TagKey = "plinth"

// The classes of a text field, as written in its TagKey struct tag.
const (
	ClassSecret = "secret"
	ClassURL    = "url"
	ClassPublic = "public"
)

// Mask gives the text shown in place of a secret. field names the secret's field as
// TYPE.yamlName (for example "MachineSpec.env"); secret is never empty. The result must
// reveal nothing about the secret.
type Mask func(field, secret string) string

// Redacted returns a deep copy of c in which every secret reads "(secret)": see TagKey for
// what is a secret. Empty values stay empty, so that presence still shows. c is not
// modified and shares no memory with the copy.
func Redacted(c *MachineConfig) *MachineConfig {
	return Redact(c, func(string, string) string { return "(secret)" })
}

// Redact returns a deep copy of c in which every non-empty secret is replaced by mask's
// text: fields tagged secret whole (each value of a map, each item of a list), URLs their
// credentials only. Empty values stay empty. c is not modified and shares no memory with
// the copy.
func Redact(c *MachineConfig, mask Mask) *MachineConfig {
	return (&redactor{mask: mask}).config(c)
}

// MarshalRedacted encodes Redact(c, mask) as YAML for people to read: a masked binary
// value (a private key) is written as mask's text rather than as the base64 of that text.
func MarshalRedacted(c *MachineConfig, mask Mask) ([]byte, error) {
	if c == nil {
		return nil, nil
	}
	r := &redactor{mask: mask, binary: map[string]string{}}
	n, err := toNode(reflect.ValueOf(r.config(c)))
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	unwrapMarkers(n, r.binary)
	data, err := yamlx.Marshal(n)
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return data, nil
}

// FingerprintMask returns a Mask that writes a secret as "(secret FINGERPRINT)", where
// FINGERPRINT is 12 hexadecimal digits of an HMAC-SHA256 of the field's name and the
// secret, keyed with 32 random bytes made for this Mask alone and never revealed.
//
// Within the uses of one Mask (the two sides of one diff), a secret that did not change
// gets the same marker and one that changed a different marker (barring a 1 in 2^48
// collision). The marker tells nothing about the secret, even to someone trying guesses
// of a weak password, since the key is unknown. The field's name (TYPE.yamlName) is part
// of the input, so markers do not tell that, say, the join token and a file hold the same
// text; values of one field (the keys of the four CAs, the values of one map) can still be
// seen to be equal. Use a new Mask for each diff, so that markers cannot be compared
// across diffs.
func FingerprintMask() Mask {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails; it crashes the program instead
	return func(field, secret string) string {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(field))
		h.Write([]byte{0}) // field names hold no NUL: field and secret cannot run together
		h.Write([]byte(secret))
		return "(secret " + hex.EncodeToString(h.Sum(nil)[:6]) + ")"
	}
}

// redactor deep-copies a configuration value, masking text by the class of its field.
type redactor struct {
	mask Mask
	// binary, when set, collects the base64 encoding of each marker put in a binary
	// field, mapped to the marker, for MarshalRedacted.
	binary map[string]string
}

// config returns a redacted deep copy of c.
func (r *redactor) config(c *MachineConfig) *MachineConfig {
	if c == nil {
		return nil
	}
	out := new(MachineConfig)
	r.copy(reflect.ValueOf(out).Elem(), reflect.ValueOf(c).Elem(), "", "MachineConfig")
	return out
}

// copy sets dst, a settable zero value, to a deep copy of src with secrets masked. class is
// the class of the innermost struct field holding src, field that field's TYPE.yamlName.
func (r *redactor) copy(dst, src reflect.Value, class, field string) {
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.New(src.Type().Elem()))
		r.copy(dst.Elem(), src.Elem(), class, field)
	case reflect.Struct:
		t := src.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			fclass := f.Tag.Get(TagKey)
			if class == ClassSecret || class == ClassURL {
				fclass = class // nothing inside a secret or a URL is more public than it
			}
			r.copy(dst.Field(i), src.Field(i), fclass, t.Name()+"."+yamlName(f))
		}
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		if src.Type().Elem().Kind() == reflect.Uint8 {
			dst.SetBytes([]byte(r.text(string(src.Bytes()), class, field, true)))
			return
		}
		dst.Set(reflect.MakeSlice(src.Type(), src.Len(), src.Len()))
		for i := range src.Len() {
			r.copy(dst.Index(i), src.Index(i), class, field)
		}
	case reflect.Array:
		for i := range src.Len() {
			r.copy(dst.Index(i), src.Index(i), class, field)
		}
	case reflect.Map:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.MakeMapWithSize(src.Type(), src.Len()))
		iter := src.MapRange()
		for iter.Next() {
			// Keys (environment variable names, flag names, registry hosts) stay visible.
			v := reflect.New(src.Type().Elem()).Elem()
			r.copy(v, iter.Value(), class, field)
			dst.SetMapIndex(iter.Key(), v)
		}
	case reflect.String:
		dst.SetString(r.text(src.String(), class, field, false))
	case reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		// No configuration type has such a field (a test checks): copying it could share
		// memory or leak what it refers to.
		panic(fmt.Sprintf("config: cannot redact %s field %s", src.Type(), field))
	default: // booleans and numbers: never secret
		dst.Set(src)
	}
}

// text masks one string of a field of class.
func (r *redactor) text(s, class, field string, binary bool) string {
	if s == "" {
		return s
	}
	var out string
	switch class {
	case ClassPublic:
		return s
	case ClassURL:
		out = scrubURL(s, func(part string) string { return r.mask(field, part) })
	default: // secret, and unclassified or misspelled classes: fail closed
		out = r.mask(field, s)
	}
	if binary && r.binary != nil {
		r.binary[base64.StdEncoding.EncodeToString([]byte(out))] = out
	}
	return out
}

// scrubURL masks the credentials a URL may carry: its user information (`user:password@`,
// or a token as the user), each query value (a whole query parameter when it has no `=`)
// and its fragment. The scheme, host, port and path stay. It never fails: text that is not
// a URL is scrubbed as far as it looks like one.
func scrubURL(s string, mask func(string) string) string {
	var b strings.Builder
	start := 0
	if i := strings.Index(s, "://"); i >= 0 {
		start = i + len("://")
	}
	b.WriteString(s[:start])
	rest := s[start:]
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	if at := strings.LastIndexByte(authority, '@'); at > 0 {
		b.WriteString(mask(authority[:at]))
		rest = rest[at:]
	}
	fragment := ""
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest, fragment = rest[:i], rest[i+1:]
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		b.WriteString(rest[:i+1])
		for j, param := range strings.Split(rest[i+1:], "&") {
			if j > 0 {
				b.WriteByte('&')
			}
			switch k, v, ok := strings.Cut(param, "="); {
			case !ok && param != "":
				b.WriteString(mask(param))
			case ok && v != "":
				b.WriteString(k + "=" + mask(v))
			default:
				b.WriteString(param)
			}
		}
	} else {
		b.WriteString(rest)
	}
	if fragment != "" {
		b.WriteString("#" + mask(fragment))
	}
	return b.String()
}

// unwrapMarkers replaces each scalar that is the base64 form of a marker by the marker.
func unwrapMarkers(n *yaml.Node, markers map[string]string) {
	if n.Kind == yaml.ScalarNode {
		if m, ok := markers[n.Value]; ok {
			*n = *str(m)
		}
		return
	}
	for _, c := range n.Content {
		unwrapMarkers(c, markers)
	}
}

// yamlName is the name of a struct field in YAML.
func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name
}
