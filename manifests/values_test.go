package manifests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/image"
	"sigs.k8s.io/yaml"
)

func TestParseQuantity(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "512": 512, "1K": 1024, "512M": 512 << 20, "10G": 10 << 30, "2T": 2 << 40} {
		if got, err := ParseQuantity(in); err != nil || got != want {
			t.Errorf("ParseQuantity(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "M", "512MB", "1.5G", "-1", "10g", " 1K", "99999999999999999999", "9000000T"} {
		if got, err := ParseQuantity(in); err == nil {
			t.Errorf("ParseQuantity(%q) = %d, want an error", in, got)
		}
	}
}

func TestParseDuration(t *testing.T) {
	if d, err := ParseDuration("1m30s"); err != nil || d != 90*time.Second {
		t.Errorf("ParseDuration(1m30s) = %v, %v", d, err)
	}
	for _, in := range []string{"", "10", "0s", "-5s", "10 seconds"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q): want an error", in)
		}
	}
}

func TestSignalNumber(t *testing.T) {
	if s, err := SignalNumber("SIGTERM"); err != nil || s != syscall.SIGTERM {
		t.Errorf("SIGTERM = %v, %v", s, err)
	}
	if s, err := SignalNumber("SIGUSR1"); err != nil || s != syscall.SIGUSR1 {
		t.Errorf("SIGUSR1 = %v, %v", s, err)
	}
	for _, in := range []string{"TERM", "sigterm", "SIGFOO", "15", ""} {
		if _, err := SignalNumber(in); err == nil {
			t.Errorf("SignalNumber(%q): want an error", in)
		}
	}
}

func TestValidNames(t *testing.T) {
	for _, ok := range []string{"a", "web", "web-1", "0a", "1-x", strings.Repeat("a", 63)} {
		if err := image.ValidName("", ok); err != nil {
			t.Errorf("ValidName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "0", "3", "42", "Web", "a_b", "x;rm -rf /", "../x", "-a", "a-", "a.b", strings.Repeat("a", 64)} {
		if err := image.ValidName("", bad); err == nil {
			t.Errorf("ValidName(%q): want an error", bad)
		}
	}
	for _, ok := range []string{"web", "Web-1.example.org", "a"} {
		if err := ValidHostname(ok); err != nil {
			t.Errorf("ValidHostname(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a_b", "a..b", "-a.b", "a.b-", strings.Repeat("a", 64)} {
		if err := ValidHostname(bad); err == nil {
			t.Errorf("ValidHostname(%q): want an error", bad)
		}
	}
}

func TestCommandYAML(t *testing.T) {
	for in, want := range map[string]Command{
		`command: [/bin/echo, "a b"]`: {Argv: []string{"/bin/echo", "a b"}},
		`command: "echo hi; sleep 1"`: {Shell: "echo hi; sleep 1"},
		`command: []`:                 {Argv: []string{}},
		`command: null`:               {},
		`{}`:                          {},
	} {
		var s struct {
			Command Command `json:"command,omitzero"`
		}
		if err := yaml.UnmarshalStrict([]byte(in), &s); err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if !reflect.DeepEqual(s.Command, want) {
			t.Errorf("%s: got %#v, want %#v", in, s.Command, want)
		}
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back struct {
			Command Command `json:"command,omitzero"`
		}
		if err := json.Unmarshal(out, &back); err != nil || !reflect.DeepEqual(back, s) {
			t.Errorf("%s: round trip through %s gave %#v, %v", in, out, back, err)
		}
	}
	var c Command
	if err := json.Unmarshal([]byte(`{"a":1}`), &c); err == nil {
		t.Error("a mapping was accepted as a command")
	}
	if got := (Command{Shell: "x"}).Args(); !reflect.DeepEqual(got, []string{"/bin/sh", "-c", "x"}) {
		t.Errorf("Args of a shell command: %q", got)
	}
}

func TestDecodeLines(t *testing.T) {
	data := []byte("# leading comment\n---\napiVersion: zocker/v1\nkind: Volume\nmetadata: {name: a}\n---\n\n--- # empty documents are skipped\napiVersion: zocker/v1\nkind: Volume\nmetadata: {name: b}\nspec:\n  quota: 1X\n")
	docs, problems := decode("x.yaml", data, DecodeOptions{})
	if len(docs) != 2 || docs[0].Line != 3 || docs[1].Line != 9 || docs[0].Failed || !docs[1].Failed {
		t.Fatalf("docs %+v", docs)
	}
	if len(problems) != 1 || problems[0].String() != `x.yaml:13: Volume/b: spec.quota: quantity "1X" is invalid: want digits with an optional binary unit K, M, G or T (1K = 1024), e.g. 512M` {
		t.Errorf("problems %v", problems)
	}
}

func FuzzDecode(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	more, _ := filepath.Glob("testdata/*/*.y*ml")
	for _, p := range append(seeds, more...) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("a: &a [*a, *a]\nb: *a\n"))
	f.Add([]byte("---\n--- x\n---"))
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, problems := decode("fuzz.yaml", data, DecodeOptions{NumCPU: 2})
		for _, d := range docs {
			if d.Object == nil && !d.Failed {
				t.Errorf("document at line %d has neither an object nor an error", d.Line)
			}
		}
		for _, p := range problems {
			if p.Message == "" || p.File != "fuzz.yaml" {
				t.Errorf("malformed problem %+v", p)
			}
		}
	})
}

func BenchmarkLoad1000(b *testing.B) {
	root := write1000(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		set, err := Load(root, LoadOptions{Insecure: true})
		if err != nil || len(set.Containers) != 1000 || len(set.Problems) != 0 {
			b.Fatalf("load: %d containers, %v, %v", len(set.Containers), set.Problems, err)
		}
	}
}

// BenchmarkLoad1000Unchanged is a resync's load: 1,000 files unchanged since
// the last load, through the cache (stat only, no read, no decode).
func BenchmarkLoad1000Unchanged(b *testing.B) {
	root := write1000(b)
	old := racyWindow
	racyWindow = 0 // the files were just written; the benchmark is about later loads
	defer func() { racyWindow = old }()
	cache := NewCache()
	if _, err := Load(root, LoadOptions{Insecure: true, Cache: cache}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		set, err := Load(root, LoadOptions{Insecure: true, Cache: cache})
		if err != nil || len(set.Containers) != 1000 || len(set.Problems) != 0 {
			b.Fatalf("load: %d containers, %v, %v", len(set.Containers), set.Problems, err)
		}
		if st := cache.Stats(); st.Decoded != 0 || st.Unchanged != 1001 {
			b.Fatalf("cache: %+v", st)
		}
	}
}

// write1000 writes 1,000 Container manifests in 10 directories and an Image.
func write1000(b testing.TB) string {
	root := filepath.Join(b.TempDir(), "zocker.d")
	for i := range 1000 {
		dir := filepath.Join(root, fmt.Sprintf("app%d", i%10))
		os.MkdirAll(dir, 0o755)
		name := fmt.Sprintf("c%04d", i)
		doc := `apiVersion: zocker/v1
kind: Container
metadata:
  name: ` + name + `
  labels: {app: bench}
spec:
  image: base
  command: ["/bin/httpd", "-f", "-p", "8080"]
  env: {TZ: UTC, MODE: bench}
  network: {mode: loopback}
  volumes:
    - {hostPath: /srv/www, path: /var/www, readOnly: true}
  healthcheck: {command: ["/bin/true"], interval: 10s}
  resources: {memory: 64M, cpu: 50}
`
		if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(doc), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "base.yaml"), []byte("apiVersion: zocker/v1\nkind: Image\nmetadata: {name: base}\nspec: {tarball: {path: /b.tar}}\n"), 0o644)
	return root
}

