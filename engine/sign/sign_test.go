package sign

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

var keyTypes = []string{"ed25519", "ecdsa", "rsa"}

func writeFile(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// keygenVerify runs ssh-keygen -Y verify and reports whether it accepted.
func keygenVerify(t *testing.T, allowed, principal, namespace, sigFile string, msg []byte, revoked string) (bool, string) {
	t.Helper()
	args := []string{"-Y", "verify", "-f", allowed, "-I", principal, "-n", namespace, "-s", sigFile}
	if revoked != "" {
		args = append(args, "-r", revoked)
	}
	cmd := exec.Command(testenv.Tool(t, "ssh-keygen", "openssh-client"), args...)
	cmd.Stdin = bytes.NewReader(msg)
	out, err := cmd.CombinedOutput()
	return err == nil, string(out)
}

// TestOpenSSHVerifiesOurSignatures: what Key.Sign writes passes
// ssh-keygen -Y verify, for each key type.
func TestOpenSSHVerifiesOurSignatures(t *testing.T) {
	for _, typ := range keyTypes {
		t.Run(typ, func(t *testing.T) {
			dir := t.TempDir()
			priv, pub := testenv.SSHKey(t, dir, "a", typ)
			k, err := LoadKey(priv)
			if err != nil {
				t.Fatal(err)
			}
			msg := []byte(`{"id":"x","sha256":"abc"}` + "\n")
			sig, err := k.Sign(NamespaceImage, msg)
			if err != nil {
				t.Fatal(err)
			}
			sigFile := writeFile(t, filepath.Join(dir, "meta.json.sig"), sig)
			allowed := writeFile(t, filepath.Join(dir, "allowed_signers"), []byte("ops@example "+pub+"\n"))
			if ok, out := keygenVerify(t, allowed, "ops@example", NamespaceImage, sigFile, msg, ""); !ok {
				t.Fatalf("ssh-keygen refused our %s signature: %s", typ, out)
			}
			if ok, _ := keygenVerify(t, allowed, "ops@example", NamespaceImage, sigFile, append(msg, 'x'), ""); ok {
				t.Fatal("ssh-keygen accepted a changed message")
			}
		})
	}
}

// TestWeVerifyOpenSSHSignatures: a signature made by ssh-keygen -Y sign is
// accepted by Policy.Verify, and refused once the message changes.
func TestWeVerifyOpenSSHSignatures(t *testing.T) {
	for _, typ := range keyTypes {
		t.Run(typ, func(t *testing.T) {
			dir := t.TempDir()
			priv, pub := testenv.SSHKey(t, dir, "a", typ)
			msgFile := writeFile(t, filepath.Join(dir, "meta.json"), []byte("hello image\n"))
			if out, err := exec.Command(testenv.Tool(t, "ssh-keygen", "openssh-client"), "-Y", "sign", "-f", priv, "-n", NamespaceImage, msgFile).CombinedOutput(); err != nil {
				t.Fatalf("ssh-keygen -Y sign: %v: %s", err, out)
			}
			sig, err := os.ReadFile(msgFile + ".sig")
			if err != nil {
				t.Fatal(err)
			}
			allowed := writeFile(t, filepath.Join(dir, "allowed_signers"), []byte("ops@example "+pub+"\n"))
			p, err := Files{AllowedSigners: allowed}.Load()
			if err != nil {
				t.Fatal(err)
			}
			s, err := p.Verify("meta", NamespaceImage, []byte("hello image\n"), sig, VerifyOptions{})
			if err != nil {
				t.Fatalf("verify ssh-keygen's %s signature: %v", typ, err)
			}
			if s.Principals != "ops@example" || !strings.HasPrefix(s.Fingerprint(), "SHA256:") {
				t.Errorf("signer = %+v", s)
			}
			if _, err := p.Verify("meta", NamespaceImage, []byte("hello imagE\n"), sig, VerifyOptions{}); ReasonOf(err) != ReasonInvalid {
				t.Errorf("changed message: err = %v, want %s", err, ReasonInvalid)
			}
			if _, err := p.Verify("meta", NamespaceGit, []byte("hello image\n"), sig, VerifyOptions{}); ReasonOf(err) != ReasonInvalid {
				t.Errorf("other namespace: err = %v, want %s", err, ReasonInvalid)
			}
		})
	}
}

// TestAllowedSignersAgreeWithOpenSSH runs the same allowed_signers files
// through our parser and verifier and through ssh-keygen -Y verify, and
// requires the same decision.
func TestAllowedSignersAgreeWithOpenSSH(t *testing.T) {
	dir := t.TempDir()
	privA, pubA := testenv.SSHKey(t, dir, "a", "ed25519")
	_, pubB := testenv.SSHKey(t, dir, "b", "ecdsa")
	k, err := LoadKey(privA)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("payload\n")
	sig, err := k.Sign(NamespaceImage, msg)
	if err != nil {
		t.Fatal(err)
	}
	sigFile := writeFile(t, filepath.Join(dir, "sig"), sig)
	past := time.Now().Add(-48 * time.Hour).UTC().Format("20060102")
	future := time.Now().Add(48 * time.Hour).UTC().Format("20060102")
	cases := []struct {
		name, file, principal string
		want                  bool
		reason                string
	}{
		{"plain", "ops@example " + pubA, "ops@example", true, ""},
		{"comment and blank", "# ops\n\n   ops@example " + pubA + " a comment", "ops@example", true, ""},
		{"other key", "ops@example " + pubB, "ops@example", false, ReasonNotAllowed},
		{"both keys", "ops@example " + pubB + "\nops@example " + pubA, "ops@example", true, ""},
		{"principal pattern", "*@example " + pubA, "ops@example", true, ""},
		{"principal list", "dev@example,ops@example " + pubA, "ops@example", true, ""},
		{"principal negated", "!ops@example,*@example " + pubA, "ops@example", false, ReasonNotAllowed},
		{"other principal", "dev@example " + pubA, "ops@example", false, ReasonNotAllowed},
		{"namespaces match", `ops@example namespaces="zocker-image,file" ` + pubA, "ops@example", true, ""},
		{"namespaces pattern", `ops@example namespaces="zocker-*" ` + pubA, "ops@example", true, ""},
		{"namespaces git only", `ops@example namespaces="git" ` + pubA, "ops@example", false, ReasonNotAllowed},
		{"valid-before past", `ops@example valid-before="` + past + `" ` + pubA, "ops@example", false, ReasonExpired},
		{"valid-before past Z", `ops@example valid-before="` + past + `Z" ` + pubA, "ops@example", false, ReasonExpired},
		{"valid-after future", `ops@example valid-after="` + future + `" ` + pubA, "ops@example", false, ReasonNotYetValid},
		{"window now", `ops@example valid-after="` + past + `",valid-before="` + future + `0000Z" ` + pubA, "ops@example", true, ""},
		{"all options", `ops@example namespaces="git",valid-before="` + future + `" ` + pubA, "ops@example", false, ReasonNotAllowed},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			allowed := writeFile(t, filepath.Join(dir, "allowed-"+string(rune('a'+i))), []byte(c.file+"\n"))
			sshOK, out := keygenVerify(t, allowed, c.principal, NamespaceImage, sigFile, msg, "")
			p, err := Files{AllowedSigners: allowed}.Load()
			if err != nil {
				t.Fatalf("our parser refused a file ssh-keygen reads: %v", err)
			}
			_, err = p.Verify("x", NamespaceImage, msg, sig, VerifyOptions{Principal: c.principal})
			ours := err == nil
			if ours != sshOK {
				t.Fatalf("ours accepted=%v (%v), ssh-keygen accepted=%v (%s)", ours, err, sshOK, out)
			}
			if ours != c.want {
				t.Fatalf("accepted=%v, want %v", ours, c.want)
			}
			if !c.want && ReasonOf(err) != c.reason {
				t.Errorf("reason %q (%v), want %q", ReasonOf(err), err, c.reason)
			}
		})
	}
}

