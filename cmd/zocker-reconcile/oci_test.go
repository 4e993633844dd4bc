package main

import (
	"strings"
	"testing"
)

// TestOCICommandsRefuseBadInputFirst: bad references, platforms and flag
// combinations are refused before the store (here: a pool that does not
// exist) is opened.
func TestOCICommandsRefuseBadInputFirst(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"import", "-t", "x", "docker://"}, "image reference"},
		{[]string{"import", "-t", "x", "docker://Registry.example.com/UPPER:tag"}, "image reference"},
		{[]string{"import", "-t", "x", "docker://127.0.0.1:5000/a:v1", "--platform", "amd64"}, "want OS/ARCH"},
		{[]string{"import", "-t", "x", "docker://127.0.0.1:5000/a:v1", "--sha256", strings.Repeat("0", 64)}, "--sha256 and --name are for oci-archive"},
		{[]string{"import", "-t", "x", "oci-archive:"}, "give the archive's path"},
		{[]string{"import", "-t", "Bad_Tag", "docker://127.0.0.1:5000/a:v1"}, "invalid tag"},
		{[]string{"push", "app", "oci-archive:/tmp/x.tar"}, "want docker://"},
		{[]string{"push", "app", "docker://127.0.0.1:5000/a b"}, "image reference"},
		{[]string{"push", "app", "docker://127.0.0.1:5000/a:v1", "--platform", "freebsd/amd64/v1/x"}, "want OS/ARCH"},
	} {
		_, err := runRepoCmd(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}
