package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRevisionVerification(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := NewRevisionVerification(reg)
	r.Set(true)
	r.Set(false)
	want := `# HELP zocker_manifest_revision_verified 1 when the newest manifest revision's HEAD commit is signed by an allowed signer (serve --verify-commits), 0 while it is not and the last verified revision stays in force.
# TYPE zocker_manifest_revision_verified gauge
zocker_manifest_revision_verified 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "zocker_manifest_revision_verified"); err != nil {
		t.Fatal(err)
	}
}
