package service

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// TestLoaderWarnsOnceUnverified: without a policy, the first load that
// declares a pull Image logs that pulls are unverified, and later loads do
// not repeat it; with a policy covering the source, nothing is logged.
func TestLoaderWarnsOnceUnverified(t *testing.T) {
	pull := image("base", func(i *manifests.Image) {
		i.Spec = manifests.ImageSpec{Pull: &manifests.PullSource{Repository: "file:///srv/images", Tag: "base"}}
	})
	resolve := func(context.Context, *manifests.PullSource) (string, string, error) { return "id1", "", nil }
	for _, c := range []struct {
		name     string
		verified func(*manifests.PullSource) bool
		want     int
	}{{"no policy", nil, 1}, {"policy", func(*manifests.PullSource) bool { return true }, 0}} {
		var buf bytes.Buffer
		l := NewLoader(LoaderOptions{Resolve: resolve, Verified: c.verified, Log: slog.New(slog.NewTextHandler(&buf, nil))})
		for range 3 {
			l.warnUnverified(newSet(pull))
		}
		if got := strings.Count(buf.String(), "pulls are unverified"); got != c.want {
			t.Errorf("%s: %d warnings, want %d:\n%s", c.name, got, c.want, buf.String())
		}
	}
}
