package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

// killEnv makes the re-executed test binary push ROOT's tag "app" to the
// repository named by the variable, to be killed by its parent halfway
// (TestIntegrationKilledPush).
const killEnv = "ZOCKER_REPO_TEST_KILL_PUSH"

func TestMain(m *testing.M) {
	if url := os.Getenv(killEnv); url != "" {
		ctx := context.Background()
		s, err := zfs.Open(ctx, os.Getenv(killEnv+"_ROOT"), &runner.Exec{}, nil)
		if err == nil {
			var r *Repository
			if r, err = Open(ctx, url, Options{}); err == nil {
				_, err = r.Push(ctx, NewZFSLocal(s, &runner.Exec{}, nil), "app")
			}
		}
		fmt.Fprintln(os.Stderr, "push finished before the kill:", err)
		os.Exit(3)
	}
	os.Exit(m.Run())
}

func testLog(t testing.TB) *slog.Logger {
	var w io.Writer = io.Discard
	if os.Getenv("ZOCKER_TEST_DEBUG") != "" {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// openStore opens a fresh engine root on the test pool.
func openStore(t testing.TB) (*zfs.Store, *ZFSLocal) {
	t.Helper()
	root := testenv.Dataset(t)
	if out, err := exec.Command("zfs", "list", "-H", "-p", "-o", "name", testenv.Pool(t)).CombinedOutput(); err != nil {
		t.Fatalf("`zfs list -p` is refused (%v: %s): put the zfs-fuse adapter first on PATH (scripts/substrate.sh does it)", err, out)
	}
	ex := &runner.Exec{Logger: testLog(t)}
	s, err := zfs.Open(context.Background(), root, ex, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	return s, NewZFSLocal(s, ex, testLog(t))
}

// openStoreOtherPool opens an engine root on a pool of its own (a sparse
// file in a temporary directory), destroyed at cleanup: a pulled clone stream
// must find its origin in its own root, and zfs-fuse looks it up by GUID in
// the whole pool, where the pushing root's copy would be found too.
func openStoreOtherPool(t testing.TB) (*zfs.Store, *ZFSLocal) {
	t.Helper()
	pool := testenv.ExtraPool(t, "ztrepo")
	ex := &runner.Exec{Logger: testLog(t)}
	s, err := zfs.Open(context.Background(), pool+"/zocker", ex, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	return s, NewZFSLocal(s, ex, testLog(t))
}

func randomID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	s := sha256.Sum256(b[:])
	return hex.EncodeToString(s[:])
}

// addChild publishes a child image of parent whose clone gets the files.
func addChild(t testing.TB, s *zfs.Store, parent string, files map[string][]byte) string {
	t.Helper()
	ctx := context.Background()
	w, err := s.NewWork(ctx, parent)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		p := filepath.Join(w.Mountpoint, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	id := randomID()
	if err := s.Publish(ctx, w, id, zfs.Config{Parent: parent, Cmd: []string{"/bin/sh", "-c", "echo hi"}, Env: map[string]string{"A": "b\tc"}}, nil); err != nil {
		t.Fatal(err)
	}
	return id
}

// buildChain makes base (busybox) <- mid <- app, tagged "base" and "app".
func buildChain(t testing.TB, s *zfs.Store, big int) (base, mid, app string) {
	t.Helper()
	ctx := context.Background()
	base, err := s.ImportTarball(ctx, zfs.ImportSource{Path: testenv.BusyboxTarball(t)}, zfs.Config{Cmd: []string{"/bin/sh"}})
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, big)
	_, _ = rand.Read(payload)
	mid = addChild(t, s, base, map[string][]byte{"srv/www/index.html": []byte("<h1>mid</h1>\n"), "srv/payload.bin": payload})
	app = addChild(t, s, mid, map[string][]byte{"srv/www/index.html": []byte("<h1>app</h1>\n"), "etc/app.conf": []byte("x=1\n")})
	for tag, id := range map[string]string{"base": base, "app": app} {
		if err := s.Tag(ctx, tag, id); err != nil {
			t.Fatal(err)
		}
	}
	return base, mid, app
}

// treeDigest hashes every path, mode, link target and file content below dir.
func treeDigest(t testing.TB, dir string) string {
	t.Helper()
	h := sha256.New()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %v\n", rel, fi.Mode())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			fmt.Fprintln(h, l)
		case fi.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("only %d entries under %s", n, dir)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func imageMount(t testing.TB, s *zfs.Store, id string) string {
	t.Helper()
	st, err := s.Observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	im, ok := st.Image(id)
	if !ok {
		t.Fatalf("image %s not in %s", id, s.Root())
	}
	return im.Mountpoint
}

func fullStreamSize(t testing.TB, s *zfs.Store, id string) int64 {
	t.Helper()
	cmd := exec.Command("zfs", "send", s.Root()+"/images/"+id+"@image")
	var n countWriter
	cmd.Stdout = &n
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return int64(n)
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

// sshServer is an OpenSSH server on 127.0.0.1 with generated keys, and the
// client options that reach it; the host's sshd and ~/.ssh are not touched.
type sshServer struct {
	Port       int
	SSHCommand []string
}

func startSSHD(t testing.TB) sshServer {
	t.Helper()
	testenv.RequireFile(t, "/usr/sbin/sshd", "apt-get install openssh-server")
	// sshd refuses to start without its privilege separation directory,
	// which Debian's package creates only when its service runs.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, k := range []string{"host", "user"} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "zocker-test-"+k, "-f", filepath.Join(dir, k)).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
	}
	userPub, _ := os.ReadFile(filepath.Join(dir, "user.pub"))
	hostPub, _ := os.ReadFile(filepath.Join(dir, "host.pub"))
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), userPub, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg := fmt.Sprintf(`ListenAddress 127.0.0.1
Port %d
HostKey %s
AuthorizedKeysFile %s
PidFile none
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
Subsystem sftp internal-sftp
LogLevel ERROR
`, port, filepath.Join(dir, "host"), filepath.Join(dir, "authorized_keys"))
	cfgPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", cfgPath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	known := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(known, []byte(fmt.Sprintf("[127.0.0.1]:%d %s", port, hostPub)), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := sshServer{Port: port, SSHCommand: []string{"ssh", "-F", "none",
		"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + known,
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-i", filepath.Join(dir, "user")}}
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
			break
		}
		if i > 100 {
			t.Fatalf("sshd did not listen: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return srv
}

func TestIntegrationPushPull(t *testing.T) {
	s1, l1 := openStore(t)
	base, mid, app := buildChain(t, s1, 1<<20)
	srv := startSSHD(t)
	for _, scheme := range []string{"file", "ssh"} {
		t.Run(scheme, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			url := "file://" + dir
			if scheme == "ssh" {
				url = fmt.Sprintf("ssh://root@127.0.0.1:%d%s", srv.Port, dir)
			}
			var out bytes.Buffer
			r, err := Open(ctx, url, Options{SSHCommand: srv.SSHCommand, Out: &out, Log: testLog(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()

			// Parent first, then the child: only the increments go.
			res, err := r.Push(ctx, l1, "base")
			if err != nil || len(res.Sent) != 1 || res.Sent[0].Parent != "" {
				t.Fatalf("push base: %+v %v", res, err)
			}
			res, err = r.Push(ctx, l1, "app")
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Sent) != 2 || res.Sent[0].ID != mid || res.Sent[1].ID != app || res.Sent[0].Parent != base {
				t.Fatalf("push app sent %+v", res.Sent)
			}
			full := fullStreamSize(t, s1, app)
			if inc := res.Sent[1].Size; inc*4 >= full {
				t.Errorf("incremental stream of app is %d bytes, a full one %d: not an increment", inc, full)
			}
			t.Logf("app: incremental %d bytes, full %d bytes; output:\n%s", res.Sent[1].Size, full, out.String())
			if !strings.Contains(out.String(), "pushed "+app[:12]+" (") || !strings.Contains(out.String(), "incremental on "+mid[:12]) {
				t.Errorf("summary lines missing:\n%s", out.String())
			}
			// Again: nothing.
			if res, err := r.Push(ctx, l1, "app"); err != nil || len(res.Sent) != 0 {
				t.Fatalf("second push sent %+v (%v)", res.Sent, err)
			}
			// Pull the chain into a second root; the files are identical.
			s2, l2 := openStoreOtherPool(t)
			pres, err := r.Pull(ctx, l2, "app")
			if err != nil {
				t.Fatal(err)
			}
			if len(pres.Received) != 3 {
				t.Fatalf("pulled %+v", pres.Received)
			}
			for _, id := range []string{base, mid, app} {
				if a, b := treeDigest(t, imageMount(t, s1, id)), treeDigest(t, imageMount(t, s2, id)); a != b {
					t.Errorf("image %s differs after pull", id)
				}
			}
			st, err := s2.Observe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Tags["app"] != app || len(st.Tmp) != 0 {
				t.Fatalf("second root: tags %v tmp %v", st.Tags, st.Tmp)
			}
			im, _ := st.Image(app)
			if im.Parent != mid || im.Config.Env["A"] != "b\tc" || len(im.Config.Cmd) != 3 || im.Origin != s2.Root()+"/images/"+mid+"@image" {
				t.Errorf("pulled image record %+v", im)
			}
			// A container clones the pulled image.
			if _, err := s2.CreateContainer(ctx, "web", app, nil); err != nil {
				t.Fatal(err)
			}
			if res, err := r.Pull(ctx, l2, "app"); err != nil || len(res.Received) != 0 {
				t.Fatalf("second pull %+v %v", res, err)
			}
			// search and del.
			tags, err := r.Search(ctx, "")
			if err != nil || len(tags) != 2 || tags[0].Tag != "app" || tags[0].ID != app || tags[0].Size == 0 {
				t.Fatalf("search %+v %v", tags, err)
			}
			removed, err := r.Del(ctx, "app")
			if err != nil || len(removed) != 2 {
				t.Fatalf("del app removed %v (%v)", removed, err)
			}
			if _, err := r.Meta(ctx, base); err != nil {
				t.Fatalf("base went with app: %v", err)
			}
			tags, err = r.Search(ctx, "")
			if err != nil || len(tags) != 1 || tags[0].Tag != "base" {
				t.Fatalf("search after del %+v %v", tags, err)
			}
		})
	}
}

func TestIntegrationCorruptStream(t *testing.T) {
	ctx := context.Background()
	s1, l1 := openStore(t)
	_, mid, app := buildChain(t, s1, 256<<10)
	dir := t.TempDir()
	r, err := Open(ctx, "file://"+dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Push(ctx, l1, "app"); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "images", mid, "stream")
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	b := []byte{0}
	off := fi.Size() / 2
	_, _ = f.ReadAt(b, off)
	b[0] ^= 0x40
	_, _ = f.WriteAt(b, off)
	f.Close()

	s2, l2 := openStoreOtherPool(t)
	_, err = r.Pull(ctx, l2, "app")
	if err == nil || !strings.Contains(err.Error(), mid) {
		t.Fatalf("pull of a corrupt stream: %v", err)
	}
	t.Logf("pull error: %v", err)
	st, err := s2.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Image(mid); ok {
		t.Error("corrupt image published")
	}
	if _, ok := st.Image(app); ok {
		t.Error("child of corrupt image published")
	}
	if len(st.Tmp) != 0 || len(st.Foreign) != 0 || len(st.Tags) != 0 {
		t.Errorf("left in the pool: tmp %v foreign %v tags %v", st.Tmp, st.Foreign, st.Tags)
	}
	out, _ := exec.Command("zfs", "list", "-H", "-r", "-t", "all", "-o", "name", s2.Root()+"/tmp").CombinedOutput()
	if strings.TrimSpace(string(out)) != s2.Root()+"/tmp" {
		t.Errorf("datasets left in tmp:\n%s", out)
	}
}

func TestIntegrationKilledPush(t *testing.T) {
	ctx := context.Background()
	s1, l1 := openStore(t)
	base, mid, app := buildChain(t, s1, 64<<20)
	dir := t.TempDir()
	url := "file://" + dir
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), killEnv+"="+url, killEnv+"_ROOT="+s1.Root())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill once the big stream (mid's) is partly written.
	deadline := time.Now().Add(2 * time.Minute)
	killed := false
	for time.Now().Before(deadline) && !killed {
		ents, _ := os.ReadDir(filepath.Join(dir, "images", mid))
		for _, e := range ents {
			if fi, err := e.Info(); err == nil && isTmp(e.Name()) && fi.Size() > 4<<20 {
				_ = cmd.Process.Signal(syscall.SIGKILL)
				killed = true
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	werr := cmd.Wait()
	if !killed {
		t.Fatalf("the push was not caught halfway (%v): %s", werr, stderr.String())
	}
	r, err := Open(ctx, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Readable: no tag points at a missing or partial image.
	if _, err := r.Resolve(ctx, "app"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("tag app after a killed push: %v", err)
	}
	if _, err := r.Meta(ctx, base); err != nil {
		t.Fatalf("base, pushed before the kill: %v", err)
	}
	if _, err := r.Meta(ctx, mid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("partial image present: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "images", mid, "stream")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("partial stream under its final name: %v", err)
	}
	if tags, err := r.Search(ctx, ""); err != nil || len(tags) != 0 {
		t.Fatalf("search after kill: %+v %v", tags, err)
	}
	// The next push completes it and leaves no temporary file.
	res, err := r.Push(ctx, l1, "app")
	if err != nil || len(res.Sent) != 2 {
		t.Fatalf("resumed push: %+v %v", res, err)
	}
	if tf := tmpFiles(t, dir); len(tf) != 0 {
		t.Errorf("temporary files left: %v", tf)
	}
	s2, l2 := openStoreOtherPool(t)
	if _, err := r.Pull(ctx, l2, "app"); err != nil {
		t.Fatal(err)
	}
	if a, b := treeDigest(t, imageMount(t, s1, app)), treeDigest(t, imageMount(t, s2, app)); a != b {
		t.Error("pulled image differs")
	}
}

// TestIntegrationPullSamePool pulls into a second root on the pushing root's
// own pool: zfs-fuse then finds the clone stream's origin in the OTHER root
// (by GUID), which Publish must refuse, leaving nothing behind; a ZFS that
// takes the local origin passes with the right one.
func TestIntegrationPullSamePool(t *testing.T) {
	ctx := context.Background()
	s1, l1 := openStore(t)
	_, mid, app := buildChain(t, s1, 64<<10)
	r, err := Open(ctx, "file://"+t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Push(ctx, l1, "app"); err != nil {
		t.Fatal(err)
	}
	s2, l2 := openStore(t)
	_, err = r.Pull(ctx, l2, "app")
	st, oerr := s2.Observe(ctx)
	if oerr != nil {
		t.Fatal(oerr)
	}
	if err == nil {
		im, ok := st.Image(app)
		if !ok || im.Origin != s2.Root()+"/images/"+mid+"@image" {
			t.Fatalf("pulled image %+v has the wrong origin", im)
		}
		return
	}
	t.Logf("refused: %v", err)
	if !strings.Contains(err.Error(), "instead of "+s2.Root()+"/images/") {
		t.Fatalf("pull: %v", err)
	}
	if _, ok := st.Image(mid); ok {
		t.Error("image with a foreign origin published")
	}
	if len(st.Tmp) != 0 || len(st.Tags) != 0 {
		t.Errorf("left behind: tmp %v tags %v", st.Tmp, st.Tags)
	}
}
