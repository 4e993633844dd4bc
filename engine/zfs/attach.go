package zfs

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	gozfs "github.com/mistifyio/go-zfs/v4"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
)

// Attach returns a store over root for the commands that only read (ps,
// images, plan, inspect): unlike Open it creates nothing and does not clean
// ROOT/tmp, which may hold the work in progress of a running service. A root
// that does not exist observes as empty.
func Attach(root string, r runner.Runner, log *slog.Logger) (*Store, error) {
	root = strings.TrimSuffix(root, "/")
	if !datasetRe.MatchString(root) || strings.Contains(root, "@") {
		return nil, fmt.Errorf("attach root %q: not a valid dataset name", root)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	gozfs.SetRunner(&gozfs.Runner{Timeout: CommandTimeout, Grace: 5 * time.Second})
	return &Store{root: root, r: r, log: log, sleep: time.Sleep}, nil
}
