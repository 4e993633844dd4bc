package zfs

import (
	"context"
	"fmt"
	"sort"

	"github.com/zocker-reconcile/zocker-reconcile/image"
)

// PropInputs records on an image what the reconciler last made it from
// (a build's inputs hash), so that the next pass knows it is current.
const PropInputs = "zocker:inputs"

// SetImageProps sets zocker:* properties on a published, managed image.
func (s *Store) SetImageProps(ctx context.Context, id string, props map[string]string) error {
	if err := image.ValidID(id); err != nil {
		return err
	}
	return s.setOwnProps(ctx, s.imageDS(id), KindImage, "image "+id, props)
}

// setOwnProps sets zocker:* properties, in a stable order, on a dataset
// that must carry our marks of kind.
func (s *Store) setOwnProps(ctx context.Context, ds, kind, what string, props map[string]string) error {
	if err := checkProps(props); err != nil {
		return fmt.Errorf("set properties of %s: %w", what, err)
	}
	if err := s.requireManaged(ctx, ds, kind); err != nil {
		return fmt.Errorf("set properties of %s: %w", what, err)
	}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := s.setProp(ctx, ds, k, props[k]); err != nil {
			return fmt.Errorf("set properties of %s: %w", what, err)
		}
	}
	return nil
}
