package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/zocker-reconcile/zocker-reconcile/engine/build"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/image"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// Commit makes a new image of container name (running or not; ad-hoc or
// declared: it is only read) and points tag at it. The image's parent is the
// container's image and its config is the image's, with the container's
// command, env, user and workdir, then the changes (commit --change, in
// Zockerfile syntax).
func (e *Engine) Commit(ctx context.Context, name, tag string, changes []string) (string, error) {
	if err := image.ValidName("tag", tag); err != nil {
		return "", err
	}
	st, err := e.Store.Observe(ctx)
	if err != nil {
		return "", err
	}
	i := slices.IndexFunc(st.Containers, func(c zfs.Container) bool { return c.ContainerName == name })
	if i < 0 {
		return "", fmt.Errorf("commit container %s: %w", name, zfs.ErrNotFound)
	}
	clone := st.Containers[i]
	img, ok := st.Image(clone.ImageID)
	if !ok {
		return "", fmt.Errorf("commit container %s: image %s: %w", name, image.Short(clone.ImageID), zfs.ErrNotFound)
	}
	cfg := img.Config
	cfg.Inputs = ""
	cfg.Env = maps.Clone(cfg.Env)
	if clone.Spec != "" {
		c, err := reconcile.DecodeAppliedSpec(name, clone.Spec)
		if err != nil {
			return "", fmt.Errorf("commit container %s: %w", name, err)
		}
		s := c.Spec
		if !s.Command.IsZero() {
			cfg.Cmd = s.Command.Args()
		}
		if len(s.Env) > 0 && cfg.Env == nil {
			cfg.Env = map[string]string{}
		}
		maps.Copy(cfg.Env, s.Env)
		cfg.User = firstNonEmpty(s.User, cfg.User)
		cfg.Workdir = firstNonEmpty(s.Workdir, cfg.Workdir)
	}
	cfg, err = build.ApplyChanges(cfg, changes)
	if err != nil {
		return "", fmt.Errorf("commit container %s: %w", name, err)
	}
	id, err := e.Store.Commit(ctx, name, cfg, map[string]string{zfs.PropOrigin: zfs.OriginCommit})
	if err != nil {
		return "", err
	}
	if err := e.Store.Tag(ctx, tag, id); err != nil {
		return id, err
	}
	return id, nil
}
