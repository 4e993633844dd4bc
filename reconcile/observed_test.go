package reconcile

import (
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

func TestObjectAttr(t *testing.T) {
	for key, want := range map[string]string{
		Key(manifests.KindContainer, "web"): "container=web",
		Key(manifests.KindImage, "bb"):      "image=bb",
		Key(manifests.KindVolume, "data"):   "volume=data",
		"Pass/startup":                      "key=Pass/startup",
		"nokind":                            "key=nokind",
	} {
		if got := KeyAttr(key).String(); got != want {
			t.Errorf("KeyAttr(%q) = %s, want %s", key, got, want)
		}
	}
}
