package build

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

func TestInputs(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("Zockerfile", "ARG BASE=busybox\nFROM $BASE\nCOPY index.html /srv/\n")
	write("index.html", "one")
	img := &manifests.Image{Metadata: manifests.ObjectMeta{Name: "hello"},
		Spec: manifests.ImageSpec{Build: &manifests.BuildSource{Context: dir, File: "Zockerfile"}}}
	tags := map[string]string{}
	inputs := func(img *manifests.Image) (string, string, error) {
		return Inputs(img.Spec.Build, func(ref string) (string, bool) { id, ok := tags[ref]; return id, ok })
	}

	in, base, err := inputs(img)
	if err != nil || in != "" || base != "busybox" {
		t.Fatalf("base not made yet: inputs %q base %q err %v; want unknown inputs and base busybox", in, base, err)
	}
	tags["busybox"] = strings.Repeat("a", 64)
	first, _, err := inputs(img)
	if err != nil || !strings.HasPrefix(first, "build:") {
		t.Fatalf("inputs %q %v", first, err)
	}
	if again, _, _ := inputs(img); again != first {
		t.Errorf("same inputs hash differently: %s %s", first, again)
	}
	tags["busybox"] = strings.Repeat("b", 64)
	if moved, _, _ := inputs(img); moved == first {
		t.Errorf("a new base image ID must change the inputs")
	}
	tags["busybox"] = strings.Repeat("a", 64)
	write("index.html", "two")
	if edited, _, _ := inputs(img); edited == first {
		t.Errorf("an edited context file must change the inputs")
	}
}
