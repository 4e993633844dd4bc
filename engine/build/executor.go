package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/image"
)

// Store is what a build needs from the ZFS engine: the images present, a
// temporary dataset cloned from an image (or empty), publishing it as an
// image, and moving a tag. *zfs.Store implements it.
type Store interface {
	Observe(ctx context.Context) (*zfs.State, error)
	NewWork(ctx context.Context, fromID string) (*zfs.Work, error)
	Discard(ctx context.Context, w *zfs.Work)
	Publish(ctx context.Context, w *zfs.Work, id string, cfg zfs.Config, extra map[string]string) error
	Tag(ctx context.Context, tag, id string) error
}

var _ Store = (*zfs.Store)(nil)

// BaseResolver turns FROM's reference (a tag, an image ID, or an Image
// declared in the manifests) into an image ID; "scratch" gives "". A nil
// resolver uses the store's tags and IDs.
type BaseResolver func(ctx context.Context, ref string) (string, error)

// Options are a build's inputs and the parts it runs on.
type Options struct {
	// ContextDir is the build context: COPY reads from it only.
	ContextDir string
	// File is the Zockerfile, relative to ContextDir unless absolute;
	// "" means Zockerfile.
	File string
	// Tag, when set, is pointed at the final image.
	Tag string
	// Args are the --build-arg values; they reach only steps after an ARG
	// declaring them.
	Args map[string]string
	// NoCache runs every step even when its image exists. Image IDs are
	// content addresses, so a step whose image exists keeps that image: the
	// step is re-executed (its commands run) and its result discarded.
	NoCache bool
	// Output receives the progress lines and the RUN steps' output.
	Output       io.Writer
	Store        Store
	Driver       jail.Driver
	BaseResolver BaseResolver
	Log          *slog.Logger
}

// Result is a finished build.
type Result struct {
	// ID is the final image's ID.
	ID string
	// Steps is the number of steps (instructions from FROM on).
	Steps int
	// Executed counts the steps that ran; Cached the ones reused.
	Executed, Cached int
}

// StepError is a failed build step: the file and line, and for RUN the
// command's exit code.
type StepError struct {
	File    string
	Line    int
	Keyword string
	// ExitCode is RUN's exit status (0 when the step failed otherwise).
	ExitCode int
	Err      error
}

