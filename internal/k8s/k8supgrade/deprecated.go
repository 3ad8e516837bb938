package k8supgrade

import (
	"fmt"
	"slices"
	"strings"
)

// DeprecatedMetric is the API server's metric of the deprecated APIs that were requested
// since it started (a gauge at 1 per group, version, resource and release that removes it).
const DeprecatedMetric = "apiserver_requested_deprecated_apis"

// DeprecatedAPI is a deprecated API that clients used.
type DeprecatedAPI struct {
	Group, Version, Resource, Subresource string
	// RemovedRelease is the MAJOR.MINOR release that no longer serves it ("" if none is
	// planned yet).
	RemovedRelease string
}

func (d DeprecatedAPI) String() string {
	gv := d.Version
	if d.Group != "" {
		gv = d.Group + "/" + d.Version
	}
	r := d.Resource
	if d.Subresource != "" {
		r += "/" + d.Subresource
	}
	if d.RemovedRelease == "" {
		return gv + " " + r + " (deprecated)"
	}
	return fmt.Sprintf("%s %s (removed in %s)", gv, r, d.RemovedRelease)
}

// ParseDeprecated reads the deprecated APIs out of /metrics lines of DeprecatedMetric, such as
//
//	apiserver_requested_deprecated_apis{group="flowcontrol.apiserver.k8s.io",removed_release="1.32",resource="flowschemas",subresource="",version="v1beta3"} 1
//
// Series whose value is not 1 are left out.
func ParseDeprecated(lines []string) []DeprecatedAPI {
	var out []DeprecatedAPI
	for _, l := range lines {
		rest, ok := strings.CutPrefix(l, DeprecatedMetric+"{")
		if !ok {
			continue
		}
		i := strings.LastIndex(rest, "}")
		if i < 0 || strings.TrimSpace(rest[i+1:]) != "1" {
			continue
		}
		labels := parseLabels(rest[:i])
		d := DeprecatedAPI{Group: labels["group"], Version: labels["version"], Resource: labels["resource"],
			Subresource: labels["subresource"], RemovedRelease: labels["removed_release"]}
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// parseLabels reads name="value",... (values with \" and \\ escapes).
func parseLabels(s string) map[string]string {
	labels := map[string]string{}
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			break
		}
		name := strings.TrimSpace(strings.TrimPrefix(s[:eq], ","))
		var val strings.Builder
		j := eq + 2
		for ; j < len(s) && s[j] != '"'; j++ {
			if s[j] == '\\' && j+1 < len(s) {
				j++
			}
			val.WriteByte(s[j])
		}
		labels[name] = val.String()
		if j+1 > len(s) {
			break
		}
		s = s[j+1:]
	}
	return labels
}

// RemovedBy returns the APIs among apis that version to no longer serves.
func RemovedBy(apis []DeprecatedAPI, to Version) []DeprecatedAPI {
	var out []DeprecatedAPI
	for _, d := range apis {
		rel, err := ParseVersion(d.RemovedRelease + ".0")
		if err != nil {
			continue
		}
		if !to.Less(rel) {
			out = append(out, d)
		}
	}
	return out
}
