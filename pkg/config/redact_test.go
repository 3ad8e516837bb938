package config_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/plinthos/plinth/pkg/config"
)

// TestEveryTextFieldClassified walks every field of the configuration types and fails for
// a field that holds text (a string, bytes, or a list or map of them) without a `plinth`
// tag saying whether it may hold a secret: a new field must be classified, or Redact would
// mask it as a secret (fail closed) without anyone having decided.
func TestEveryTextFieldClassified(t *testing.T) {
	classes := []string{config.ClassSecret, config.ClassURL, config.ClassPublic}
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		if seen[typ] {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			path := typ.Name() + "." + f.Name
			tag, tagged := f.Tag.Lookup(config.TagKey)
			leaf := f.Type
			for {
				switch leaf.Kind() {
				case reflect.Pointer, reflect.Slice, reflect.Array:
					if leaf.Kind() == reflect.Slice && leaf.Elem().Kind() == reflect.Uint8 {
						break // bytes are text
					}
					leaf = leaf.Elem()
					continue
				case reflect.Map:
					if leaf.Key().Kind() != reflect.String {
						t.Errorf("%s: map keys are shown unmasked and must be strings, not %s", path, leaf.Key())
					}
					leaf = leaf.Elem()
					continue
				}
				break
			}
			text := leaf.Kind() == reflect.String || leaf.Kind() == reflect.Slice
			switch {
			case !f.IsExported():
				t.Errorf("%s: unexported fields are not part of the configuration", path)
			case leaf.Kind() == reflect.Struct:
				if tagged {
					t.Errorf("%s: holds a struct; tag the fields of %s instead of %s", path, leaf.Name(), path)
				}
				walk(leaf)
			case text && !tagged:
				t.Errorf("%s holds text but has no %s tag: add `%s:\"secret\"` if it may ever hold a secret, else `%s:\"public\"` (or `%s:\"url\"` for URLs)",
					path, config.TagKey, config.TagKey, config.TagKey, config.TagKey)
			case text && !slices.Contains(classes, tag):
				t.Errorf("%s: %s tag %q is none of %v", path, config.TagKey, tag, classes)
			case !text && !(leaf.Kind() >= reflect.Bool && leaf.Kind() <= reflect.Float64):
				t.Errorf("%s: %s cannot be classified; configuration fields are structs, text, booleans and numbers", path, leaf)
			case !text && tagged:
				t.Errorf("%s: holds %s, never a secret: remove the %s tag", path, leaf, config.TagKey)
			}
		}
	}
	walk(reflect.TypeFor[config.MachineConfig]())
}

// TestSecretFields lists the fields masked whole and those masked as URLs, so that turning
// a secret into a public field is a visible change of this list.
func TestSecretFields(t *testing.T) {
	byClass := map[string][]string{}
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			if class := f.Tag.Get(config.TagKey); class != "" {
				byClass[class] = append(byClass[class], typ.Name()+"."+f.Name)
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[config.MachineConfig]())
	want := map[string][]string{
		config.ClassSecret: {
			"APIServerSpec.ExtraArgs", "CertAndKey.Key", "ClusterSpec.Secret",
			"ClusterSpec.SecretboxEncryptionSecret", "ClusterSpec.Token", "ComponentSpec.ExtraArgs",
			"EtcdSpec.ExtraArgs", "File.Content", "InlineManifest.Contents", "KubeletSpec.ExtraArgs",
			"MachineSpec.Env", "MachineSpec.Token", "ProxySpec.ExtraArgs", "ServiceAccountSpec.Key",
		},
		config.ClassURL: {
			"CNISpec.URLs", "ClusterSpec.ExtraManifests", "ControlPlaneSpec.Endpoint",
			"LogDestination.Endpoint", "Mirror.Endpoints",
		},
	}
	for _, class := range []string{config.ClassSecret, config.ClassURL} {
		got := byClass[class]
		slices.Sort(got)
		if !slices.Equal(got, want[class]) {
			t.Errorf("fields tagged %s:%q:\n got %q\nwant %q", config.TagKey, class, got, want[class])
		}
	}
}

// textLeaf is one text value put in a configuration by fill: the parts Redact must keep
// and those it must hide.
type textLeaf struct {
	field  string
	shown  []string
	hidden []string
	binary bool
}

