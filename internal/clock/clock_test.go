package clock

import (
	"testing"
	"time"
)

func TestFakeFiresInOrderOnlyWhenDue(t *testing.T) {
	f := NewFake(time.Unix(1000, 0))
	a := f.NewTimer(2 * time.Second)
	b := f.After(time.Second)
	stopped := f.NewTimer(time.Second)
	if !stopped.Stop() {
		t.Fatal("Stop of a pending timer returned false")
	}
	if f.Pending() != 2 {
		t.Fatalf("Pending = %d, want 2", f.Pending())
	}
	f.Advance(500 * time.Millisecond)
	select {
	case <-b:
		t.Fatal("timer fired early")
	default:
	}
	f.Advance(600 * time.Millisecond)
	if got := <-b; !got.Equal(time.Unix(1001, 0)) {
		t.Errorf("b fired with %v", got)
	}
	select {
	case <-a.C():
		t.Fatal("a fired early")
	case <-stopped.C():
		t.Fatal("a stopped timer fired")
	default:
	}
	f.Advance(time.Second)
	<-a.C()
	if a.Stop() {
		t.Error("Stop of a fired timer returned true")
	}
	if !f.Now().Equal(time.Unix(1000, 0).Add(2100 * time.Millisecond)) {
		t.Errorf("Now = %v", f.Now())
	}
	if zero := f.NewTimer(0); len(zero.C()) != 1 {
		t.Error("a zero-duration timer must fire at once")
	}
}
