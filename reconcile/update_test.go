package reconcile

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

var trialStart = time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)

// gated is web with an update policy (healthTimeout 60s, defaults otherwise).
func gated(mut ...func(*manifests.Container)) *manifests.Container {
	c := container("web", func(c *manifests.Container) {
		c.Spec.Update = &manifests.Update{HealthTimeout: "60s"}
	})
	for _, m := range mut {
		m(c)
	}
	return c
}

func withHealthcheck(c *manifests.Container) {
	c.Spec.Healthcheck = &manifests.Healthcheck{Command: manifests.Command{Argv: []string{"/bin/true"}}}
}

func v2(c *manifests.Container) {
	c.Spec.Command = manifests.Command{Argv: []string{"/bin/httpd", "-v2"}}
}

// previousOf is the kept clone of c as it was applied.
func previousOf(t *testing.T, c *manifests.Container, id string) ObservedPrevious {
	t.Helper()
	oc := applied(t, c, id)
	return ObservedPrevious{ID: "web.1", SpecHash: oc.SpecHash, Spec: oc.Spec, ImageID: id}
}

func TestUpdateGate(t *testing.T) {
	v1 := gated()
	new := gated(v2)
	pending := func(mut ...func(*ObservedContainer)) ObservedContainer {
		return applied(t, new, "id1", append([]func(*ObservedContainer){func(oc *ObservedContainer) {
			oc.UpdateStarted = trialStart
		}}, mut...)...)
	}
	cases := []struct {
		name string
		decl *manifests.Container
		cur  *ObservedContainer // nil: no current clone
		prev []ObservedPrevious
		now  time.Duration // after trialStart
		want []string
	}{
		{name: "on trial", decl: new, cur: ptr(pending()), prev: []ObservedPrevious{previousOf(t, v1, "id1")}, now: 10 * time.Second,
			want: []string{"blocked hold container/web: update-in-progress"}},
		{name: "ran healthTimeout without exiting", decl: new, cur: ptr(pending()), prev: []ObservedPrevious{previousOf(t, v1, "id1")}, now: 61 * time.Second,
			want: []string{"confirm container/web: new version ran 1m0s without exiting"}},
		{name: "exited during trial", decl: new, cur: ptr(pending(func(oc *ObservedContainer) { oc.Exited, oc.LastExitCode, oc.Restarts = true, 1, 2 })),
			prev: []ObservedPrevious{previousOf(t, v1, "id1")}, now: 5 * time.Second,
			want: []string{"rollback container/web: new version exited with code 1 (spec.command changed)"}},
		{name: "unhealthy", decl: gated(v2, withHealthcheck), cur: ptr(applied(t, gated(v2, withHealthcheck), "id1", func(oc *ObservedContainer) {
			oc.UpdateStarted, oc.Health, oc.HealthOutput = trialStart, HealthUnhealthy, "connection refused\nmore"
		})), prev: []ObservedPrevious{previousOf(t, v1, "id1")}, now: 30 * time.Second,
			want: []string{"rollback container/web: new version unhealthy: connection refused (spec.command changed, spec.healthcheck changed)"}},
		{name: "healthy confirms before the timeout", decl: gated(v2, withHealthcheck), cur: ptr(applied(t, gated(v2, withHealthcheck), "id1", func(oc *ObservedContainer) {
			oc.UpdateStarted, oc.Health = trialStart, HealthHealthy
		})), prev: []ObservedPrevious{previousOf(t, v1, "id1")}, now: 3 * time.Second,
			want: []string{"confirm container/web: new version healthy"}},
		{name: "never healthy within the timeout", decl: gated(v2, withHealthcheck), cur: ptr(applied(t, gated(v2, withHealthcheck), "id1", func(oc *ObservedContainer) {
			oc.UpdateStarted, oc.Health = trialStart, HealthStarting
		})), prev: []ObservedPrevious{previousOf(t, v1, "id1")}, now: 61 * time.Second,
			want: []string{"rollback container/web: new version unhealthy after 1m0s (spec.command changed, spec.healthcheck changed)"}},
		{name: "confirm prunes beyond keepPrevious", decl: new, cur: ptr(pending()),
			prev: []ObservedPrevious{{ID: "web.0"}, previousOf(t, v1, "id1")}, now: 61 * time.Second,
			want: []string{"confirm container/web: new version ran 1m0s without exiting; prunes 1 previous clone(s)"}},
		{name: "rollback off holds the failure", decl: gated(v2, func(c *manifests.Container) { no := false; c.Spec.Update.Rollback = &no }),
			cur: ptr(applied(t, gated(v2, func(c *manifests.Container) { no := false; c.Spec.Update.Rollback = &no }), "id1", func(oc *ObservedContainer) {
				oc.UpdateStarted, oc.Running, oc.Exited, oc.LastExitCode = trialStart, false, true, 2
			})), prev: []ObservedPrevious{previousOf(t, v1, "id1")}, now: 5 * time.Second,
			want: []string{"blocked hold container/web: update-failed"}},
		{name: "interrupted before the new version started", decl: new, cur: ptr(pending(func(oc *ObservedContainer) { oc.Running = false })),
			prev: []ObservedPrevious{previousOf(t, v1, "id1")}, now: time.Second,
			want: []string{"rollback container/web: update interrupted before the new version started"}},
		{name: "interrupted before the new clone existed", decl: new, prev: []ObservedPrevious{previousOf(t, v1, "id1")},
			want: []string{"rollback container/web: update interrupted before the new version was made"}},
		{name: "rolled back version is not tried again", decl: new, cur: ptr(applied(t, v1, "id1", func(oc *ObservedContainer) {
			oc.RolledBack, oc.RollbackReason = SpecHash(new, "id1"), "new version exited with code 1 (spec.command changed)"
		})), want: []string{"blocked hold container/web: rolled-back"}},
		{name: "a further change is tried", decl: gated(func(c *manifests.Container) { c.Spec.User = "www" }), cur: ptr(applied(t, v1, "id1", func(oc *ObservedContainer) {
			oc.RolledBack = SpecHash(new, "id1")
		})), want: []string{"replace container/web: spec.user changed"}},
		{name: "writes shown on replace", decl: gated(v2), cur: ptr(applied(t, v1, "id1", func(oc *ObservedContainer) { oc.Written = 5 << 20 })),
			want: []string{"replace container/web: spec.command changed; discards 5.0M written outside volumes"}},
		{name: "protectWrites blocks", decl: gated(v2, func(c *manifests.Container) { c.Spec.Update.ProtectWrites = true }),
			cur:  ptr(applied(t, v1, "id1", func(oc *ObservedContainer) { oc.Written = 5 << 20 })),
			want: []string{"blocked replace container/web: protect-writes"}},
		{name: "small writes are not mentioned", decl: gated(v2, func(c *manifests.Container) { c.Spec.Update.ProtectWrites = true }),
			cur:  ptr(applied(t, v1, "id1", func(oc *ObservedContainer) { oc.Written = 64 << 10 })),
			want: []string{"replace container/web: spec.command changed"}},
		{name: "policy removed during the trial", decl: container("web", v2), cur: ptr(applied(t, container("web", v2), "id1", func(oc *ObservedContainer) {
			oc.UpdateStarted = trialStart
		})), prev: []ObservedPrevious{previousOf(t, v1, "id1")}, now: time.Second,
			want: []string{"confirm container/web: spec.update removed during the trial; prunes 1 previous clone(s)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var objs []any
			if tc.cur != nil {
				objs = append(objs, *tc.cur)
			}
			o := observed(objs...)
			o.Previous = map[string][]ObservedPrevious{"web": tc.prev}
			p := Diff(desired(newSet(img("base"), tc.decl)), o, Options{Now: trialStart.Add(tc.now)})
			got := summary(p)
			if !slices.Equal(got, tc.want) {
				t.Errorf("plan:\n  got  %q\n  want %q", got, tc.want)
			}
		})
	}
}

