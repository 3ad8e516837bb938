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

// editDistance is the optimal string alignment distance between a and b, counted in bytes:
// insertions, deletions, substitutions and transpositions of adjacent letters (the commonest
// typo, "tpye") each cost one.
func editDistance(a, b string) int {
	// d[i][j] is the distance between a[:i] and b[:j].
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
