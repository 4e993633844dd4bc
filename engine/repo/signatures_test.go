package repo

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/engine/sign"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

// TestSignedPullReceivesNothingUntilAllVerified: the oldest image's record
// is the last one the walk reads; a bad signature there must still stop the
// pull before the first Receive. A signature moved from another image's
// record does not sign this one.
func TestSignedPullReceivesNothingUntilAllVerified(t *testing.T) {
	ctx := context.Background()
	keys := t.TempDir()
	privA, pubA := testenv.SSHKey(t, keys, "a", "ed25519")
	k, err := sign.LoadKey(privA)
	if err != nil {
		t.Fatal(err)
	}
	allowed := filepath.Join(keys, "allowed")
	os.WriteFile(allowed, []byte("ops@example "+pubA+"\n"), 0o600)
	pol, err := sign.Files{AllowedSigners: allowed}.Load()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r, err := Open(ctx, "file://"+dir, Options{SignKey: k})
	if err != nil {
		t.Fatal(err)
	}
	f := newFake()
	a, b, c := chain(f)
	if _, err := r.Push(ctx, f, "app"); err != nil {
		t.Fatal(err)
	}
	v, err := Open(ctx, "file://"+dir, Options{Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		breakIt func() func()
		want    string
	}{
		{"root record edited", func() func() {
			p := filepath.Join(dir, "images", a, "meta.json")
			orig, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(orig), `"cmd"`, `"Cmd"`, 1)), 0o644)
			return func() { os.WriteFile(p, orig, 0o644) }
		}, "image " + a[:12] + ": signature by " + k.Fingerprint() + " does not match the content"},
		{"signature moved from another record", func() func() {
			p := filepath.Join(dir, "images", b, "meta.json.sig")
			orig, _ := os.ReadFile(p)
			other, _ := os.ReadFile(filepath.Join(dir, "images", c, "meta.json.sig"))
			os.WriteFile(p, other, 0o644)
			return func() { os.WriteFile(p, orig, 0o644) }
		}, "image " + b[:12] + ": signature by " + k.Fingerprint() + " does not match the content"},
		{"root signature removed", func() func() {
			p := filepath.Join(dir, "images", a, "meta.json.sig")
			orig, _ := os.ReadFile(p)
			os.Remove(p)
			return func() { os.WriteFile(p, orig, 0o644) }
		}, "image " + a[:12] + " is unsigned"},
	} {
		undo := tc.breakIt()
		g := newFake()
		_, err := v.Pull(ctx, g, "app")
		undo()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
		if g.nwork != 0 || len(g.images) != 0 {
			t.Errorf("%s: %d receives, %d images: something was received", tc.name, g.nwork, len(g.images))
		}
	}
	g := newFake()
	res, err := v.Pull(ctx, g, "app")
	if err != nil || len(res.Received) != 3 || res.Signer.Principals != "ops@example" {
		t.Fatalf("verified pull: %+v %v", res, err)
	}
}
