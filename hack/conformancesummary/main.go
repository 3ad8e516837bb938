// Command conformancesummary prints the summary of a conformance run (make conformance)
// from ginkgo's JSON reports, or the skip list as ginkgo's --skip expression.
//
//	conformancesummary -skips test/conformance/skips.tsv report1.json [report2.json...]
//	conformancesummary -skips test/conformance/skips.tsv -skip-regexp
//
// It exits 1 when a [Conformance] spec failed or did not run, or, with -complete, when one
// was left out without a reason in the skip list.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/plinthos/plinth/internal/conformance"
)

func main() {
	skipsPath := flag.String("skips", "test/conformance/skips.tsv", "the skip list: a regular expression of test names, a tab, the reason")
	skipRegexp := flag.Bool("skip-regexp", false, "print the skip list as one regular expression for ginkgo's --skip, and exit")
	complete := flag.Bool("complete", false, "the run was not focused: every [Conformance] spec must have run or be skipped with a reason")
	flag.Parse()
	if err := run(*skipsPath, *skipRegexp, *complete, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "conformancesummary:", err)
		os.Exit(1)
	}
}

func run(skipsPath string, skipRegexp, complete bool, reports []string) error {
	f, err := os.Open(skipsPath)
	if err != nil {
		return err
	}
	skips, err := conformance.ParseSkips(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", skipsPath, err)
	}
	if skipRegexp {
		fmt.Println(conformance.SkipRegexp(skips))
		return nil
	}
	if len(reports) == 0 {
		return fmt.Errorf("no report given")
	}
	var passes [][]conformance.Spec
	for _, p := range reports {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		specs, err := conformance.ReadReport(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		passes = append(passes, specs)
	}
	sum := conformance.Summarize(os.Stdout, conformance.Merge(passes...), skips)
	notRun := sum.NotRun
	if complete {
		notRun += sum.NotSelected
	}
	if sum.Failed > 0 || notRun > 0 {
		return fmt.Errorf("%d [Conformance] specs failed and %d did not run", sum.Failed, notRun)
	}
	return nil
}
