package config
import ("testing";"fmt";"strings";"time")
func TestScratch(t *testing.T){
 base := "apiVersion: plinth.dev/v1alpha1\nkind: MachineConfig\n"
 for _, s := range []string{
  "machine:\n  type: worker\n bad: x\n",
  "machine:\n  type: worker\n  token: \"abc\n",
  "machine:\n  type: worker\n  - x\n",
  "machine:\n  type: [a\n\n\n",
  "machine:\n  type: [a, b\ncluster: {}\n",
  "machine:\n  type: 'abc\n",
  "machine:\n  type: *x\n",
  "machine:\n  type: a\n  token: b: c\n",
  "machine:\n  type: a\n  token: @x\n",
  "machine:\n  type: a\n  token: `x\n",
 } {
  _, err := Load([]byte(base+s), "f.yaml")
  fmt.Printf("=== %q\n  err=%v\n", s, err)
 }
 for _, n := range []int{10, 20, 40, 80} {
  var b strings.Builder
  b.WriteString(base + "machine:\n  network:\n    hostname: &r {network: 10.0.0.0/8, gateway: 10.0.0.1, bogus: 1}\n    nameservers: &v {vlanId: 5, routes: [")
  for i := 0; i < n; i++ { if i>0 {b.WriteString(",")}; b.WriteString("*r") }
  b.WriteString("]}\n    interfaces:\n      - &i {name: eth0, vlans: [")
  for i := 0; i < n; i++ { if i>0 {b.WriteString(",")}; b.WriteString("*v") }
  b.WriteString("]}\n")
  for i := 1; i < n; i++ { b.WriteString("      - *i\n") }
  start := time.Now()
  _, err := Load([]byte(b.String()), "bomb.yaml")
  ps, _ := err.(Problems)
  fmt.Printf("n=%d size=%d time=%v problems=%d\n", n, b.Len(), time.Since(start), len(ps))
 }
}
