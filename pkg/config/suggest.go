package config

import (
	"reflect"
	"strings"
)

// suggest returns the field name most likely meant by a misspelled one, or "" when none is
// close enough.
func suggest(name string, fields map[string]reflect.StructField) string {
	best, bestDist := "", -1
	for candidate := range fields {
		if strings.EqualFold(candidate, name) {
			return candidate
		}
		d := editDistance(strings.ToLower(name), strings.ToLower(candidate))
		if bestDist < 0 || d < bestDist || d == bestDist && candidate < best {
			best, bestDist = candidate, d
		}
	}
	limit := max(2, len(name)/3)
	if bestDist < 0 || bestDist > limit {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, counted in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
