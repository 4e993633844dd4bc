package repo

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

// BenchmarkSSH200MB pushes and pulls a 200 MB image over the loopback SSH
// server, and moves the same stream by hand (zfs send | ssh cat > file, and
// ssh cat file | zfs receive) for comparison. Run once:
//
//	go test -run '^$' -bench SSH200MB -benchtime 1x ./engine/repo
func BenchmarkSSH200MB(b *testing.B) {
	ctx := context.Background()
	s1, l1 := openStore(b)
	base, err := s1.ImportTarball(ctx, zfs.ImportSource{Path: testenv.BusyboxTarball(b)}, zfs.Config{})
	if err != nil {
		b.Fatal(err)
	}
	big := make([]byte, 200<<20)
	fillPseudoRandom(big) // incompressible, like real payloads
	id := addChild(b, s1, base, map[string][]byte{"payload.bin": big})
	for tag, x := range map[string]string{"base": base, "big": id} {
		if err := s1.Tag(ctx, tag, x); err != nil {
			b.Fatal(err)
		}
	}
	srv := startSSHD(b)
	var pushS, pullS, byHandPushS, byHandPullS float64
	var size int64
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		url := fmt.Sprintf("ssh://root@127.0.0.1:%d%s", srv.Port, dir)
		r, err := Open(ctx, url, Options{SSHCommand: srv.SSHCommand})
		if err != nil {
			b.Fatal(err)
		}
		// The base goes first, so that the timed push is the 200 MB increment.
		if _, err := r.Push(ctx, l1, "base"); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		res, err := r.Push(ctx, l1, "big")
		if err != nil {
			b.Fatal(err)
		}
		pushS += time.Since(start).Seconds()
		size = res.Sent[0].Size

		s2, l2 := openStoreOtherPool(b)
		if _, err := r.Pull(ctx, l2, "base"); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		if _, err := r.Pull(ctx, l2, "big"); err != nil {
			b.Fatal(err)
		}
		pullS += time.Since(start).Seconds()
		r.Close()

		// By hand: zfs send -i | ssh cat > file.
		file := filepath.Join(dir, "byhand.stream")
		start = time.Now()
		send := exec.Command("zfs", "send", "-i", s1.Root()+"/images/"+base+"@image", s1.Root()+"/images/"+id+"@image")
		ssh := exec.Command(srv.SSHCommand[0], append(srv.SSHCommand[1:], "-p", fmt.Sprint(srv.Port), "root@127.0.0.1", "cat > "+file)...)
		pipe(b, send, ssh)
		byHandPushS += time.Since(start).Seconds()
		// By hand: ssh cat file | zfs receive, into the second pool.
		start = time.Now()
		ssh = exec.Command(srv.SSHCommand[0], append(srv.SSHCommand[1:], "-p", fmt.Sprint(srv.Port), "root@127.0.0.1", "cat "+file)...)
		recv := exec.Command("zfs", "receive", s2.Root()+"/tmp/byhand")
		pipe(b, ssh, recv)
		byHandPullS += time.Since(start).Seconds()
	}
	n := float64(b.N)
	mb := float64(size) / (1 << 20)
	b.ReportMetric(mb/(pushS/n), "push-MiB/s")
	b.ReportMetric(mb/(byHandPushS/n), "byhand-send-MiB/s")
	b.ReportMetric((byHandPushS/n)/(pushS/n), "push/byhand-speed")
	b.ReportMetric(mb/(pullS/n), "pull-MiB/s")
	b.ReportMetric(mb/(byHandPullS/n), "byhand-recv-MiB/s")
	b.ReportMetric((byHandPullS/n)/(pullS/n), "pull/byhand-speed")
	b.Logf("stream %.1f MiB: push %.2fs, by hand %.2fs; pull %.2fs, by hand %.2fs (per run, %d runs)", mb, pushS/n, byHandPushS/n, pullS/n, byHandPullS/n, b.N)
}

func pipe(b *testing.B, from, to *exec.Cmd) {
	b.Helper()
	r, err := from.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	to.Stdin = r
	var e1, e2 bytes.Buffer
	from.Stderr, to.Stderr = &e1, &e2
	if err := to.Start(); err != nil {
		b.Fatal(err)
	}
	if err := from.Run(); err != nil {
		b.Fatalf("%v: %v: %s", from.Args, err, e1.String())
	}
	if err := to.Wait(); err != nil {
		b.Fatalf("%v: %v: %s", to.Args, err, e2.String())
	}
}

// fillPseudoRandom fills p with xorshift output: incompressible, fast.
func fillPseudoRandom(p []byte) {
	x := uint64(88172645463325252)
	for i := 0; i+8 <= len(p); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		for j := 0; j < 8; j++ {
			p[i+j] = byte(x >> (8 * j))
		}
	}
}
