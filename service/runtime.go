package service

import (
	"context"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/metrics"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// runtimePeriod is how often the service reads the supervisors' status
// files between passes. Reading them runs no command (they are files in the
// state directory), and a second is the first step of the restart backoff:
// a crash loop shows in /status and zocker_object_ready within one step.
const runtimePeriod = time.Second

// watchRuntime keeps the containers' Ready conditions and gauges current
// between passes, from the supervisors' reports.
func (s *Service) watchRuntime(ctx context.Context) {
	t := time.NewTicker(runtimePeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sups, err := s.cfg.Supervisors()
		if err != nil {
			s.log.Debug("read supervisor status", "err", err)
			continue
		}
		s.refreshRuntime(sups)
	}
}

// refreshRuntime applies one reading of the supervisors to the status book
// and the per-container gauges.
func (s *Service) refreshRuntime(sups []supervisor.Status) {
	latest := make(map[string]supervisor.Status, len(sups))
	for _, st := range sups {
		latest[st.Name] = st
	}
	for _, name := range s.book.Runtime(latest) {
		obj, ok := s.book.Object(manifests.KindContainer, name)
		if ok {
			s.m.SetObjectReady(manifests.KindContainer, name, obj.Ready())
		}
	}
	s.mu.Lock()
	known := s.known
	s.mu.Unlock()
	for _, st := range sups {
		if known[reconcile.Key(metrics.KindContainer, st.Name)] {
			up, healthy := containerGauges(st)
			s.m.ContainerState(st.Name, up, healthy, st.Restarts)
		}
	}
}

// containerGauges are zocker_container_up and zocker_container_healthy for
// one supervisor's report: healthy follows up for a container without a
// health check (README: "1 when running / healthy").
func containerGauges(st supervisor.Status) (up, healthy bool) {
	up = st.Running()
	switch st.Health.Status {
	case supervisor.HealthHealthy:
		healthy = up
	case supervisor.HealthNone, "":
		healthy = up
	}
	return up, healthy
}
