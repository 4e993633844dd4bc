package manifests

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden .err files in testdata")

// TestInvalidGolden loads every testdata/invalid-* case (a file, or a
// directory for cross-file cases) and compares the exact lines a user sees
// with the .err file beside it.
func TestInvalidGolden(t *testing.T) {
	cases, err := filepath.Glob("testdata/invalid-*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range cases {
		if strings.HasSuffix(c, ".err") {
			continue
		}
		n++
		name := strings.TrimSuffix(filepath.Base(c), ".yaml")
		t.Run(name, func(t *testing.T) {
			set, err := Load(c, LoadOptions{Insecure: true, NumCPU: 4})
			if err != nil {
				t.Fatalf("Load(%s): %v", c, err)
			}
			if set.Errors() == 0 {
				t.Errorf("%s: no error reported", c)
			}
			for _, f := range set.Files {
				if len(set.Containers)+len(set.Images)+len(set.Volumes) > 0 && f.Failed && len(f.Objects) > 0 {
					for _, k := range f.Objects {
						if _, ok := set.Sources[k]; ok {
							t.Errorf("%s: object %s of failed file %s is in the set", c, k, f.Rel)
						}
					}
				}
			}
			var b strings.Builder
			for _, p := range set.Problems {
				b.WriteString(p.String() + "\n")
			}
			golden := strings.TrimSuffix(c, ".yaml") + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got := b.String(); got != string(want) {
				t.Errorf("%s:\n got:\n%s\nwant:\n%s", c, got, want)
			}
		})
	}
	if n < 30 {
		t.Errorf("only %d invalid cases in testdata, want at least 30", n)
	}
}