// TestScalarsAsWritten guards against YAML 1.1 resolution: ZFS wants
// "compression: on" verbatim, and N is a fine environment variable name.
func TestScalarsAsWritten(t *testing.T) {
	data := []byte("apiVersion: zocker/v1\nkind: Volume\nmetadata: {name: d}\nspec:\n  quota: 10\n  properties: {compression: on, atime: off, copies: 2}\n---\n" +
		"apiVersion: zocker/v1\nkind: Container\nmetadata: {name: web}\nspec:\n  image: base\n  env: {N: 1, DEBUG: yes}\n  command: [/bin/echo, 1, true]\n  jailParams: {allow.raw_sockets: true}\n")
	docs, problems := decode("x.yaml", data, DecodeOptions{})
	if len(problems) != 0 || len(docs) != 2 {
		t.Fatalf("problems %v", problems)
	}
	v := docs[0].Object.(*Volume)
	if !reflect.DeepEqual(v.Spec.Properties, map[string]string{"compression": "on", "atime": "off", "copies": "2"}) || v.Spec.Quota != "10" {
		t.Errorf("volume spec %+v", v.Spec)
	}
	c := docs[1].Object.(*Container)
	if !reflect.DeepEqual(c.Spec.Env, map[string]string{"N": "1", "DEBUG": "yes"}) ||
		!reflect.DeepEqual(c.Spec.Command.Argv, []string{"/bin/echo", "1", "true"}) || c.Spec.JailParams["allow.raw_sockets"] != "true" {
		t.Errorf("container spec %+v", c.Spec)
	}
}

// decode decodes, defaults and validates the documents of one manifest file
// as Load does, without the cross-object checks.
func decode(file string, data []byte, opts DecodeOptions) ([]*Document, []Problem) {
	abs, err := filepath.Abs(file)
	if err != nil {
		abs = file
	}
	return decodeFile(file, filepath.Dir(abs), data, opts)
}
