package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// SSHKey makes a key pair with ssh-keygen in dir (typ: ed25519, ecdsa or
// rsa; no passphrase) and returns the private key's path (the public key is
// PATH.pub) and the public key line.
func SSHKey(t testing.TB, dir, name, typ string) (path, pub string) {
	t.Helper()
	keygen := Tool(t, "ssh-keygen", "openssh-client")
	path = filepath.Join(dir, name)
	args := []string{"-q", "-t", typ, "-N", "", "-C", name, "-f", path}
	if typ == "rsa" {
		args = append(args, "-b", "2048")
	}
	if out, err := exec.Command(keygen, args...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen %v: %v: %s", args, err, out)
	}
	b, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return path, strings.TrimSpace(string(b))
}
