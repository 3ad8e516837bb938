// Package version holds the build's version, set at link time by the Makefile.
package version

// Tag is the release tag of this build, set with -ldflags "-X .../internal/version.Tag=...".
var Tag = "dev"
