package zfs

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"
)

// sweepBusyWait bounds how long the start-up sweep waits for one busy
// leftover before it moves on (SweepTmp retries it later): the service
// must come up and answer /healthz, not hang on one dataset.
var sweepBusyWait = 3 * time.Second

// sweep destroys the leftovers of interrupted work in ROOT/tmp (never
// published, never used). A leftover that cannot go now is logged with the
// processes that hold it and kept for SweepTmp.
func (s *Store) sweep(ctx context.Context, recs map[string]*record, all bool) {
	for name, rec := range recs {
		if rec.typ == "snapshot" || !strings.HasPrefix(name, s.tmpDS()+"/") || strings.Count(name[len(s.tmpDS())+1:], "/") > 0 {
			continue
		}
		if rec.own[PropManaged] != "true" {
			s.log.Warn("leaving unmanaged dataset in tmp", "dataset", name)
			continue
		}
		if !all && !workerGone(rec.own[PropWorker]) {
			continue // a running process's work (a shared open)
		}
		s.mu.Lock()
		if s.pending == nil {
			s.pending = map[string]string{}
		}
		s.pending[name] = rec.vals["mountpoint"]
		s.mu.Unlock()
	}
	s.SweepTmp(ctx)
}

// SweepTmp retries the leftovers the sweep could not destroy and returns
// those that remain. Each failure is logged once per call with the
// processes holding the dataset (what an operator must stop).
func (s *Store) SweepTmp(ctx context.Context) []string {
	s.mu.Lock()
	todo := make(map[string]string, len(s.pending))
	for k, v := range s.pending {
		todo[k] = v
	}
	s.mu.Unlock()
	var left []string
	for name, mp := range todo {
		// Who holds it, read before the forced unmount that destroy tries.
		holders := Holders(mp)
		dctx, cancel := context.WithTimeout(ctx, sweepBusyWait)
		err := s.destroy(dctx, name, true, true)
		cancel()
		if err == nil || errors.Is(err, ErrNotFound) {
			s.log.Info("removed leftover of interrupted work", "dataset", name, "action", "destroy")
			s.mu.Lock()
			delete(s.pending, name)
			s.mu.Unlock()
			continue
		}
		left = append(left, name)
		attrs := []any{"dataset", name, "action", "destroy", "err", err}
		if len(holders) > 0 {
			attrs = append(attrs, "held_by", strings.Join(holders, ", "))
		}
		s.log.Warn("leftover of interrupted work is busy; retrying in the background", attrs...)
	}
	sort.Strings(left)
	return left
}
