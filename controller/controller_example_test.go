package controller_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/controller"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// The wiring `serve` does, with the real loader, observer, planner and
// executor replaced by small functions: every planned action becomes an
// Item keyed by kind/name, with its dependencies and a Run closure.
func ExampleController() {
	type desired struct{ containers []string }
	type observed struct{ running map[string]bool }
	ctx, cancel := context.WithCancel(context.Background())
	c := &controller.Controller[desired, observed]{
		Load: func(context.Context, string, string) (desired, error) {
			return desired{containers: []string{"db", "web"}}, nil
		},
		Observe: func(context.Context) (observed, error) {
			return observed{running: map[string]bool{"db": true}}, nil
		},
		Plan: func(d desired, o observed) []controller.Item {
			var items []controller.Item
			for _, name := range d.containers {
				if o.running[name] {
					continue
				}
				items = append(items, controller.Item{
					Key: reconcile.Key(manifests.KindContainer, name), Op: "start", Generation: "hash-1",
					Deps: []string{reconcile.Key(manifests.KindContainer, "db")},
					Run: func(context.Context) error {
						fmt.Println("start", name)
						return nil
					},
				})
			}
			return items
		},
		Resync: time.Minute,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Hooks: controller.Hooks{
			OnResult: func(key, op string, err error, _ time.Duration) {
				fmt.Println(key, op, controller.Classify(err))
			},
			OnPassDone: func(trigger string, err error) {
				fmt.Println("pass done:", trigger, err)
				cancel() // SIGTERM: drain and return
			},
		},
	}
	if err := c.Run(ctx); err != nil {
		fmt.Println(err)
	}
	fmt.Println("ready:", c.Ready())
	// Output:
	// start web
	// Container/web start success
	// pass done: startup <nil>
	// ready: true
}