// fill sets every text value reachable from v (one item in each list and map, every
// pointer allocated) to a value unique to it, made by its field's class.
func fill(v reflect.Value, class, field string, leaves *[]textLeaf) {
	n := len(*leaves)
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), class, field, leaves)
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			fill(v.Field(i), f.Tag.Get(config.TagKey), v.Type().Name()+"."+name, leaves)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			s := leafText(class, field, n, true, leaves)
			v.SetBytes([]byte(s))
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0), class, field, leaves)
	case reflect.Map:
		k := reflect.New(v.Type().Key()).Elem()
		k.SetString(fmt.Sprintf("mapkey%03d", n))
		*leaves = append(*leaves, textLeaf{field: field + " (key)", shown: []string{k.String()}})
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e, class, field, leaves)
		v.Set(reflect.MakeMap(v.Type()))
		v.SetMapIndex(k, e)
	case reflect.String:
		v.SetString(leafText(class, field, n, false, leaves))
	}
}

func leafText(class, field string, n int, binary bool, leaves *[]textLeaf) string {
	l := textLeaf{field: field, binary: binary}
	var s string
	switch class {
	case config.ClassPublic:
		s = fmt.Sprintf("public%03d", n)
		l.shown = []string{s}
	case config.ClassURL:
		s = fmt.Sprintf("https://user%03d:password%03d@host%03d.example:8443/path%03d?ref=ref%03d&token=query%03d#frag%03d", n, n, n, n, n, n, n)
		l.shown = []string{fmt.Sprintf("@host%03d.example:8443/path%03d?ref=", n, n), "&token="}
		l.hidden = []string{fmt.Sprintf("user%03d", n), fmt.Sprintf("password%03d", n),
			fmt.Sprintf("ref%03d", n), fmt.Sprintf("query%03d", n), fmt.Sprintf("frag%03d", n)}
	default:
		s = fmt.Sprintf("secret%03d", n)
		l.hidden = []string{s}
	}
	*leaves = append(*leaves, l)
	return s
}

// TestRedactMasksEveryTextValueByItsTag fills every text value of a configuration and checks
// that the redacted YAML hides exactly the secrets the tags name, in every field.
func TestRedactMasksEveryTextValueByItsTag(t *testing.T) {
	var c config.MachineConfig
	var leaves []textLeaf
	fill(reflect.ValueOf(&c).Elem(), "", "MachineConfig", &leaves)
	if len(leaves) >= 1000 {
		t.Fatal("the test's values are numbered with 3 digits")
	}
	before := mustMarshal(t, &c, false)
	out, err := config.MarshalRedacted(&c, func(field, _ string) string { return "MASKED(" + field + ")" })
	if err != nil {
		t.Fatal(err)
	}
	if after := mustMarshal(t, &c, false); !bytes.Equal(before, after) {
		t.Error("MarshalRedacted modified its input")
	}
	plain := mustMarshal(t, config.Redact(&c, func(string, string) string { return "(secret)" }), false)
	for _, l := range leaves {
		for _, s := range l.hidden {
			for name, text := range map[string][]byte{"MarshalRedacted": out, "Marshal(Redact)": plain} {
				if bytes.Contains(text, []byte(s)) || bytes.Contains(text, []byte(base64.StdEncoding.EncodeToString([]byte(s)))) {
					t.Errorf("%s: %s shows %q", name, l.field, s)
				}
			}
		}
		for _, s := range l.shown {
			if l.binary {
				s = base64.StdEncoding.EncodeToString([]byte(s))
			}
			if !bytes.Contains(out, []byte(s)) {
				t.Errorf("MarshalRedacted: %s does not show %q", l.field, s)
			}
		}
		if len(l.hidden) > 0 && !bytes.Contains(out, []byte("MASKED("+strings.TrimSuffix(l.field, " (key)"))) {
			t.Errorf("MarshalRedacted: no marker for %s", l.field)
		}
	}
	if t.Failed() {
		t.Logf("redacted:\n%s", out)
	}
}

