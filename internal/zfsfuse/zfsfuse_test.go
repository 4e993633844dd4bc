package zfsfuse

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

// goZFSColumns is the -o list go-zfs v4 uses on every non-Solaris platform.
const goZFSColumns = "name,origin,used,available,mountpoint,compression,type,volsize,quota,referenced,written,logicalused,usedbydataset"

func TestTranslate(t *testing.T) {
	getProps := []string{"origin", "used", "available", "mountpoint", "compression", "type", "volsize", "quota", "referenced", "usedbydataset"}
	tests := []struct {
		name     string
		args     []string
		pass     bool
		listArgs []string
		columns  []string
		getProps []string
		err      string
	}{
		{name: "not list", args: []string{"destroy", "-r", "pool/x"}, pass: true},
		{name: "empty", args: nil, pass: true},
		{name: "list without -p", args: []string{"list", "-H", "-o", "name", "pool"}, pass: true},
		{name: "get -Hp passes", args: []string{"get", "-Hp", "quota", "pool"}, pass: true},
		{
			name:     "GetDataset",
			args:     []string{"list", "-Hp", "-o", goZFSColumns, "pool/a"},
			listArgs: []string{"list", "-H", "-o", "name", "pool/a"},
			columns:  strings.Split(goZFSColumns, ","),
			getProps: getProps,
		},
		{
			name:     "listByType",
			args:     []string{"list", "-rHp", "-t", "snapshot", "-o", goZFSColumns, "pool/a"},
			listArgs: []string{"list", "-H", "-o", "name", "-r", "-t", "snapshot", "pool/a"},
			columns:  strings.Split(goZFSColumns, ","),
			getProps: getProps,
		},
		{
			name:     "Children with depth, attached values",
			args:     []string{"list", "-d1", "-tall", "-Hp", "-oname,avail,refer", "pool"},
			listArgs: []string{"list", "-H", "-o", "name", "-d", "1", "-t", "all", "pool"},
			columns:  []string{"name", "available", "referenced"},
			getProps: []string{"available", "referenced"},
		},
		{
			name:     "default columns, all pools",
			args:     []string{"list", "-H", "-p"},
			listArgs: []string{"list", "-H", "-o", "name"},
			columns:  defaultColumns,
			getProps: []string{"used", "available", "referenced", "mountpoint"},
		},
		{name: "name only", args: []string{"list", "-Hp", "-o", "name", "x"}, listArgs: []string{"list", "-H", "-o", "name", "x"}, columns: []string{"name"}},
		{name: "sort unsupported", args: []string{"list", "-Hp", "-s", "used"}, err: "-s is not supported"},
		{name: "human table with -p", args: []string{"list", "-p"}, err: "only supported together with -H"},
		{name: "missing value", args: []string{"list", "-Hp", "-o"}, err: "-o needs a value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Translate(tt.args)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Passthrough != tt.pass {
				t.Fatalf("Passthrough = %v, want %v", p.Passthrough, tt.pass)
			}
			if tt.pass {
				return
			}
			if !reflect.DeepEqual(p.ListArgs, tt.listArgs) {
				t.Errorf("ListArgs = %q, want %q", p.ListArgs, tt.listArgs)
			}
			if !reflect.DeepEqual(p.Columns, tt.columns) {
				t.Errorf("Columns = %q, want %q", p.Columns, tt.columns)
			}
			if !reflect.DeepEqual(p.GetProps, tt.getProps) {
				t.Errorf("GetProps = %q, want %q", p.GetProps, tt.getProps)
			}
		})
	}
}

