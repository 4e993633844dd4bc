package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
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
		now, _, err := build.Inputs(b, func(ref string) (string, bool) { id, ok := st.Tags[ref]; return id, ok })
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