// TestAllowedSignersErrors: refused files get a message naming file and line.
func TestAllowedSignersErrors(t *testing.T) {
	dir := t.TempDir()
	_, pub := testenv.SSHKey(t, dir, "a", "ed25519")
	for _, c := range []struct{ file, want string }{
		{"ops@example cert-authority " + pub, "f:1: cert-authority is not supported by zocker: list each signer's own public key instead"},
		{"# x\nops@example frobnicate " + pub, `f:2: unknown option "frobnicate"`},
		{"ops@example namespaces=git " + pub, "f:1: option namespaces: missing start quote"},
		{`ops@example namespaces="git ` + pub, "f:1: invalid options: unterminated quote"},
		{`ops@example valid-before="2024" ` + pub, `f:1: invalid "valid-before" time "2024"`},
		{`ops@example valid-after="20250101",valid-before="20240101" ` + pub, `f:1: "valid-before" time is not after "valid-after"`},
		{"ops@example", "f:1: invalid line"},
		{"ops@example ssh-ed25519 AAAA", "f:1: invalid key"},
		{`ops@example namespaces="git"`, "f:1: missing key after the options"},
	} {
		_, err := ParseAllowedSigners("f", []byte(c.file))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: err = %v, want prefix %q", c.file, err, c.want)
		}
	}
}

