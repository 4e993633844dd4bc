package testenv

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Tool returns the path of an installed program, skipping the test (failing
// it under CI) when it is missing.
func Tool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, "%s is not installed (apt-get install %s)", name, pkg)
	}
	return p
}

// DockerRegistry starts Debian's docker-registry (the reference OCI
// distribution server) on 127.0.0.1 with filesystem storage in a temporary
// directory, waits until it answers, and stops it at cleanup. It returns
// host:port and the storage directory (blobs under
// docker/registry/v2/blobs/sha256/XX/HEX/data).
func DockerRegistry(t testing.TB) (host, storage string) {
	t.Helper()
	bin := Tool(t, "docker-registry", "docker-registry")
	dir := t.TempDir()
	storage = filepath.Join(dir, "storage")
	// A free port: the registry cannot be handed a listener.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host = l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf("version: 0.1\nlog: {level: error}\nstorage:\n  filesystem: {rootdirectory: %s}\n  delete: {enabled: true}\nhttp:\n  addr: %s\n", storage, host)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			return host, storage
		}
		select {
		case <-done:
			t.Fatalf("docker-registry exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry did not answer on %s: %v: %s", host, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
