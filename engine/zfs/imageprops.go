package zfs

import (
	"context"
	"fmt"
	"sort"
)

// PropInputs records on an image what the reconciler last made it from
// (a build's inputs hash), so that the next pass knows it is current.
const PropInputs = "zocker:inputs"

// SetImageProps sets zocker:* properties on a published, managed image.
func (s *Store) SetImageProps(ctx context.Context, id string, props map[string]string) error {
	if err := ValidID(id); err != nil {
		return err
	}
	if err := checkProps(props); err != nil {
		return fmt.Errorf("set properties of image %s: %w", id, err)
	}
	ds := s.imageDS(id)
	if err := s.requireManaged(ctx, ds, KindImage); err != nil {
		return fmt.Errorf("set properties of image %s: %w", id, err)
	}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := s.setProp(ctx, ds, k, props[k]); err != nil {
			return fmt.Errorf("set properties of image %s: %w", id, err)
		}
	}
	return nil
}
