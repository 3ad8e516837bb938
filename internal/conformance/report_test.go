package conformance

import (
	"bytes"
	"strings"
	"testing"
)

const pass1 = `[{"SuiteDescription":"Kubernetes e2e suite","SpecReports":[
 {"LeafNodeType":"SynchronizedBeforeSuite","State":"passed"},
 {"ContainerHierarchyTexts":["[sig-node] Pods"],"LeafNodeText":"should run [Conformance]","LeafNodeType":"It","State":"passed","RunTime":2000000000},
 {"ContainerHierarchyTexts":["[sig-network] DNS"],"LeafNodeText":"should resolve [Conformance]","LeafNodeType":"It","State":"failed","RunTime":61000000000,
  "Failure":{"Message":"timed out\nmore","Location":{"FileName":"dns.go","LineNumber":42}}},
 {"ContainerHierarchyTexts":["[sig-node] Env"],"LeafNodeText":"dashes [Conformance]","LeafNodeType":"It","State":"skipped"},
 {"ContainerHierarchyTexts":["[sig-apps] Serial"],"LeafNodeText":"one at a time [Serial] [Conformance]","LeafNodeType":"It","State":"skipped"},
 {"ContainerHierarchyTexts":["[sig-apps] Other"],"LeafNodeText":"not conformance","LeafNodeType":"It","State":"skipped"},
 {"ContainerHierarchyTexts":["[sig-storage] Self"],"LeafNodeText":"skips itself [Conformance]","LeafNodeType":"It","State":"skipped","Failure":{"Message":"Only supported for providers [gce]"}}
]}]`

const pass2 = `[{"SuiteDescription":"Kubernetes e2e suite","SpecReports":[
 {"ContainerHierarchyTexts":["[sig-node] Pods"],"LeafNodeText":"should run [Conformance]","LeafNodeType":"It","State":"skipped"},
 {"ContainerHierarchyTexts":["[sig-apps] Serial"],"LeafNodeText":"one at a time [Serial] [Conformance]","LeafNodeType":"It","State":"passed"}
]}]`

func TestSummarize(t *testing.T) {
	a, err := ReadReport(strings.NewReader(pass1))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ReadReport(strings.NewReader(pass2))
	if err != nil {
		t.Fatal(err)
	}
	skips, err := ParseSkips(strings.NewReader("# comment\n\n\\[sig-node\\] Env dashes\tbusybox 1.35's sh drops variables with dashes\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := SkipRegexp(skips); got != `\[sig-node\] Env dashes` {
		t.Errorf("skip regexp %q", got)
	}
	var out bytes.Buffer
	sum := Summarize(&out, Merge(a, b), skips)
	if sum != (Summary{Total: 5, Passed: 2, Failed: 1, Skipped: 2}) {
		t.Errorf("summary %+v\n%s", sum, out.String())
	}
	for _, want := range []string{
		"[Conformance] specs: 5; passed 2, failed 1, skipped 2, not run 0, not selected by the focus 0",
		"[sig-network] DNS should resolve [Conformance] (failed, after 1m1s)\n    timed out ...\n    at dns.go:42",
		"busybox 1.35's sh drops variables with dashes",
		"the test skipped itself: Only supported for providers [gce]",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "not conformance") {
		t.Errorf("a spec that is not [Conformance] is counted:\n%s", out.String())
	}
}

func TestParseSkipsRefusesBadLines(t *testing.T) {
	for _, in := range []string{"no reason here\n", "([\tbad regexp\n", "pattern\t \n"} {
		if _, err := ParseSkips(strings.NewReader(in)); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestSummarizeFocusedRun(t *testing.T) {
	specs, err := ReadReport(strings.NewReader(pass2))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if sum := Summarize(&out, specs, nil); sum != (Summary{Total: 2, Passed: 1, NotSelected: 1}) {
		t.Errorf("summary %+v\n%s", sum, out.String())
	}
}
