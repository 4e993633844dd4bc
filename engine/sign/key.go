package sign

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// Key is a signing key: a private key file, or a key held by ssh-agent.
type Key struct {
	signer ssh.Signer
	// Source says where the key is ("agent", or the file).
	Source string
	conn   net.Conn
}

// LoadKey opens the signing key at path. When path.pub names a key the
// running ssh-agent (SSH_AUTH_SOCK) holds, the agent signs and the private
// key file is never read (it may be passphrase-protected, or absent);
// otherwise path must be an unencrypted private key (OpenSSH or PEM).
func LoadKey(path string) (*Key, error) {
	if path == "" {
		return nil, errors.New("no signing key given")
	}
	if k, err := agentKey(path); err != nil {
		return nil, err
	} else if k != nil {
		return k, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(data)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return nil, fmt.Errorf("signing key %s is passphrase-protected: add it to ssh-agent (ssh-add %s) and keep %s.pub beside it", path, path, path)
	}
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	return &Key{signer: s, Source: path}, nil
}

// agentKey returns the agent's signer for the key in path.pub, nil when
// there is no agent, no .pub or the agent does not hold it.
func agentKey(path string) (*Key, error) {
	sock := os.Getenv("SSH_AUTH_SOCK")
	pubData, err := os.ReadFile(path + ".pub")
	if sock == "" || err != nil {
		return nil, nil
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(pubData)
	if err != nil {
		return nil, fmt.Errorf("signing key %s.pub: %w", path, err)
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return nil, nil // a stale SSH_AUTH_SOCK: fall back to the file
	}
	signers, err := agent.NewClient(conn).Signers()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("list ssh-agent keys: %w", err)
	}
	want := pub.Marshal()
	for _, s := range signers {
		if bytes.Equal(s.PublicKey().Marshal(), want) {
			return &Key{signer: s, Source: "ssh-agent", conn: conn}, nil
		}
	}
	conn.Close()
	return nil, nil
}

// PublicKey is the key's public half.
func (k *Key) PublicKey() ssh.PublicKey { return k.signer.PublicKey() }

// Fingerprint is the SHA256 fingerprint of the key.
func (k *Key) Fingerprint() string { return ssh.FingerprintSHA256(k.signer.PublicKey()) }

// Sign returns the armored SSHSIG signature of message in namespace, the
// file `ssh-keygen -Y sign -n NAMESPACE` would write (sha512, as ssh-keygen's default).
func (k *Key) Sign(namespace string, message []byte) ([]byte, error) {
	sig, err := sshsig.Sign(bytes.NewReader(message), k.signer, sshsig.HashSHA512, namespace)
	if err != nil {
		return nil, fmt.Errorf("sign with %s: %w", k.Fingerprint(), err)
	}
	return sshsig.Armor(sig), nil
}

// Close releases the agent connection, if any.
func (k *Key) Close() error {
	if k.conn != nil {
		return k.conn.Close()
	}
	return nil
}
