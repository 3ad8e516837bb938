package config

import "fmt"

// Mode is the kind of platform a configuration is validated for; requirements differ
// between them (an install disk is needed on bare metal, not in Docker).
type Mode string

// The validation modes.
const (
	ModeDocker Mode = "docker"
	ModeMetal  Mode = "metal"
	ModeCloud  Mode = "cloud"
)

// Modes lists the validation modes.
var Modes = []Mode{ModeDocker, ModeMetal, ModeCloud}

// ParseMode parses a validation mode name.
func ParseMode(s string) (Mode, error) {
	for _, m := range Modes {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("unknown mode %q: use docker, metal or cloud", s)
}
