package supervisor

import "testing"

// Up is the reconciler's and ps's "running", Running the command's.
func TestUpAndRunning(t *testing.T) {
	for _, c := range []struct {
		alive       bool
		state       State
		up, running bool
	}{
		{true, StateRunning, true, true},
		{true, StateStarting, true, false},
		{true, StateBackoff, true, false},
		{true, StateExited, true, false},
		{true, StateStopped, false, false},
		{true, StateFailed, false, false},
		{false, StateRunning, false, false}, // a dead supervisor's last word
		{false, StateBackoff, false, false},
	} {
		s := Status{Alive: c.alive, State: c.state}
		if s.Up() != c.up || s.Running() != c.running {
			t.Errorf("alive %v state %s: Up %v Running %v, want %v %v", c.alive, c.state, s.Up(), s.Running(), c.up, c.running)
		}
	}
}