func TestUpdateRollbackCarriesThePreviousSpec(t *testing.T) {
	v1 := gated()
	new := gated(v2)
	cur := applied(t, new, "id1", func(oc *ObservedContainer) { oc.UpdateStarted, oc.Running, oc.Exited = trialStart, false, true })
	o := observed(cur)
	o.Previous = map[string][]ObservedPrevious{"web": {previousOf(t, v1, "id0")}}
	p := Diff(desired(newSet(img("base"), new)), o, Options{Now: trialStart.Add(time.Second)})
	if len(p.Actions) != 1 || p.Actions[0].Op != OpRollback {
		t.Fatalf("plan: %q", summary(p))
	}
	a := p.Actions[0]
	if a.ImageID != "id0" || a.SpecHash != SpecHash(v1, "id0") || !slices.Equal(a.Previous, []string{"web.1"}) || a.Failed != cur.SpecHash {
		t.Errorf("rollback action = %+v", a)
	}
	if got := a.Container.Spec.Command.Argv; !slices.Equal(got, []string{"/bin/httpd", "-f"}) {
		t.Errorf("restored command = %q, want v1's", got)
	}
}

func TestUpdateRolledBackIsInSyncForPlan(t *testing.T) {
	v1, new := gated(), gated(v2)
	o := observed(applied(t, v1, "id1", func(oc *ObservedContainer) {
		oc.RolledBack, oc.RollbackReason = SpecHash(new, "id1"), "new version unhealthy after 1m0s (spec.command changed)"
	}))
	p := Diff(desired(newSet(img("base"), new)), o, Options{Now: trialStart})
	if !p.InSync || p.ExitCode() != 0 {
		t.Errorf("InSync = %v, exit %d: %q", p.InSync, p.ExitCode(), summary(p))
	}
	var b strings.Builder
	if err := RenderText(&b, p); err != nil {
		t.Fatal(err)
	}
	want := "! hold container web: rolled back container web: new version unhealthy after 1m0s (spec.command changed) (rolled-back)\n"
	if !strings.HasPrefix(b.String(), want) {
		t.Errorf("text:\n%s\nwant prefix\n%s", b.String(), want)
	}
	// A restored version that stopped is started again by its own spec.
	o.Containers["web"] = func() ObservedContainer { oc := o.Containers["web"]; oc.Running = false; return oc }()
	p = Diff(desired(newSet(img("base"), new)), o, Options{Now: trialStart})
	if got := summary(p); !slices.Equal(got, []string{"start container/web: not running (rolled-back version)", "blocked hold container/web: rolled-back"}) {
		t.Errorf("plan: %q", got)
	}
}

func TestUpdateOrphanPreviousPruned(t *testing.T) {
	o := observed()
	o.Previous = map[string][]ObservedPrevious{"old": {{ID: "old.1"}}}
	p := Diff(desired(newSet(img("base"))), o, Options{AllowEmpty: true})
	if got := summary(p); !slices.Equal(got, []string{"prune container/old: removed from manifests (previous clones only)"}) {
		t.Errorf("plan: %q", got)
	}
}

func ptr[T any](v T) *T { return &v }

func TestRecoverEnv(t *testing.T) {
	env := map[string]string{"A": EnvDigest("A", "1"), "B": EnvDigest("B", "old"), "C": "plain"}
	missing := RecoverEnv(env, map[string]string{"A": "1", "B": "new"})
	if env["A"] != "1" || env["C"] != "plain" || !IsEnvDigest(env["B"]) || !slices.Equal(missing, []string{"B"}) {
		t.Errorf("env = %v, missing %v", env, missing)
	}
	if missing := RecoverEnv(env, map[string]string{"B": "old"}); len(missing) != 0 || env["B"] != "old" {
		t.Errorf("second source: env = %v, missing %v", env, missing)
	}
}