// TestRedactedIsADeepCopy: the redacted copy shares no map, list or pointer with the
// running configuration, which must never change.
func TestRedactedIsADeepCopy(t *testing.T) {
	var c config.MachineConfig
	var leaves []textLeaf
	fill(reflect.ValueOf(&c).Elem(), "", "MachineConfig", &leaves)
	before := mustMarshal(t, &c, false)
	r := config.Redacted(&c)
	var check func(a, b reflect.Value, path string)
	check = func(a, b reflect.Value, path string) {
		switch a.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Slice:
			if !a.IsNil() && (a.Kind() == reflect.Pointer || a.Len() > 0) {
				if a.Pointer() == b.Pointer() {
					t.Errorf("%s: the redacted copy shares memory with the original", path)
				}
			}
		}
		switch a.Kind() {
		case reflect.Pointer:
			check(a.Elem(), b.Elem(), path)
		case reflect.Struct:
			for i := range a.NumField() {
				check(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name)
			}
		case reflect.Slice:
			if a.Type().Elem().Kind() != reflect.Uint8 {
				for i := range a.Len() {
					check(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i))
				}
			}
		case reflect.Map:
			for _, k := range a.MapKeys() {
				check(a.MapIndex(k), b.MapIndex(k), path+"["+k.String()+"]")
			}
		}
	}
	check(reflect.ValueOf(&c), reflect.ValueOf(r), "MachineConfig")
	if after := mustMarshal(t, &c, false); !bytes.Equal(before, after) {
		t.Error("Redacted modified its input")
	}
	if config.Redacted(nil) != nil {
		t.Error("Redacted(nil) is not nil")
	}
}

// TestRedactedGeneratedConfig: on a real configuration the keys, tokens and cluster secrets
// are masked, private keys read as the marker (not its base64), and empty secrets stay
// empty so that presence shows.
func TestRedactedGeneratedConfig(t *testing.T) {
	cp, w := controlPlane(t), worker(t)
	out, err := config.MarshalRedacted(cp, func(string, string) string { return "(secret)" })
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{
		"machine.token":                     cp.Machine.Token,
		"machine.ca.key":                    base64.StdEncoding.EncodeToString(cp.Machine.CA.Key),
		"cluster.secret":                    cp.Cluster.Secret,
		"cluster.token":                     cp.Cluster.Token,
		"cluster.secretboxEncryptionSecret": cp.Cluster.SecretboxEncryptionSecret,
		"cluster.ca.key":                    base64.StdEncoding.EncodeToString(cp.Cluster.CA.Key),
		"cluster.aggregatorCA.key":          base64.StdEncoding.EncodeToString(cp.Cluster.AggregatorCA.Key),
		"cluster.etcd.ca.key":               base64.StdEncoding.EncodeToString(cp.Cluster.Etcd.CA.Key),
		"cluster.serviceAccount.key":        base64.StdEncoding.EncodeToString(cp.Cluster.ServiceAccount.Key),
	} {
		if s == "" {
			t.Fatalf("the generated config has no %s", name)
		}
		if bytes.Contains(out, []byte(s)) {
			t.Errorf("the redacted config shows %s", name)
		}
	}
	for _, want := range []string{
		"    key: (secret)\n",
		"    crt: " + base64.StdEncoding.EncodeToString(cp.Cluster.CA.Crt) + "\n",
		"  id: " + cp.Cluster.ID + "\n",
		"  name: demo\n",
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("the redacted config lacks %q", want)
		}
	}
	wout, err := config.MarshalRedacted(w, func(string, string) string { return "(secret)" })
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(wout, []byte("key:")) || bytes.Contains(wout, []byte("secretboxEncryptionSecret")) {
		t.Errorf("a worker's absent keys show in its redacted config:\n%s", wout)
	}
	if out, err := config.MarshalRedacted(nil, config.FingerprintMask()); out != nil || err != nil {
		t.Errorf("MarshalRedacted(nil) = %q, %v", out, err)
	}
}

func TestFingerprintMask(t *testing.T) {
	mask := config.FingerprintMask()
	a := mask("MachineSpec.env", "http://user:hunter2@proxy:3128")
	if a != mask("MachineSpec.env", "http://user:hunter2@proxy:3128") {
		t.Error("one mask gives an equal secret two markers")
	}
	if !strings.HasPrefix(a, "(secret ") || len(a) != len("(secret 0123456789ab)") || strings.Contains(a, "hunter2") {
		t.Errorf("marker %q", a)
	}
	for name, b := range map[string]string{
		"a changed secret":                     mask("MachineSpec.env", "http://user:hunter3@proxy:3128"),
		"the same secret in another field":     mask("File.content", "http://user:hunter2@proxy:3128"),
		"the same secret with another mask":    config.FingerprintMask()("MachineSpec.env", "http://user:hunter2@proxy:3128"),
		"field and secret split elsewhere":     mask("MachineSpec.en", "vhttp://user:hunter2@proxy:3128"),
		"another secret made of the same text": mask("MachineSpec.env", "http://user:hunter2@proxy:312"),
	} {
		if b == a {
			t.Errorf("%s gets the same marker %s", name, a)
		}
	}
}