func TestRenderLikeOpenZFS(t *testing.T) {
	p, err := Translate([]string{"list", "-rHp", "-t", "all", "-o", goZFSColumns, "zdev"})
	if err != nil {
		t.Fatal(err)
	}
	names := ParseNames([]byte("zdev\nzdev/a@s1\n"))
	if got := p.GetArgs(names); !reflect.DeepEqual(got, []string{"get", "-H", "-p", "-o", "name,property,value",
		"origin,used,available,mountpoint,compression,type,volsize,quota,referenced,usedbydataset", "zdev", "zdev/a@s1"}) {
		t.Fatalf("GetArgs = %q", got)
	}
	getOut := "zdev\torigin\t-\nzdev\tused\t761856\nzdev\tavailable\t2096390144\nzdev\tmountpoint\t/zdev\n" +
		"zdev\tcompression\toff\nzdev\ttype\tfilesystem\nzdev\tvolsize\t-\nzdev\tquota\t0\nzdev\treferenced\t131072\n" +
		"zdev\tusedbydataset\t131072\n" +
		"zdev/a@s1\ttype\tsnapshot\nzdev/a@s1\tused\t0\nzdev/a@s1\treferenced\t122880\n"
	vals, err := ParseGet([]byte(getOut))
	if err != nil {
		t.Fatal(err)
	}
	want := "zdev\t-\t761856\t2096390144\t/zdev\toff\tfilesystem\t-\t0\t131072\t-\t-\t131072\n" +
		"zdev/a@s1\t-\t0\t-\t-\t-\tsnapshot\t-\t-\t122880\t-\t-\t-\n"
	if got := p.Render(names, vals); got != want {
		t.Errorf("Render:\n%q\nwant\n%q", got, want)
	}
	if p.GetArgs(nil) != nil {
		t.Error("GetArgs with no names must be nil: nothing to ask")
	}
	if _, err := ParseGet([]byte("broken line\n")); err == nil {
		t.Error("ParseGet accepted a line without tabs")
	}
}

// TestAdapterOnRealPool builds the adapter and runs go-zfs's exact listing
// through it against the zfs-fuse pool, comparing with `zfs get`.
func TestAdapterOnRealPool(t *testing.T) {
	root := testenv.Dataset(t)
	realZFS := os.Getenv("ZOCKER_REAL_ZFS")
	if realZFS == "" {
		realZFS = "/usr/sbin/zfs"
	}
	if _, err := os.Stat(realZFS); err != nil {
		t.Fatalf("real zfs %s: %v", realZFS, err)
	}
	bin := filepath.Join(t.TempDir(), "zfs")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/zfs").CombinedOutput(); err != nil {
		t.Fatalf("build adapter: %v: %s", err, out)
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "ZOCKER_REAL_ZFS="+realZFS)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("zfs %q: %v: %s", args, err, stderr.String())
		}
		return string(out)
	}
	run("create", root)
	run("create", "-o", "quota=10485760", root+"/child")
	run("snapshot", root+"/child@s")
	out := run("list", "-rHp", "-t", "all", "-o", goZFSColumns, root)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 datasets, got:\n%s", out)
	}
	for i, want := range []string{root, root + "/child", root + "/child@s"} {
		f := strings.Split(lines[i], "\t")
		if len(f) != 13 {
			t.Fatalf("line %q: %d columns, want 13", lines[i], len(f))
		}
		if f[0] != want {
			t.Errorf("line %d name %q, want %q", i, f[0], want)
		}
		if f[10] != "-" || f[11] != "-" {
			t.Errorf("written/logicalused = %q/%q, want -/-", f[10], f[11])
		}
	}
	child := strings.Split(lines[1], "\t")
	if child[8] != "10485760" || child[6] != "filesystem" {
		t.Errorf("child quota/type = %s/%s, want 10485760/filesystem", child[8], child[6])
	}
	if snap := strings.Split(lines[2], "\t"); snap[6] != "snapshot" {
		t.Errorf("snapshot type = %s", snap[6])
	}
	// A missing dataset fails like zfs does, with its message.
	cmd := exec.Command(bin, "list", "-Hp", "-o", "name,used", root+"/nope")
	cmd.Env = append(os.Environ(), "ZOCKER_REAL_ZFS="+realZFS)
	msg, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "does not exist") {
		t.Errorf("missing dataset: err=%v out=%s", err, msg)
	}
	// Passthrough keeps the exit status and the output of other commands.
	if got := strings.TrimSpace(run("get", "-H", "-o", "value", "quota", root+"/child")); got != "10M" {
		t.Errorf("passthrough get = %q, want 10M", got)
	}
}
