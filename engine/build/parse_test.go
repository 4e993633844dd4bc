package build

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseInstructions(t *testing.T) {
	src := `# The demo image.
ARG VERSION=1
FROM busybox
NET none
ENV A=1 B="two words" C='x y'
ENV LEGACY value with spaces
LABEL org.example.name="demo" version=$VERSION
USER www:www
WORKDIR /srv
RUN echo hello \
    # a comment inside a continuation is dropped
    && echo world
RUN ["/bin/sh", "-c", "true"]
COPY --chown=www:www site/ /srv/site/
COPY ["a b", "/c"]
VOLUME /data /logs
VOLUME ["/x"]
EXPOSE 80 53/udp
ENTRYPOINT ["/bin/httpd"]
cmd -f -p 8080
`
	f, err := Parse("Zockerfile", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		line int
		kw   string
		args []string
		exec bool
	}
	wants := []want{
		{2, Arg, []string{"VERSION=1"}, false},
		{3, From, []string{"busybox"}, false},
		{4, Net, []string{"none"}, false},
		{5, Env, []string{"A", "1", "B", "two words", "C", "x y"}, false},
		{6, Env, []string{"LEGACY", "value with spaces"}, false},
		{7, Label, []string{"org.example.name", "demo", "version", "$VERSION"}, false},
		{8, User, []string{"www:www"}, false},
		{9, Workdir, []string{"/srv"}, false},
		{10, Run, []string{"echo hello  && echo world"}, false},
		{13, Run, []string{"/bin/sh", "-c", "true"}, true},
		{14, Copy, []string{"site/", "/srv/site/"}, false},
		{15, Copy, []string{"a b", "/c"}, true},
		{16, Volume, []string{"/data", "/logs"}, false},
		{17, Volume, []string{"/x"}, true},
		{18, Expose, []string{"80", "53/udp"}, false},
		{19, Entrypoint, []string{"/bin/httpd"}, true},
		{20, Cmd, []string{"-f -p 8080"}, false},
	}
	if len(f.Instructions) != len(wants) {
		t.Fatalf("got %d instructions, want %d: %+v", len(f.Instructions), len(wants), f.Instructions)
	}
	for i, w := range wants {
		got := f.Instructions[i]
		if got.Line != w.line || got.Keyword != w.kw || !reflect.DeepEqual(got.Args, w.args) || got.Exec != w.exec {
			t.Errorf("instruction %d: got line %d %s %q exec=%v, want line %d %s %q exec=%v",
				i, got.Line, got.Keyword, got.Args, got.Exec, w.line, w.kw, w.args, w.exec)
		}
	}
	if c := f.Instructions[10].Chown; c != "www:www" {
		t.Errorf("COPY --chown = %q, want www:www", c)
	}
}

// TestParseInvalid checks the exact message a user sees for every file in
// testdata/invalid-*.zockerfile against the .err file beside it.
func TestParseInvalid(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid-*.zockerfile")
	if err != nil || len(files) < 15 {
		t.Fatalf("want at least 15 invalid cases, found %d (%v)", len(files), err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(file, ".zockerfile") + ".err")
			if err != nil {
				t.Fatal(err)
			}
			_, perr := Parse("Zockerfile", strings.NewReader(string(data)))
			if perr == nil {
				t.Fatalf("parsed without error; want %s", want)
			}
			if got := perr.Error(); got != strings.TrimSpace(string(want)) {
				t.Errorf("error:\n got: %s\nwant: %s", got, strings.TrimSpace(string(want)))
			}
		})
	}
}

func TestParseExamples(t *testing.T) {
	for _, p := range []string{"../../examples/freebsd/apache/Zockerfile"} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Parse(filepath.Base(p), strings.NewReader(string(data)))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if f.Instructions[0].Keyword != From {
			t.Errorf("%s: first instruction %s", p, f.Instructions[0].Keyword)
		}
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "1", "NAME": "web", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	cases := map[string]string{
		"plain":           "plain",
		"$A":              "1",
		"${NAME}-x":       "web-x",
		"$NAME/$A":        "web/1",
		"${MISSING:-def}": "def",
		"${EMPTY:-def}":   "def",
		"${A:-def}":       "1",
		`\$A`:             "$A",
		"$UNKNOWN.":       ".",
		"cost: $":         "cost: $",
		"${unterminated":  "${unterminated",
		"$1":              "$1",
	}
	for in, want := range cases {
		if got := Expand(in, lookup); got != want {
			t.Errorf("Expand(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParse feeds the parser arbitrary files seeded with the test data; it
// must return a file or an error, never panic.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.zockerfile")
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(string(data))
		}
	}
	f.Add("FROM scratch\nCOPY a b\nENV A=\"x\\\"y\" B=z\n")
	f.Fuzz(func(t *testing.T, src string) {
		file, err := Parse("Zockerfile", strings.NewReader(src))
		if err == nil && (len(file.Instructions) == 0 || file.Instructions[0].Line < 1) {
			t.Fatalf("parsed a file without instructions or lines: %+v", file)
		}
		_ = Expand(src, func(string) (string, bool) { return "v", true })
	})
}
