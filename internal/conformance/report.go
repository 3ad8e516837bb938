// Package conformance summarizes a Kubernetes conformance run: it reads the JSON reports
// ginkgo writes (--json-report) of one or more passes, keeps the [Conformance] specs, and
// says how many passed, failed and were skipped, each failure with its message and each
// skip with its reason (from the run's skip list, or the test's own Skip).
package conformance

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Spec is one test of a run.
type Spec struct {
	Name  string
	State string // passed, failed, skipped, pending, panicked, timedout, interrupted, aborted
	// Message is the failure's message, or the test's own reason for a skip.
	Message  string
	Location string
	RunTime  time.Duration
}

// report is the part of ginkgo's JSON report (types.Report) that is read.
type report struct {
	SuiteDescription string
	SpecReports      []struct {
		ContainerHierarchyTexts []string
		LeafNodeType            string
		LeafNodeText            string
		State                   string
		RunTime                 time.Duration
		Failure                 struct {
			Message  string
			Location struct {
				FileName   string
				LineNumber int
			}
		}
	}
}

// ReadReport reads a ginkgo JSON report: the specs (It nodes) of every suite in it.
func ReadReport(r io.Reader) ([]Spec, error) {
	var reports []report
	if err := json.NewDecoder(r).Decode(&reports); err != nil {
		return nil, fmt.Errorf("read the ginkgo report: %w", err)
	}
	var specs []Spec
	for _, rep := range reports {
		for _, s := range rep.SpecReports {
			if s.LeafNodeType != "It" {
				continue // suite set-up nodes: a failure there fails the specs it ran for
			}
			name := strings.Join(append(slices.Clone(s.ContainerHierarchyTexts), s.LeafNodeText), " ")
			loc := ""
			if s.Failure.Location.FileName != "" {
				loc = fmt.Sprintf("%s:%d", s.Failure.Location.FileName, s.Failure.Location.LineNumber)
			}
			specs = append(specs, Spec{Name: name, State: s.State, Message: s.Failure.Message, Location: loc, RunTime: s.RunTime})
		}
	}
	return specs, nil
}

// Merge joins the specs of several passes (each runs some specs and skips the rest): a
// spec's outcome is that of the pass that ran it.
func Merge(passes ...[]Spec) []Spec {
	byName := map[string]Spec{}
	var order []string
	for _, pass := range passes {
		for _, s := range pass {
			old, ok := byName[s.Name]
			if !ok {
				order = append(order, s.Name)
			}
			if !ok || (old.State == "skipped" && s.State != "skipped") || (old.State == "skipped" && old.Message == "" && s.Message != "") {
				byName[s.Name] = s
			}
		}
	}
	out := make([]Spec, 0, len(order))
	for _, n := range order {
		out = append(out, byName[n])
	}
	return out
}

// Skip is a test the run skips on purpose, and why.
type Skip struct {
	Pattern *regexp.Regexp
	Reason  string
}

// ParseSkips reads a skip list: one entry per line, a regular expression of the test names
// to skip, a tab, and the reason; blank lines and lines starting with # are ignored.
func ParseSkips(r io.Reader) ([]Skip, error) {
	var skips []Skip
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		pat, reason, ok := strings.Cut(line, "\t")
		reason = strings.TrimSpace(reason)
		if !ok || reason == "" {
			return nil, fmt.Errorf("skip list line %d: want a pattern, a tab and the reason", n)
		}
		re, err := regexp.Compile(strings.TrimSpace(pat))
		if err != nil {
			return nil, fmt.Errorf("skip list line %d: %w", n, err)
		}
		skips = append(skips, Skip{Pattern: re, Reason: reason})
	}
	return skips, sc.Err()
}

// SkipRegexp is the skips joined for ginkgo's --skip.
func SkipRegexp(skips []Skip) string {
	var parts []string
	for _, s := range skips {
		parts = append(parts, s.Pattern.String())
	}
	return strings.Join(parts, "|")
}

// Summary counts a run's [Conformance] specs.
type Summary struct {
	Total, Passed, Failed, Skipped int
	// NotRun did not run to an end (interrupted, aborted); NotSelected were left out by the
	// run's focus, with no reason in the skip list.
	NotRun, NotSelected int
}

// Summarize writes the summary of the [Conformance] specs to w: the counts, then each
// failure with its message, each skip with its reason, and the specs that did not run to
// an end. A spec skipped by ginkgo's filters that no skip names was not selected (a
// focused run).
func Summarize(w io.Writer, specs []Spec, skips []Skip) Summary {
	var sum Summary
	var failed, skipped, notRun []string
	for _, s := range specs {
		if !strings.Contains(s.Name, "[Conformance]") {
			continue
		}
		sum.Total++
		switch s.State {
		case "passed":
			sum.Passed++
		case "failed", "panicked", "timedout":
			sum.Failed++
			failed = append(failed, fmt.Sprintf("%s (%s, after %s)\n    %s\n    at %s", s.Name, s.State, s.RunTime.Round(time.Second), firstLine(s.Message), s.Location))
		case "skipped":
			reason := ""
			for _, k := range skips {
				if k.Pattern.MatchString(s.Name) {
					reason = k.Reason
					break
				}
			}
			if reason == "" && s.Message != "" {
				reason = "the test skipped itself: " + firstLine(s.Message)
			}
			if reason == "" {
				sum.NotSelected++ // counted, not listed: a focused run leaves most out
				continue
			}
			sum.Skipped++
			skipped = append(skipped, fmt.Sprintf("%s\n    %s", s.Name, reason))
		default:
			sum.NotRun++
			notRun = append(notRun, fmt.Sprintf("%s (%s)", s.Name, cmp.Or(s.State, "no state")))
		}
	}
	fmt.Fprintf(w, "[Conformance] specs: %d; passed %d, failed %d, skipped %d, not run %d, not selected by the focus %d\n",
		sum.Total, sum.Passed, sum.Failed, sum.Skipped, sum.NotRun, sum.NotSelected)
	for _, part := range []struct {
		title string
		lines []string
	}{{"Failed", failed}, {"Skipped, with the reason", skipped}, {"Not run", notRun}} {
		if len(part.lines) == 0 {
			continue
		}
		slices.Sort(part.lines)
		fmt.Fprintf(w, "\n%s (%d):\n", part.title, len(part.lines))
		for _, l := range part.lines {
			fmt.Fprintf(w, "  - %s\n", l)
		}
	}
	return sum
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " ..."
	}
	if len(s) > 300 {
		s = s[:300] + " ..."
	}
	return s
}
