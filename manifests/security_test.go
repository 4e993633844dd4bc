package manifests

import (
	"strings"
	"testing"
)

// loadProblems loads one testdata file and returns its problems as the
// lines `validate` prints.
func loadProblems(t *testing.T, file string) string {
	t.Helper()
	set, err := Load(file, LoadOptions{Insecure: true, NumCPU: 4})
	if err != nil {
		t.Fatalf("Load(%s): %v", file, err)
	}
	var b strings.Builder
	for _, p := range set.Problems {
		b.WriteString(p.String() + "\n")
	}
	if len(set.Containers) != 0 {
		t.Errorf("%s: %d containers accepted", file, len(set.Containers))
	}
	return b.String()
}

// TestSecurityH3JailParamsNoPrefix: the review's reproduction (noexec.prestart,
// nomount, exec.created) is refused at validate with file:line, each naming
// the host-side parameter jail(8) would have run.
func TestSecurityH3JailParamsNoPrefix(t *testing.T) {
	got := loadProblems(t, "testdata/invalid-jailparams-no-prefix.yaml")
	for _, want := range []string{
		"testdata/invalid-jailparams-no-prefix.yaml:17: Container/web: spec.jailParams.noexec.prestart: jail parameter noexec.prestart means exec.prestart",
		"testdata/invalid-jailparams-no-prefix.yaml:18: Container/web: spec.jailParams.nomount: jail parameter nomount means mount",
		"testdata/invalid-jailparams-no-prefix.yaml:19: Container/web: spec.jailParams.exec.created: jail parameter exec.created is not allowed",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems:\n%s\nwant a line starting %q", got, want)
		}
	}
	if strings.Contains(got, "allow.noraw_sockets") {
		t.Errorf("allow.noraw_sockets (a kernel boolean turned off) was refused:\n%s", got)
	}
}

// TestSecurityM6AllDigitNames: a container named "3" is refused at validate
// with file:line; jail(8) would read it as jail ID 3.
func TestSecurityM6AllDigitNames(t *testing.T) {
	got := loadProblems(t, "testdata/invalid-name-all-digits.yaml")
	want := `testdata/invalid-name-all-digits.yaml:12: Container/3: metadata.name: name "3" is invalid: it needs at least one letter`
	if !strings.Contains(got, want) {
		t.Errorf("problems:\n%s\nwant %q", got, want)
	}
}
