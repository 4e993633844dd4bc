package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// RevisionVerification is zocker_manifest_revision_verified: 1 when the
// newest manifest revision carries a valid signature by an allowed signer,
// 0 while it does not (the last verified one stays in force). It exists
// only under serve --verify-commits, so it is registered apart from New.
type RevisionVerification struct{ g prometheus.Gauge }

// NewRevisionVerification registers the gauge on reg.
func NewRevisionVerification(reg prometheus.Registerer) *RevisionVerification {
	return &RevisionVerification{g: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
		Name: "zocker_manifest_revision_verified",
		Help: "1 when the newest manifest revision's HEAD commit is signed by an allowed signer (serve --verify-commits), 0 while it is not and the last verified revision stays in force.",
	})}
}

// Set records the newest revision's verification.
func (r *RevisionVerification) Set(verified bool) {
	if verified {
		r.g.Set(1)
	} else {
		r.g.Set(0)
	}
}