func (e *StepError) Error() string {
	if e.ExitCode != 0 {
		return fmt.Sprintf("%s:%d: %s exited with code %d", e.File, e.Line, e.Keyword, e.ExitCode)
	}
	return fmt.Sprintf("%s:%d: %s: %v", e.File, e.Line, e.Keyword, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// hostFiles are copied from the host into the image for RUN steps (name
// resolution, time zone) and removed at commit when the image had none, as
// Zocker did, so that images do not carry the build host's settings.
var hostFiles = []string{"/etc/resolv.conf", "/etc/localtime"}

// builder is one build in progress.
type builder struct {
	opts   Options
	log    *slog.Logger
	out    io.Writer
	ctx    *buildContext
	name   string
	images map[string]bool

	parent string
	cfg    zfs.Config
	// cmdSet is true once CMD appeared in this file (ENTRYPOINT then keeps it).
	cmdSet bool
	// args are the ARGs in scope: name -> value (nil when declared without one).
	args     map[string]*string
	declared map[string]bool
	net      string
	// expandErr is set when a value expanded past maxExpanded.
	expandErr error
}

// maxExpanded bounds one expanded value: `ENV A=$A$A` doubles per line, so a
// few hundred bytes of Zockerfile would otherwise allocate gigabytes while
// merely planning (review L6).
const maxExpanded = 64 << 10

// Build runs a Zockerfile. Every step's ID (its content address) is computed
// first; the steps up to the last one whose image exists are reused, and the
// others run: a data step (RUN, COPY, WORKDIR) on a clone of the image
// before it in ROOT/tmp, published as ROOT/images/<step ID>. Config-only
// steps (ENV, USER, CMD, ARG, ...) copy nothing and make no dataset: their
// config is carried to the next data step, or, when one is the last step,
// published as an O(1) clone. On failure every temporary dataset and build
// jail is removed and no tag moves.
func Build(ctx context.Context, opts Options) (Result, error) {
	if opts.Store == nil {
		return Result{}, errors.New("build: no image store")
	}
	if opts.Output == nil {
		opts.Output = io.Discard
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	bctx, err := openContext(opts.ContextDir)
	if err != nil {
		return Result{}, err
	}
	file := zockerfilePath(bctx.dir, opts.File)
	data, err := readSmallFile(file, maxSmallFile)
	if err != nil {
		return Result{}, fmt.Errorf("build: %w", err)
	}
	zf, err := Parse(filepath.Base(file), bytes.NewReader(data))
	if err != nil {
		return Result{}, err
	}
	st, err := opts.Store.Observe(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("build %s: %w", file, err)
	}
	b := &builder{opts: opts, log: log, out: opts.Output, ctx: bctx, name: zf.Name,
		images: map[string]bool{}, args: map[string]*string{}, declared: map[string]bool{}, net: jail.NetNone}
	for _, im := range st.Images {
		// Only images this host built are cache hits: a pulled or loaded
		// image's ID is its source's word, not a digest of its inputs (H2).
		if im.Provenance() == zfs.OriginBuild {
			b.images[im.ID] = true
		}
	}
	res, err := b.run(ctx, zf, st)
	if err != nil {
		return res, err
	}
	for _, k := range sortedKeys(opts.Args) {
		if !b.declared[k] {
			fmt.Fprintf(b.out, "warning: --build-arg %s was not consumed: no ARG %s in %s\n", k, k, zf.Name)
		}
	}
	if opts.Tag != "" && st.Tags[opts.Tag] != res.ID {
		// One zfs set: the tag moves atomically, and only after a build that
		// succeeded. A tag already there is not set again, so that a
		// rebuild with nothing changed costs one command (the observation).
		if err := opts.Store.Tag(ctx, opts.Tag, res.ID); err != nil {
			return res, fmt.Errorf("build %s: %w", file, err)
		}
	}
	if opts.Tag != "" {
		fmt.Fprintf(b.out, "Successfully built %s and tagged %s\n", image.Short(res.ID), opts.Tag)
	} else {
		fmt.Fprintf(b.out, "Successfully built %s\n", image.Short(res.ID))
	}
	return res, nil
}

func (b *builder) run(ctx context.Context, zf *File, st *zfs.State) (Result, error) {
	var res Result
	first := 0
	for i, in := range zf.Instructions {
		if in.Keyword == From {
			first = i
			break
		}
		// ARGs before FROM are in scope for FROM only (as in Dockerfiles).
		b.declareArg(in)
	}
	steps := zf.Instructions[first:] // Parse guarantees steps[0] is the only FROM
	res.Steps = len(steps)
	if err := b.from(ctx, steps[0], st); err != nil {
		return res, err
	}
	b.args, b.declared = map[string]*string{}, b.declaredCopy()
	base := b.parent

	// Every step's ID is known before anything runs (IDs depend on inputs
	// only), so a refused COPY fails before any work, and the cache is the
	// last step whose image exists: its ID covers every step before it.
	type planned struct {
		in Instruction
		s  step
		id string
	}
	plan := make([]planned, 0, len(steps)-1)
	for _, in := range steps[1:] {
		s, err := b.prepare(in)
		if err == nil {
			err = b.expandErr
		}
		if err != nil {
			return res, &StepError{File: b.name, Line: in.Line, Keyword: in.Keyword, Err: err}
		}
		id := s.key.ID()
		plan = append(plan, planned{in: in, s: s, id: id})
		b.parent, b.cfg = id, s.cfg
		if s.after != nil {
			s.after()
			if b.expandErr != nil {
				return res, &StepError{File: b.name, Line: in.Line, Keyword: in.Keyword, Err: b.expandErr}
			}
		}
	}
	if len(plan) == 0 && base == "" {
		return res, &StepError{File: b.name, Line: steps[0].Line, Keyword: From, Err: errors.New("nothing to build: FROM scratch and no other step")}
	}
	cachedUpTo := -1
	if !b.opts.NoCache {
		for i := len(plan) - 1; i >= 0; i-- {
			if b.images[plan[i].id] {
				cachedUpTo = i
				break
			}
		}
	}

	fmt.Fprintf(b.out, "Step 1/%d : %s\n", len(steps), steps[0].Original)
	if base == "" {
		fmt.Fprintln(b.out, "---> scratch")
	} else {
		fmt.Fprintf(b.out, "---> %s\n", image.Short(base))
	}
	// data is the image whose file system the current step starts from: a
	// config-only step changes no data, so it is materialized (a clone of
	// data, published under its own ID) only when it is the last step; the
	// next data step clones data directly.
	data := base
	for i, p := range plan {
		fmt.Fprintf(b.out, "Step %d/%d : %s\n", i+2, len(steps), p.in.Original)
		if i <= cachedUpTo {
			if b.images[p.id] {
				data = p.id
			}
			fmt.Fprintf(b.out, "---> cached %s\n", image.Short(p.id))
			res.Cached++
			continue
		}
		start := time.Now()
		if p.s.data != nil || i == len(plan)-1 {
			if err := b.execute(ctx, p.in, p.id, data, p.s); err != nil {
				return res, err
			}
			data = p.id
		}
		res.Executed++
		fmt.Fprintf(b.out, "---> %s (%.1fs)\n", image.Short(p.id), time.Since(start).Seconds())
	}
	res.ID = base
	if len(plan) > 0 {
		res.ID = plan[len(plan)-1].id
	}
	return res, nil
}

func (b *builder) declaredCopy() map[string]bool {
	m := map[string]bool{}
	for k, v := range b.declared {
		m[k] = v
	}
	return m
}

func (b *builder) lookup(name string) (string, bool) {
	if v, ok := b.cfg.Env[name]; ok {
		return v, true
	}
	if v := b.args[name]; v != nil {
		return *v, true
	}
	return "", false
}

func (b *builder) expand(s string) string {
	v := Expand(s, b.lookup)
	if len(v) > maxExpanded {
		if b.expandErr == nil {
			b.expandErr = fmt.Errorf("a value expands to more than %d bytes", maxExpanded)
		}
		return ""
	}
	return v
}

func (b *builder) declareArg(in Instruction) {
	if in.Keyword != Arg {
		return
	}
	name, def, hasDef := strings.Cut(in.Args[0], "=")
	b.declared[name] = true
	if v, ok := b.opts.Args[name]; ok {
		b.args[name] = &v
		return
	}
	if hasDef {
		v := b.expand(def)
		b.args[name] = &v
		return
	}
	b.args[name] = nil
}

func (b *builder) from(ctx context.Context, in Instruction, st *zfs.State) error {
	ref := b.expand(in.Args[0])
	fail := func(err error) error {
		return &StepError{File: b.name, Line: in.Line, Keyword: From, Err: err}
	}
	if ref == "scratch" {
		b.parent, b.cfg = "", zfs.Config{}
		return nil
	}
	var id string
	var err error
	if b.opts.BaseResolver != nil {
		id, err = b.opts.BaseResolver(ctx, ref)
	} else {
		id, err = st.Resolve(ref)
	}
	if err != nil {
		return fail(fmt.Errorf("base image %s: %w", ref, err))
	}
	im, ok := st.Image(id)
	if !ok {
		return fail(fmt.Errorf("base image %s (%s): %w", ref, id, zfs.ErrNotFound))
	}
	if im.ConfigErr != nil {
		return fail(fmt.Errorf("base image %s: %w", ref, im.ConfigErr))
	}
	b.parent, b.cfg = id, cloneConfig(im.Config)
	b.cfg.Inputs = ""
	return nil
}

// step is a prepared step: its key, the config after it, and what it does
// to the file system (nil for config-only steps).
type step struct {
	key   stepKey
	cfg   zfs.Config
	data  func(ctx context.Context, root string) error
	after func()
}

// prepare computes a step's key and resulting config without touching any
// dataset, so that a cached step costs no command.
func (b *builder) prepare(in Instruction) (step, error) {
	cfg := cloneConfig(b.cfg)
	cfg.Parent = b.parent
	s := step{key: stepKey{Parent: b.parent}}
	var args []string
	switch in.Keyword {
	case Arg:
		args = in.Args
		s.after = func() { b.declareArg(in) }
	case Env, Label:
		m := map[string]string{}
		for i := 0; i+1 < len(in.Args); i += 2 {
			k, v := in.Args[i], b.expand(in.Args[i+1])
			m[k] = v
			args = append(args, k, v)
		}
		if in.Keyword == Env {
			cfg.Env = mergeMap(cfg.Env, m)
		} else {
			cfg.Labels = mergeMap(cfg.Labels, m)
		}
	case User:
		args = []string{b.expand(in.Args[0])}
		cfg.User = args[0]
	case Cmd, Entrypoint:
		args = commandLine(in)
		if in.Keyword == Cmd {
			cfg.Cmd = args
			s.after = func() { b.cmdSet = true }
		} else {
			cfg.Entrypoint = args
			if !b.cmdSet {
				cfg.Cmd = nil // Docker: a new ENTRYPOINT drops the base image's CMD
			}
		}
	case Volume, Expose:
		for _, a := range in.Args {
			args = append(args, b.expand(a))
		}
		if in.Keyword == Volume {
			cfg.Volumes = appendNew(cfg.Volumes, args...)
		} else {
			cfg.ExposedPorts = appendNew(cfg.ExposedPorts, args...)
		}
	case Net:
		args = in.Args
		s.after = func() { b.net = in.Args[0] }
	case Workdir:
		dir := b.expand(in.Args[0])
		if !path.IsAbs(dir) {
			base := cfg.Workdir
			if base == "" {
				base = "/"
			}
			dir = path.Join(base, dir)
		}
		dir = path.Clean(dir)
		args = []string{dir}
		cfg.Workdir = dir
		s.data = func(_ context.Context, root string) error {
			if _, err := inRoot(root, dir+"/.", true, 0, 0); err != nil {
				return fmt.Errorf("create %s: %w", dir, err)
			}
			return nil
		}
	case Run:
		args = commandLine(in)
		for _, k := range sortedKeys(b.args) {
			if v := b.args[k]; v != nil {
				s.key.Args = append(s.key.Args, k+"="+*v)
			}
		}
		argv, env, user, wd, net := args, b.runEnv(cfg), cfg.User, cfg.Workdir, b.net
		s.data = func(ctx context.Context, root string) error {
			return b.runStep(ctx, root, in, argv, env, user, wd, net)
		}
	case Copy:
		var err error
		s.data, s.key.Files, args, err = b.prepareCopy(in, cfg.Workdir)
		if err != nil {
			return s, err
		}
	default:
		return s, fmt.Errorf("instruction %s is not supported here", in.Keyword)
	}
	chown := in
	chown.Chown = b.expand(in.Chown)
	s.key.Instruction = normalize(chown, args)
	s.cfg = cfg
	return s, nil
}

// commandLine is RUN's, CMD's or ENTRYPOINT's argv: the exec form as
// written, the shell form run by /bin/sh -c.
func commandLine(in Instruction) []string {
	if in.Exec {
		return append([]string(nil), in.Args...)
	}
	return []string{"/bin/sh", "-c", in.Args[0]}
}

// runEnv is a RUN step's environment: the ARGs in scope, overridden by ENV.
func (b *builder) runEnv(cfg zfs.Config) []string {
	m := map[string]string{}
	for k, v := range b.args {
		if v != nil {
			m[k] = *v
		}
	}
	for k, v := range cfg.Env {
		m[k] = v
	}
	var env []string
	for _, k := range sortedKeys(m) {
		env = append(env, k+"="+m[k])
	}
	return env
}

// execute makes step id: a clone of image from in ROOT/tmp, the step's data
// change, then publish. The temporary dataset is destroyed on any failure.
func (b *builder) execute(ctx context.Context, in Instruction, id, from string, s step) (err error) {
	fail := func(err error) error {
		var se *StepError
		if errors.As(err, &se) {
			return err
		}
		return &StepError{File: b.name, Line: in.Line, Keyword: in.Keyword, Err: err}
	}
	w, err := b.opts.Store.NewWork(ctx, from)
	if err != nil {
		return fail(err)
	}
	published := false
	defer func() {
		if !published {
			b.opts.Store.Discard(context.WithoutCancel(ctx), w)
		}
	}()
	if s.data != nil {
		if err := s.data(ctx, w.Mountpoint); err != nil {
			return fail(err)
		}
	}
	// The recorded parent is the image the data was cloned from: config-only
	// steps in between have no dataset.
	cfg := s.cfg
	cfg.Parent = from
	err = b.opts.Store.Publish(ctx, w, id, cfg, map[string]string{zfs.PropOrigin: zfs.OriginBuild})
	switch {
	case errors.Is(err, zfs.ErrExists):
		// Same inputs, same ID: an image made by --no-cache's rerun or by a
		// concurrent build is kept; Publish discarded our work.
		published = true
	case err != nil:
		return fail(err)
	default:
		published = true
	}
	b.images[id] = true
	b.log.Info("built step", "image", id, "action", "build", "line", in.Line)
	return nil
}

func cloneConfig(c zfs.Config) zfs.Config {
	c.Cmd = append([]string(nil), c.Cmd...)
	c.Entrypoint = append([]string(nil), c.Entrypoint...)
	c.Volumes = append([]string(nil), c.Volumes...)
	c.ExposedPorts = append([]string(nil), c.ExposedPorts...)
	c.Env = mergeMap(nil, c.Env)
	c.Labels = mergeMap(nil, c.Labels)
	if len(c.Cmd) == 0 {
		c.Cmd = nil
	}
	if len(c.Entrypoint) == 0 {
		c.Entrypoint = nil
	}
	if len(c.Volumes) == 0 {
		c.Volumes = nil
	}
	if len(c.ExposedPorts) == 0 {
		c.ExposedPorts = nil
	}
	return c
}

func mergeMap(base, over map[string]string) map[string]string {
	if len(base) == 0 && len(over) == 0 {
		return nil
	}
	m := make(map[string]string, len(base)+len(over))
	for k, v := range base {
		m[k] = v
	}
	for k, v := range over {
		m[k] = v
	}
	return m
}

func appendNew(list []string, vals ...string) []string {
	for _, v := range vals {
		if !contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
