package zfs

import (
	"context"
	"errors"
	"fmt"
	"github.com/zocker-reconcile/zocker-reconcile/image"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Properties of health-gated updates (Container.spec.update).
const (
	// PropUpdateStarted is set on a container clone made by an update that
	// is still on trial: the Unix time the trial started.
	PropUpdateStarted = "zocker:update-started"
	// PropRolledBack is set on a clone brought back by a rollback: the spec
	// hash of the version that failed, which is not tried again.
	PropRolledBack = "zocker:rolled-back"
	// PropRollbackReason is the evidence of that failure, for people.
	PropRollbackReason = "zocker:rollback-reason"
)

// A previous clone is a container's clone kept aside by an update, at
// ROOT/previous/<name>.<unix nanoseconds>. It keeps every property it had as
// a container (kind container, zocker:name, spec, spec hash, image, ip), so
// renaming it back is all a rollback needs; the location alone says it is
// not the current one.

func (s *Store) previousDir() string         { return s.root + "/previous" }
func (s *Store) previousDS(id string) string { return s.root + "/previous/" + id }

// previousRe matches a previous clone's ID: a container name, a dot and a
// timestamp (19 digits until the year 2286, so IDs sort by age).
var previousRe = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)\.([0-9]{1,20})$`)

// KeepPrevious moves the (stopped) container's clone aside as a previous
// clone and returns its ID. The container name is free afterwards.
func (s *Store) KeepPrevious(ctx context.Context, name string) (string, error) {
	if err := image.ValidName("container", name); err != nil {
		return "", err
	}
	if err := s.requireManaged(ctx, s.containerDS(name), KindContainer); err != nil {
		return "", fmt.Errorf("keep previous clone of container %s: %w", name, err)
	}
	if _, err := s.get(ctx, "type", s.previousDir(), false); errors.Is(err, ErrNotFound) {
		if err := s.create(ctx, s.previousDir(), marks(KindDir, "previous")); err != nil {
			return "", fmt.Errorf("keep previous clone of container %s: %w", name, err)
		}
	} else if err != nil {
		return "", fmt.Errorf("keep previous clone of container %s: %w", name, err)
	}
	id := name + "." + strconv.FormatInt(time.Now().UnixNano(), 10)
	if err := s.rename(ctx, s.containerDS(name), s.previousDS(id)); err != nil {
		return "", fmt.Errorf("keep previous clone of container %s: %w", name, err)
	}
	s.log.Info("kept previous clone", "container", name, "dataset", s.previousDS(id), "action", "keep-previous")
	return id, nil
}

// RestorePrevious renames the previous clone id back to its container's
// name, which must be free.
func (s *Store) RestorePrevious(ctx context.Context, id string) error {
	name, err := previousOwner(id)
	if err != nil {
		return err
	}
	ds := s.previousDS(id)
	if err := s.requireManaged(ctx, ds, KindContainer); err != nil {
		return fmt.Errorf("restore previous clone %s: %w", id, err)
	}
	if _, err := s.get(ctx, "type", s.containerDS(name), false); err == nil {
		return fmt.Errorf("restore previous clone %s: %w", id, fmt.Errorf("container %s: %w", name, ErrExists))
	} else if !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("restore previous clone %s: %w", id, err)
	}
	if err := s.rename(ctx, ds, s.containerDS(name)); err != nil {
		return fmt.Errorf("restore previous clone %s: %w", id, err)
	}
	s.log.Info("restored previous clone", "container", name, "dataset", ds, "action", "restore")
	return nil
}

// DestroyPrevious destroys the previous clone id.
func (s *Store) DestroyPrevious(ctx context.Context, id string) error {
	if _, err := previousOwner(id); err != nil {
		return err
	}
	ds := s.previousDS(id)
	if err := s.requireManaged(ctx, ds, KindContainer); err != nil {
		return fmt.Errorf("destroy previous clone %s: %w", id, err)
	}
	if err := s.destroy(ctx, ds, true, true); err != nil {
		return fmt.Errorf("destroy previous clone %s: %w", id, err)
	}
	s.log.Info("destroyed previous clone", "dataset", ds, "action", "destroy")
	return nil
}

// ClearContainerProps removes zocker:* properties from a managed container.
func (s *Store) ClearContainerProps(ctx context.Context, name string, keys ...string) error {
	if err := image.ValidName("container", name); err != nil {
		return err
	}
	ds := s.containerDS(name)
	if err := s.requireManaged(ctx, ds, KindContainer); err != nil {
		return fmt.Errorf("clear properties of container %s: %w", name, err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "zocker:") || k == PropManaged || k == PropKind || k == PropName {
			return fmt.Errorf("clear properties of container %s: %s cannot be removed", name, k)
		}
		if err := s.inheritProp(ctx, ds, k); err != nil {
			return fmt.Errorf("clear properties of container %s: %w", name, err)
		}
	}
	return nil
}

// previousOwner validates a previous clone's ID and returns its container.
func previousOwner(id string) (string, error) {
	m := previousRe.FindStringSubmatch(id)
	if m == nil {
		return "", fmt.Errorf("previous clone %q: not a valid ID (want NAME.TIMESTAMP)", id)
	}
	return m[1], nil
}
