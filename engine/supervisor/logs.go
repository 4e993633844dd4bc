package supervisor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
)

// maxLine bounds one log line: a longer one is split, so a command writing
// without newlines cannot grow the supervisor's memory.
const maxLine = 64 << 10

// reopenEvery is how often a log writer whose file could not be opened
// (a full or read-only disk during a rotation) tries again.
const reopenEvery = time.Second

// logWriter appends lines to a log file and rotates it at a size cap:
// log -> log.1 -> ... -> log.Keep, the oldest dropped.
//
// A log that cannot be written (the disk is full, the file system went
// read-only) never stops the container: the line is dropped and counted,
// the pipes keep being drained, and writing resumes by itself once there
// is room again (a closed file is reopened at most every reopenEvery).
type logWriter struct {
	mu   sync.Mutex
	path string
	max  int64
	keep int
	f    *os.File
	size int64
	// closed: Close was called; nothing is written or reopened any more.
	closed bool
	// lastOpen is the last attempt to open the file while f is nil.
	lastOpen time.Time
	// dropped counts the lines not written since the writer was opened;
	// lastErr is why the last line was dropped, nil once a write succeeds.
	dropped int64
	lastErr error
	// onDrop (may be nil) is called outside the lock after a line was
	// dropped or after writing recovered, with the count and the error
	// (nil on recovery); the supervisor puts them in its status.
	onDrop func(dropped int64, err error)
	now    func() time.Time
}

func openLog(path string, max int64, keep int) (*logWriter, error) {
	w := &logWriter{path: path, max: max, keep: keep, now: time.Now}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *logWriter) open() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("open log %s: %w", w.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat log %s: %w", w.path, err)
	}
	w.f, w.size = f, st.Size()
	return nil
}

// rotatedPath returns the name of the i-th rotated file (0 is the current one).
func rotatedPath(path string, i int) string {
	if i == 0 {
		return path
	}
	return path + "." + strconv.Itoa(i)
}

// rotate shifts the files and opens a new log. When that fails, w.f stays
// nil and writeLine retries the open later.
func (w *logWriter) rotate() error {
	cerr := w.f.Close()
	w.f = nil
	if cerr != nil {
		return fmt.Errorf("close log %s: %w", w.path, cerr)
	}
	for i := w.keep - 1; i >= 0; i-- {
		err := os.Rename(rotatedPath(w.path, i), rotatedPath(w.path, i+1))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			w.lastOpen = w.now()
			// Keep appending to the current file rather than lose lines.
			if oerr := w.open(); oerr != nil {
				return oerr
			}
			return fmt.Errorf("rotate log %s: %w", w.path, err)
		}
	}
	w.lastOpen = w.now()
	return w.open()
}

// writeLine writes one complete line (ending in \n), rotating first when it
// would take the file past the cap. When the line cannot be written it is
// dropped and counted, and the error is returned; the caller goes on.
func (w *logWriter) writeLine(line []byte) error {
	w.mu.Lock()
	err := w.writeLocked(line)
	recovered := err == nil && w.lastErr != nil
	if err != nil {
		w.dropped++
	}
	if err != nil || recovered {
		w.lastErr = err
	}
	dropped, onDrop := w.dropped, w.onDrop
	w.mu.Unlock()
	if onDrop != nil && (err != nil || recovered) {
		onDrop(dropped, err)
	}
	return err
}

func (w *logWriter) writeLocked(line []byte) error {
	if w.closed {
		return errors.New("log closed")
	}
	if w.f == nil {
		if w.now().Sub(w.lastOpen) < reopenEvery && w.lastErr != nil {
			return w.lastErr
		}
		w.lastOpen = w.now()
		if err := w.open(); err != nil {
			return err
		}
	}
	if w.size > 0 && w.size+int64(len(line)) > w.max {
		if err := w.rotate(); err != nil {
			if w.f == nil {
				return err
			}
			// The file is open again (unrotated): write on into it.
		}
	}
	n, err := w.f.Write(line)
	w.size += int64(n)
	if err != nil {
		return fmt.Errorf("write log %s: %w", w.path, err)
	}
	return nil
}

func (w *logWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// formatLine renders one log line: RFC 3339 UTC time with microseconds, the
// stream, the text.
func formatLine(t time.Time, stream string, text []byte) []byte {
	b := make([]byte, 0, len(text)+40)
	b = t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	b = append(b, ' ')
	b = append(b, stream...)
	b = append(b, ' ')
	b = append(b, text...)
	return append(b, '\n')
}

// pumpBuffer is the read buffer of each output stream. A line longer than
// that is gathered, up to maxLine, in a buffer that is garbage once the line
// is written: a read buffer of maxLine per stream kept 128 KB in every
// supervisor for its whole life. maxLine is a multiple of it, so long lines
// are split exactly every maxLine bytes.
const pumpBuffer = 4 << 10

// pump copies r to w line by line, each line timestamped, until r ends.
// A line the log cannot take is dropped (w counts it) and pumping goes on:
// a command must never block on, or die of, a full log disk.
func pump(r io.Reader, w *logWriter, stream string, now func() time.Time) error {
	br := bufio.NewReaderSize(r, pumpBuffer)
	var long []byte // the part read so far of a line longer than pumpBuffer
	for {
		line, err := br.ReadSlice('\n')
		if full := errors.Is(err, bufio.ErrBufferFull); full || long != nil {
			// ReadSlice hands back the whole buffer when it holds no newline.
			long = append(long, line...)
			if full && len(long) < maxLine {
				continue
			}
			line, long = long, nil
		}
		if len(line) > 0 {
			text := bytes.TrimSuffix(line, []byte("\n"))
			_ = w.writeLine(formatLine(now(), stream, text))
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF), errors.Is(err, os.ErrClosed):
			return nil
		default:
			return err
		}
	}
}

