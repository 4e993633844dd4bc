package manifests

import (
	"path/filepath"
	"testing"
)

// TestPullAllowedSignersRelative: spec.pull.allowedSigners resolves against
// the manifest's directory, like the other paths.
func TestPullAllowedSignersRelative(t *testing.T) {
	root := tempRoot(t)
	write(t, root, map[string]string{"apps/web.yaml": "apiVersion: zocker/v1\nkind: Image\nmetadata: {name: web}\nspec:\n  pull: {repository: 'file:///srv/images', allowedSigners: ../keys/allowed_signers}\n"})
	set, err := Load(root, LoadOptions{})
	if err != nil || len(errorsOf(set)) != 0 {
		t.Fatalf("%v %v", set.Problems, err)
	}
	if got, want := set.Images["web"].Spec.Pull.AllowedSigners, filepath.Join(root, "keys/allowed_signers"); got != want {
		t.Errorf("allowedSigners = %q, want %q", got, want)
	}
}