// TestRevokedKeys: a key listed in the revoked file is refused, by us and
// by ssh-keygen -Y verify -r.
func TestRevokedKeys(t *testing.T) {
	dir := t.TempDir()
	priv, pub := testenv.SSHKey(t, dir, "a", "ed25519")
	k, err := LoadKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("m")
	sig, _ := k.Sign(NamespaceImage, msg)
	sigFile := writeFile(t, filepath.Join(dir, "sig"), sig)
	allowed := writeFile(t, filepath.Join(dir, "allowed"), []byte("ops@example "+pub+"\n"))
	revoked := writeFile(t, filepath.Join(dir, "revoked"), []byte("# gone\n"+pub+"\n"))
	if ok, _ := keygenVerify(t, allowed, "ops@example", NamespaceImage, sigFile, msg, revoked); ok {
		t.Fatal("ssh-keygen accepted a revoked key")
	}
	p, err := Files{AllowedSigners: allowed, RevokedKeys: revoked}.Load()
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Verify("x", NamespaceImage, msg, sig, VerifyOptions{})
	if ReasonOf(err) != ReasonRevoked || !strings.Contains(err.Error(), "signed by "+k.Fingerprint()+" which is revoked") {
		t.Fatalf("err = %v", err)
	}
	if _, err := ParseRevoked("r", []byte("SSHKRL\n\x00rest")); err == nil || !strings.Contains(err.Error(), "KRL") {
		t.Errorf("KRL: err = %v", err)
	}
}

// TestPolicyFilePermissions: a group- or world-writable allowed_signers
// file is refused (anyone could add a signer).
func TestPolicyFilePermissions(t *testing.T) {
	dir := t.TempDir()
	_, pub := testenv.SSHKey(t, dir, "a", "ed25519")
	allowed := writeFile(t, filepath.Join(dir, "allowed"), []byte("ops@example "+pub+"\n"))
	if err := os.Chmod(allowed, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := (Files{AllowedSigners: allowed}).Load(); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Fatalf("err = %v", err)
	}
}