// Tail returns the last n lines of the log at path, reading back through
// the rotated files (path.1, path.2, ...) when the current one holds fewer.
// A missing log is ErrNotFound; n <= 0 returns every line kept.
func Tail(path string, n int) ([]string, error) {
	return tailUpTo(path, n, -1)
}

// tailUpTo is Tail with the current file read only up to limit bytes
// (-1: all), so that Follow can continue exactly where the tail ended.
func tailUpTo(path string, n int, limit int64) ([]string, error) {
	var out []string // newest first
	found := false
	for i := 0; ; i++ {
		p := rotatedPath(path, i)
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			if i == 0 {
				continue // rotated files may exist while the new log is not created yet
			}
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read log %s: %w", p, err)
		}
		found = true
		end := int64(-1)
		if i == 0 {
			end = limit
		}
		lines, err := lastLines(f, n-len(out), end)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read log %s: %w", p, err)
		}
		for j := len(lines) - 1; j >= 0; j-- {
			out = append(out, lines[j])
		}
		if n > 0 && len(out) >= n {
			break
		}
	}
	if !found {
		return nil, fmt.Errorf("log %s: %w", path, ErrNotFound)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// lastLines returns up to n (all when n <= 0) complete lines ending at or
// before byte end of f (-1: the end of the file), oldest first. It reads
// backwards in blocks, so tailing a 10 MiB log reads only its end.
func lastLines(f *os.File, n int, end int64) ([]string, error) {
	if end < 0 {
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		end = st.Size()
	}
	const block = 32 << 10
	var buf []byte // the bytes from pos to end
	pos := end
	for pos > 0 {
		size := int64(block)
		if pos < size {
			size = pos
		}
		pos -= size
		chunk := make([]byte, size)
		if _, err := f.ReadAt(chunk, pos); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		buf = append(chunk, buf...)
		// n+1 newlines guarantee n complete lines after the first one.
		if n > 0 && bytes.Count(buf, []byte("\n")) > n {
			break
		}
	}
	// A writer may be in the middle of a line: drop a trailing partial one.
	if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
		buf = buf[:i]
	} else {
		return nil, nil
	}
	lines := bytes.Split(buf, []byte("\n"))
	if pos > 0 {
		lines = lines[1:] // the first is cut by the block boundary
	}
	if n > 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = string(l)
	}
	return out, nil
}

// followPoll is how often Follow looks for new lines.
const followPoll = 250 * time.Millisecond

// Follow writes the last n lines of the log at path to w (all when n < 0,
// none when n == 0), then every line appended after them, across rotations,
// until ctx ends. It polls: logs -f is for people, a quarter second is soon
// enough, and polling behaves the same on Linux and FreeBSD.
func Follow(ctx context.Context, path string, n int, w io.Writer) error {
	return follow(ctx, path, n, w, followPoll)
}

// logMissing, when set (by tests), is called each time follow finds no log
// and waits for it.
var logMissing func()

func follow(ctx context.Context, path string, n int, w io.Writer, poll time.Duration) error {
	f, err := os.Open(path)
	for errors.Is(err, os.ErrNotExist) {
		// The supervisor creates the log when it starts: wait for it.
		if logMissing != nil {
			logMissing()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
		f, err = os.Open(path)
	}
	if err != nil {
		return fmt.Errorf("follow log %s: %w", path, err)
	}
	defer func() { f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("follow log %s: %w", path, err)
	}
	// Start at the last complete line, so the tail and what follows meet exactly.
	offset, err := lastNewline(f, st.Size())
	if err != nil {
		return fmt.Errorf("follow log %s: %w", path, err)
	}
	if n != 0 {
		tailN := n
		if n < 0 {
			tailN = 0
		}
		lines, err := tailUpTo(path, tailN, offset)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		for _, l := range lines {
			if _, err := fmt.Fprintln(w, l); err != nil {
				return err
			}
		}
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return fmt.Errorf("follow log %s: %w", path, err)
	}
	br := bufio.NewReaderSize(f, maxLine)
	var partial []byte
	for {
		// Copy every complete line available now.
		for {
			line, err := br.ReadSlice('\n')
			if err == nil {
				if _, werr := w.Write(append(partial, line...)); werr != nil {
					return werr
				}
				partial = partial[:0]
				continue
			}
			partial = append(partial, line...)
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if !errors.Is(err, io.EOF) {
				return fmt.Errorf("follow log %s: %w", path, err)
			}
			break
		}
		// Has the log been rotated under us? Then the open file is log.1:
		// it was read to its end above; go on with the new log.
		if cur, err := os.Stat(path); err == nil {
			if old, err := f.Stat(); err == nil && !os.SameFile(cur, old) {
				nf, err := os.Open(path)
				if err == nil {
					if len(partial) > 0 {
						if _, werr := w.Write(append(partial, '\n')); werr != nil {
							return werr
						}
						partial = partial[:0]
					}
					f.Close()
					f = nf
					br.Reset(f)
					continue
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

// lastNewline returns the offset just after the last \n before size.
func lastNewline(f *os.File, size int64) (int64, error) {
	const block = 4096
	for end := size; end > 0; {
		start := end - block
		if start < 0 {
			start = 0
		}
		buf := make([]byte, end-start)
		if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}
