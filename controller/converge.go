package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// Items turns a plan into work-queue items that run exec for each action.
// Image builds and pulls get their own concurrency class (one at a time by
// default); the generation is what the action converges to, so that a
// terminal error is retried once the spec or the image inputs change.
func Items(p reconcile.Plan, exec reconcile.Executor) []Item {
	items := make([]Item, 0, len(p.Actions))
	for _, a := range p.Actions {
		a := a
		it := Item{
			Key:        a.Key(),
			Op:         string(a.Op),
			Generation: a.Generation(),
			Deps:       a.DependsOn,
			Reason:     a.Reason,
			Run:        func(ctx context.Context) error { return exec.Execute(ctx, a) },
		}
		switch a.Op {
		case reconcile.OpBuild:
			it.Class = "build"
		case reconcile.OpPull:
			it.Class = "pull"
		}
		items = append(items, it)
	}
	return items
}

// PassResult is what one converging pass did.
type PassResult struct {
	Action reconcile.Action
	Err    error
	Took   time.Duration
}

// Converge runs passes (observe, plan, execute every action in plan order)
// until a plan has no actions, an action fails, or maxPasses ran: an image
// import in one pass lets the containers waiting for it be created in the
// next. Actions whose dependencies failed in the same pass are skipped. It is
// what `apply` does; the service uses the Controller instead. It returns the
// last plan, what every action did, and an error when the state did not
// converge. It runs one action at a time; ConvergeWorkers runs several.
func Converge(ctx context.Context, d reconcile.Desired, obs reconcile.Observer, exec reconcile.Executor, opts reconcile.Options, maxPasses int, onAction func(PassResult)) (reconcile.Plan, error) {
	return ConvergeWorkers(ctx, d, obs, exec, opts, maxPasses, 1, onAction)
}

// ConvergeWorkers is Converge with up to workers actions at once: an action
// starts as soon as the actions it depends on have succeeded, with no
// ordering between independent ones (image builds and pulls still run one
// at a time, DefaultClassLimits). onAction is called from one goroutine.
func ConvergeWorkers(ctx context.Context, d reconcile.Desired, obs reconcile.Observer, exec reconcile.Executor, opts reconcile.Options, maxPasses, workers int, onAction func(PassResult)) (reconcile.Plan, error) {
	var last reconcile.Plan
	for pass := 0; pass < maxPasses; pass++ {
		o, err := obs.Observe(ctx)
		if err != nil {
			return last, fmt.Errorf("observe: %w", err)
		}
		if !opts.Now.IsZero() {
			opts.Now = time.Now() // health-gated trials are judged at each pass
		}
		last = reconcile.Diff(d, o, opts)
		last.Revision = revisionOf(d)
		if len(last.Actions) == 0 {
			return last, stuck(last)
		}
		if err := runPass(ctx, last, exec, workers, onAction); err != nil {
			return last, err
		}
	}
	return last, fmt.Errorf("not converged after %d passes", maxPasses)
}

// runPass executes the actions of one plan through a Queue and returns the
// failures joined. A Wait is not a failure: the next pass sees what it
// waited for (and its dependents run, as they would one after the other).
func runPass(ctx context.Context, p reconcile.Plan, exec reconcile.Executor, workers int, onAction func(PassResult)) error {
	if workers < 1 {
		workers = 1
	}
	q := &Queue{Workers: workers, ClassLimits: DefaultClassLimits}
	items := Items(p, exec)
	actions := make(map[string]reconcile.Action, len(p.Actions))
	for _, a := range p.Actions {
		actions[a.Key()] = a
	}
	q.Replace(items, time.Now())
	type result struct {
		item Item
		err  error
		took time.Duration
	}
	done := make(chan result)
	running := 0
	var errs []error
	for {
		for ctx.Err() == nil {
			d, ok := q.Next()
			if !ok {
				break
			}
			if d.Blocked != nil {
				continue // a dependency failed: its error is reported
			}
			running++
			go func(it Item) {
				start := time.Now()
				err := it.Run(ctx)
				done <- result{it, err, time.Since(start)}
			}(d.Item)
		}
		if running == 0 {
			break
		}
		r := <-done
		running--
		err := r.err
		if reconcile.IsWait(err) {
			err = nil
		}
		q.Done(r.item.Key, err, time.Now())
		if onAction != nil {
			onAction(PassResult{Action: actions[r.item.Key], Err: err, Took: r.took})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", actions[r.item.Key], err))
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// stuck reports the blocked entries that are failures (not guards, not
// waits that resolve by themselves) as an error.
func stuck(p reconcile.Plan) error {
	var errs []error
	for _, b := range p.Blocked {
		if b.Settled() || b.Reason == reconcile.BlockedUpdating {
			// A rolled-back version is an outcome, and a trial goes on
			// under the service: neither is a failure of this run.
			continue
		}
		if b.Waiting() {
			errs = append(errs, fmt.Errorf("%s/%s: still waiting: %s", b.Kind, b.Name, b.Message))
			continue
		}
		errs = append(errs, fmt.Errorf("%s/%s: %s: %s", b.Kind, b.Name, b.Reason, b.Message))
	}
	return errors.Join(errs...)
}

func revisionOf(d reconcile.Desired) string {
	if d.Set == nil {
		return ""
	}
	return d.Set.Revision
}
