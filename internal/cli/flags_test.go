package cli

import (
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestNoFlagShadowsAGlobalOne: a command's own flag with the name of a global flag (such as
// --nodes) would hide the global one and its shorthand (-n) for that command.
func TestNoFlagShadowsAGlobalOne(t *testing.T) {
	root := NewRootCommand()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
			if g := root.PersistentFlags().Lookup(f.Name); g != nil {
				t.Errorf("%s: flag --%s shadows the global --%s", c.CommandPath(), f.Name, g.Name)
			}
			if f.Shorthand != "" {
				if g := root.PersistentFlags().ShorthandLookup(f.Shorthand); g != nil {
					t.Errorf("%s: flag -%s shadows the global -%s", c.CommandPath(), f.Shorthand, g.Shorthand)
				}
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
