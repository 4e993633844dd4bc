package repo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/sign"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

// datasetCount counts the filesystems and snapshots below root.
func datasetCount(t *testing.T, root string) int {
	t.Helper()
	out, err := exec.Command("zfs", "get", "-H", "-r", "-o", "name", "type", root).CombinedOutput()
	if err != nil {
		t.Fatalf("zfs get type -r %s: %v: %s", root, err, out)
	}
	return len(strings.Split(strings.TrimSpace(string(out)), "\n"))
}

func policy(t *testing.T, dir, name, allowed, revoked string) *sign.Policy {
	t.Helper()
	f := sign.Files{AllowedSigners: filepath.Join(dir, name)}
	if err := os.WriteFile(f.AllowedSigners, []byte(allowed), 0o600); err != nil {
		t.Fatal(err)
	}
	if revoked != "" {
		f.RevokedKeys = filepath.Join(dir, name+".revoked")
		if err := os.WriteFile(f.RevokedKeys, []byte(revoked), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p, err := f.Load()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// flip flips one byte of a file and returns the undo.
func flip(t *testing.T, path string, at func([]byte) int) func() {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	orig := bytes.Clone(b)
	b[at(b)] ^= 0x01
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.WriteFile(path, orig, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestIntegrationSignedChain pushes a 3-image chain signed by key A to a
// file:// and to a loopback OpenSSH repository, checks what it wrote with
// ssh-keygen -Y verify, and pulls it under policies: every refusal happens
// before a byte is received (the pulling pool's dataset count does not
// move), and {A} receives the chain.
func TestIntegrationSignedChain(t *testing.T) {
	s1, l1 := openStore(t)
	base, mid, app := buildChain(t, s1, 64<<10)
	keys := t.TempDir()
	privA, pubA := testenv.SSHKey(t, keys, "a", "ed25519")
	_, pubB := testenv.SSHKey(t, keys, "b", "ecdsa")
	keyA, err := sign.LoadKey(privA)
	if err != nil {
		t.Fatal(err)
	}
	srv := startSSHD(t)
	past := time.Now().Add(-72 * time.Hour).UTC().Format("20060102")
	for _, scheme := range []string{"file", "ssh"} {
		t.Run(scheme, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			url := "file://" + dir
			if scheme == "ssh" {
				url = fmt.Sprintf("ssh://root@127.0.0.1:%d%s", srv.Port, dir)
			}
			open := func(p *sign.Policy) *Repository {
				r, err := Open(ctx, url, Options{SSHCommand: srv.SSHCommand, Log: testLog(t), SignKey: keyA, Policy: p})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { r.Close() })
				return r
			}
			// An unsigned push of base first: the signed push of app must
			// send base again, signed, rather than vouch for a record it did
			// not write.
			unsigned, err := Open(ctx, url, Options{SSHCommand: srv.SSHCommand, Log: testLog(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer unsigned.Close()
			if _, err := unsigned.Push(ctx, l1, "base"); err != nil {
				t.Fatal(err)
			}
			res, err := open(nil).Push(ctx, l1, "app")
			if err != nil || len(res.Sent) != 3 {
				t.Fatalf("signed push: %+v %v", res.Sent, err)
			}
			// OpenSSH checks what we wrote.
			allowedA := filepath.Join(keys, "allowed-a")
			os.WriteFile(allowedA, []byte("ops@example "+pubA+"\n"), 0o600)
			for _, id := range []string{base, mid, app} {
				meta, _ := os.ReadFile(filepath.Join(dir, "images", id, "meta.json"))
				cmd := exec.Command(testenv.Tool(t, "ssh-keygen", "openssh-client"), "-Y", "verify", "-f", allowedA, "-I", "ops@example", "-n", "zocker-image",
					"-s", filepath.Join(dir, "images", id, "meta.json.sig"))
				cmd.Stdin = bytes.NewReader(meta)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("ssh-keygen -Y verify meta.json of %s: %v: %s", id[:12], err, out)
				}
			}

			s2, l2 := openStoreOtherPool(t)
			before := datasetCount(t, s2.Root())
			refuse := func(name string, p *sign.Policy, reason, msg string) {
				t.Helper()
				_, err := open(p).Pull(ctx, l2, "app")
				if err == nil || sign.ReasonOf(err) != reason || !strings.Contains(err.Error(), msg) {
					t.Fatalf("%s: pull err = %v (reason %q), want reason %s containing %q", name, err, sign.ReasonOf(err), reason, msg)
				}
				if n := datasetCount(t, s2.Root()); n != before {
					t.Fatalf("%s: the pool has %d datasets, had %d: something was received", name, n, before)
				}
				t.Logf("%s: %v", name, err)
			}
			refuse("{B}", policy(t, keys, "b", "ops@example "+pubB+"\n", ""), sign.ReasonNotAllowed,
				"tag app: signed by "+keyA.Fingerprint()+" which is not allowed")
			refuse("valid-before past", policy(t, keys, "expired", `ops@example valid-before="`+past+`" `+pubA+"\n", ""), sign.ReasonExpired, "signature expired")
			refuse("namespaces git", policy(t, keys, "git", `ops@example namespaces="git" `+pubA+"\n", ""), sign.ReasonNotAllowed, `not allowed for namespace "zocker-image"`)
			refuse("revoked", policy(t, keys, "revoked", "ops@example "+pubA+"\n", pubA+"\n"), sign.ReasonRevoked, "which is revoked")
			pA := policy(t, keys, "a", "ops@example "+pubA+"\n", "")
			undo := flip(t, filepath.Join(dir, "images", mid, "meta.json"), func(b []byte) int { return bytes.Index(b, []byte(`"sha256":"`)) + 12 })
			refuse("meta.json byte flipped", pA, sign.ReasonInvalid, "image "+mid[:12]+": signature by "+keyA.Fingerprint()+" does not match the content")
			undo()
			undo = flip(t, filepath.Join(dir, "tags", "app.sig"), func(b []byte) int { return bytes.Index(b, []byte("image: ")) + 9 })
			refuse("tag payload byte flipped", pA, sign.ReasonInvalid, "tag app: signature by "+keyA.Fingerprint()+" does not match the content")
			undo()
			// A signed tag copied under another name.
			tagSig, _ := os.ReadFile(filepath.Join(dir, "tags", "app.sig"))
			os.WriteFile(filepath.Join(dir, "tags", "evil.sig"), tagSig, 0o644)
			os.WriteFile(filepath.Join(dir, "tags", "evil"), []byte(app+"\n"), 0o644)
			if _, err := open(pA).Pull(ctx, l2, "evil"); sign.ReasonOf(err) != sign.ReasonInvalid || !strings.Contains(err.Error(), "signature is for tag app") {
				t.Fatalf("renamed tag: %v", err)
			}
			os.Remove(filepath.Join(dir, "tags", "evil.sig"))
			os.Remove(filepath.Join(dir, "tags", "evil"))
			// An unsigned repository with a policy in force.
			udir := t.TempDir()
			up, err := Open(ctx, "file://"+udir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := up.Push(ctx, l1, "app"); err != nil {
				t.Fatal(err)
			}
			u, err := Open(ctx, "file://"+udir, Options{Policy: pA})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := u.Pull(ctx, l2, "app"); sign.ReasonOf(err) != sign.ReasonUnsigned || !strings.Contains(err.Error(), "tag app is unsigned") {
				t.Fatalf("unsigned repository: %v", err)
			}
			// A signed tag over unsigned images: the images are checked too.
			if err := u.writeSig(tagSigPath("app"), mustSignTag(t, keyA, "app", app)); err != nil {
				t.Fatal(err)
			}
			if _, err := u.Pull(ctx, l2, "app"); sign.ReasonOf(err) != sign.ReasonUnsigned || !strings.Contains(err.Error(), "is unsigned") {
				t.Fatalf("signed tag, unsigned images: %v", err)
			}
			if n := datasetCount(t, s2.Root()); n != before {
				t.Fatalf("the pool has %d datasets, had %d", n, before)
			}

			// {A}: the chain arrives, with its signer.
			pres, err := open(pA).Pull(ctx, l2, "app")
			if err != nil || len(pres.Received) != 3 || pres.Signer.Principals != "ops@example" || pres.ID != app {
				t.Fatalf("pull with {A}: %+v %v", pres, err)
			}
			st, err := s2.Observe(ctx)
			if err != nil || st.Tags["app"] != app {
				t.Fatalf("tags %v %v", st.Tags, err)
			}
			// del takes the signatures with the images.
			if _, err := open(nil).Del(ctx, "app"); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, "tags", "app.sig")); !os.IsNotExist(err) {
				t.Errorf("tags/app.sig after del: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "images", app)); !os.IsNotExist(err) {
				t.Errorf("images/%s after del: %v", app[:12], err)
			}
		})
	}
}

func mustSignTag(t *testing.T, k *sign.Key, tag, id string) []byte {
	t.Helper()
	b, err := k.SignTag(sign.TagPayload{Tag: tag, ID: id, Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