// TestTagFile: the tag statement round-trips, binds the tag name, and a
// byte flipped anywhere in it is refused.
func TestTagFile(t *testing.T) {
	dir := t.TempDir()
	priv, pub := testenv.SSHKey(t, dir, "a", "ed25519")
	k, err := LoadKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.Repeat("ab", 32)
	at := time.Date(2026, 12, 3, 7, 30, 0, 0, time.UTC)
	file, err := k.SignTag(TagPayload{Tag: "web", ID: id, Time: at})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Files{AllowedSigners: writeFile(t, filepath.Join(dir, "allowed"), []byte("ops@example "+pub+"\n"))}.Load()
	if err != nil {
		t.Fatal(err)
	}
	got, s, err := p.VerifyTag("web", file)
	if err != nil || got.ID != id || !got.Time.Equal(at) || s.Principals != "ops@example" {
		t.Fatalf("VerifyTag = %+v, %v, %v", got, s, err)
	}
	if _, _, err := p.VerifyTag("api", file); err == nil || !strings.Contains(err.Error(), "signature is for tag web") {
		t.Errorf("renamed tag: err = %v", err)
	}
	payload, armored, _ := SplitTagFile(file)
	flipped := bytes.Clone(file)
	flipped[bytes.Index(flipped, []byte("image: "))+7] ^= 1
	if _, _, err := p.VerifyTag("web", flipped); ReasonOf(err) != ReasonInvalid {
		t.Errorf("flipped payload byte: err = %v", err)
	}
	if _, _, err := p.VerifyTag("web", nil); ReasonOf(err) != ReasonUnsigned || err.Error() != "tag web is unsigned" {
		t.Errorf("no file: err = %v", err)
	}
	// ssh-keygen checks the two halves too.
	sf := writeFile(t, filepath.Join(dir, "payload.sig"), armored)
	if ok, out := keygenVerify(t, filepath.Join(dir, "allowed"), "ops@example", NamespaceImage, sf, payload, ""); !ok {
		t.Fatalf("ssh-keygen refused the tag signature: %s", out)
	}
}

// TestAgentKey: a passphrase-protected key is refused from its file with a
// hint, and used through ssh-agent when the agent holds it.
func TestAgentKey(t *testing.T) {
	agentBin := testenv.Tool(t, "ssh-agent", "openssh-client")
	addBin := testenv.Tool(t, "ssh-add", "openssh-client")
	dir := t.TempDir()
	priv := filepath.Join(dir, "locked")
	if out, err := exec.Command(testenv.Tool(t, "ssh-keygen", "openssh-client"), "-q", "-t", "ed25519", "-N", "secret-pass", "-C", "locked", "-f", priv).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Setenv("SSH_AUTH_SOCK", "")
	if _, err := LoadKey(priv); err == nil || !strings.Contains(err.Error(), "passphrase-protected: add it to ssh-agent") {
		t.Fatalf("LoadKey(locked) = %v", err)
	}
	sock := filepath.Join(dir, "agent.sock")
	agent := exec.Command(agentBin, "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ssh-agent did not create its socket")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Setenv("SSH_AUTH_SOCK", sock)
	// ssh-add reads the passphrase from SSH_ASKPASS when there is no tty.
	askpass := writeFile(t, filepath.Join(dir, "askpass"), []byte("#!/bin/sh\necho secret-pass\n"))
	if err := os.Chmod(askpass, 0o700); err != nil {
		t.Fatal(err)
	}
	add := exec.Command(addBin, priv)
	add.Env = append(os.Environ(), "SSH_ASKPASS="+askpass, "SSH_ASKPASS_REQUIRE=force", "DISPLAY=none")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v: %s", err, out)
	}
	k, err := LoadKey(priv)
	if err != nil {
		t.Fatalf("LoadKey through the agent: %v", err)
	}
	defer k.Close()
	if k.Source != "ssh-agent" {
		t.Errorf("Source = %q", k.Source)
	}
	pub, _ := os.ReadFile(priv + ".pub")
	allowed := writeFile(t, filepath.Join(dir, "allowed"), append([]byte("ops@example "), pub...))
	sig, err := k.Sign(NamespaceImage, []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	sf := writeFile(t, filepath.Join(dir, "m.sig"), sig)
	if ok, out := keygenVerify(t, allowed, "ops@example", NamespaceImage, sf, []byte("m"), ""); !ok {
		t.Fatalf("ssh-keygen refused the agent's signature: %s", out)
	}
}
