package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/zocker-reconcile/zocker-reconcile/engine/build"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// ZockerfileBuilder builds Images declared with build: through engine/build,
// in build jails of the engine's driver, and records the inputs hash on the
// resulting image. A step that fails (a RUN exiting non-zero, a COPY out of
// the context) fails the same way until the inputs change, so it is a
// terminal error: the old image and its containers stay, and the Image is
// Stalled with the failing line.
func (e *Engine) ZockerfileBuilder() Builder {
	return func(ctx context.Context, img *manifests.Image, inputs string) (string, error) {
		b := img.Spec.Build
		if b == nil {
			return "", reconcile.Terminal(fmt.Errorf("image %s: no build source", img.Metadata.Name))
		}
		out := &logLines{log: e.Log.With("image", img.Metadata.Name, "action", "build")}
		res, err := build.Build(ctx, build.Options{
			ContextDir: b.Context, File: b.File, Tag: img.Metadata.Name, Args: b.Args,
			Output: out, Store: e.Store, Driver: e.Driver, Log: e.Log,
		})
		out.flush()
		// Terminal only what fails again with the same inputs: a RUN that
		// exits non-zero, a COPY out of the context, a Zockerfile that does
		// not parse. A store or jail failure inside a step is retried.
		var se *build.StepError
		var pe *build.Error
		if (errors.As(err, &se) && se.ExitCode != 0) || errors.Is(err, build.ErrOutsideContext) || errors.As(err, &pe) {
			return "", reconcile.Terminal(fmt.Errorf("build image %s: %w", img.Metadata.Name, err))
		}
		if err != nil {
			return "", fmt.Errorf("build image %s: %w", img.Metadata.Name, err)
		}
		// Record the inputs as they are now that the base image exists: the
		// hash planned from may have named a base that was still being made.
		st, err := e.Store.Observe(ctx)
		if err != nil {
			return "", err
		}
		now, _, err := BuildInputs(func(ref string) (string, bool) { id, ok := st.Tags[ref]; return id, ok })(img)
		if err != nil {
			now = inputs
		}
		if now != "" {
			if err := e.Store.SetImageProps(ctx, res.ID, map[string]string{zfs.PropInputs: now}); err != nil {
				return "", err
			}
		}
		return res.ID, nil
	}
}

// BuildInputs returns the function Inputs uses to hash a build's inputs:
// the Zockerfile, the context, the args and the base image's ID as last
// observed (tags resolves a tag; an unknown base hashes as its name, and the
// hash settles once the base exists).
func BuildInputs(tags func(ref string) (string, bool)) func(img *manifests.Image) (string, string, error) {
	return func(img *manifests.Image) (string, string, error) {
		b := img.Spec.Build
		file := b.File
		if !filepath.IsAbs(file) {
			file = filepath.Join(b.Context, file)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return "", "", err
		}
		f, err := build.Parse(filepath.Base(file), bytes.NewReader(data))
		if err != nil {
			return "", "", err
		}
		// FROM may name its base through an ARG declared before it, with
		// a default the build args override.
		args := map[string]string{}
		base := ""
		for _, in := range f.Instructions {
			switch in.Keyword {
			case build.Arg:
				k, def, _ := strings.Cut(in.Args[0], "=")
				args[k] = def
			case build.From:
				base = build.Expand(in.Args[0], func(k string) (string, bool) {
					if v, ok := b.Args[k]; ok {
						return v, true
					}
					v, ok := args[k]
					return v, ok
				})
			}
		}
		baseID := base
		if id, ok := tags(base); ok {
			baseID = id
		} else if base != "scratch" && !isImageID(base) {
			// The base is not made yet: the inputs are unknown until it is
			// (the build waits for it, and records its inputs when done).
			return "", base, nil
		}
		h, err := build.InputsHash(b.Context, b.File, b.Args, baseID)
		if err != nil {
			return "", "", err
		}
		return "build:" + h, base, nil
	}
}

func isImageID(s string) bool { return zfs.ValidID(s) == nil }

// Tags returns what the last observation said a tag points to (for
// BuildInputs), without running a command.
func (e *Engine) Tags() func(ref string) (string, bool) {
	return func(ref string) (string, bool) {
		e.lastMu.Lock()
		defer e.lastMu.Unlock()
		if e.lastTags == nil {
			return "", false
		}
		id, ok := e.lastTags[ref]
		return id, ok
	}
}

// logLines writes a build's output to the log, one record per line.
type logLines struct {
	log *slog.Logger
	mu  sync.Mutex
	buf []byte
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.log.Info(strings.TrimRight(string(l.buf[:i]), "\r"))
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

func (l *logLines) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.log.Info(string(l.buf))
		l.buf = nil
	}
}
