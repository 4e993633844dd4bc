package manifests

import (
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSecurityM1SwapRace is the review's reproduction (M1): a root-owned
// zocker.d/app.yaml (Container good) beside an attacker's b/app.yaml
// (Container evil), the two directories swapped with
// renameat2(RENAME_EXCHANGE) in a loop while the manifests are loaded.
// Before the fix 4,005 of 162,000 loads accepted evil.
//
// Two layouts: the review's, where the common parent belongs to the
// attacker (now refused outright: not one load may succeed), and a
// root-owned sticky parent (/tmp-style, accepted) where this test, as root,
// swaps what a real attacker could not: there the descriptor-based walk
// must never read evil as a secure manifest. 100,000 loads in all.
func TestSecurityM1SwapRace(t *testing.T) {
	requireRoot(t)
	const loads = 50_000
	for _, layout := range []string{"attacker-owned parent", "root-owned sticky parent"} {
		t.Run(layout, func(t *testing.T) {
			parent := filepath.Join(t.TempDir(), "x")
			root := filepath.Join(parent, "zocker.d")
			other := filepath.Join(parent, "b")
			write(t, root, map[string]string{"app.yaml": container("good")})
			write(t, other, map[string]string{"app.yaml": container("evil")})
			for _, p := range []string{other, filepath.Join(other, "app.yaml")} {
				if err := os.Chown(p, nobody, nobody); err != nil {
					t.Fatal(err)
				}
			}
			if layout == "attacker-owned parent" {
				if err := os.Chown(parent, nobody, nobody); err != nil {
					t.Fatal(err)
				}
			} else if err := os.Chmod(parent, 0o777|os.ModeSticky); err != nil {
				t.Fatal(err)
			}
			if err := unix.Renameat2(unix.AT_FDCWD, root, unix.AT_FDCWD, other, unix.RENAME_EXCHANGE); err != nil {
				t.Skipf("renameat2(RENAME_EXCHANGE) not supported here: %v", err)
			}
			var stop atomic.Bool
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					_ = unix.Renameat2(unix.AT_FDCWD, root, unix.AT_FDCWD, other, unix.RENAME_EXCHANGE)
				}
			}()
			var good, evil, refused int
			for range loads {
				set, err := Load(root, LoadOptions{})
				switch {
				case err != nil:
					refused++
				case set.Containers["evil"] != nil:
					evil++
				case set.Containers["good"] != nil:
					good++
				default:
					refused++
				}
			}
			stop.Store(true)
			wg.Wait()
			t.Logf("%s: loads=%d good=%d evil-accepted=%d refused=%d", layout, loads, good, evil, refused)
			if evil != 0 {
				t.Fatalf("%d of %d loads accepted the attacker's manifest", evil, loads)
			}
			if layout == "attacker-owned parent" && good != 0 {
				t.Fatalf("%d loads accepted a root below an attacker-owned directory", good)
			}
		})
	}
}
