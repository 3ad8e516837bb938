package resource

import (
	"errors"
	"strings"
	"testing"
)

func TestRegistry(t *testing.T) {
	reg := NewRegistry()
	addr := Definition{
		Type:             "Addresses.net.plinth.dev",
		Aliases:          []string{"address", "addresses", "addr", "ADDRESSES.NET.PLINTH.DEV"},
		DefaultNamespace: "network",
		PrintColumns:     []Column{{Name: "Address", JSONPath: "{.spec.address}"}},
	}
	if err := reg.Register(addr); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(Definition{Type: "Secrets.plinth.dev", Aliases: []string{"secret"}, Sensitive: true}); err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"Addresses.net.plinth.dev", "addresses.net.plinth.dev", "Address", "addresses", "ADDR", " addr "} {
		d, err := reg.Lookup(name)
		if err != nil || d.Type != addr.Type || d.DefaultNamespace != "network" {
			t.Errorf("Lookup(%q) = %+v, %v", name, d, err)
		}
	}
	if _, err := reg.Lookup("routes"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "routes") {
		t.Errorf("Lookup unknown: %v", err)
	}

	for _, dup := range []Definition{
		{Type: "Addresses.net.plinth.dev"},
		{Type: "addresses.NET.plinth.dev"},
		{Type: "Other", Aliases: []string{"Addr"}},
		{Type: "addr"},
		{Type: "Twice", Aliases: []string{"tw", "TW"}},
	} {
		err := reg.Register(dup)
		if !errors.Is(err, ErrAlreadyExists) {
			t.Errorf("Register(%+v) = %v, want ErrAlreadyExists", dup, err)
		}
	}
	// A refused definition leaves no alias behind.
	if _, err := reg.Lookup("tw"); !errors.Is(err, ErrNotFound) {
		t.Errorf("refused definition registered an alias: %v", err)
	}
	for _, bad := range []Definition{{}, {Type: "X", Aliases: []string{""}}} {
		if err := reg.Register(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Register(%+v) = %v, want ErrInvalid", bad, err)
		}
	}

	list := reg.List()
	if len(list) != 2 || list[0].Type != "Addresses.net.plinth.dev" || list[1].Type != "Secrets.plinth.dev" || !list[1].Sensitive {
		t.Fatalf("List = %+v", list)
	}
	// Returned definitions are copies.
	list[0].Aliases[0] = "mutated"
	list[0].PrintColumns[0].Name = "mutated"
	d, _ := reg.Lookup("address")
	if d.Aliases[0] != "address" || d.PrintColumns[0].Name != "Address" {
		t.Errorf("registry changed through List: %+v", d)
	}
}
