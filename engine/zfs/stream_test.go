package zfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

const (
	fullGUID  = 12771105072815002106
	cloneGUID = 18319754278394099398
)

func readStream(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/streams/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// check runs a stream through a checker and returns the bytes passed on
// and the error.
func check(b []byte, want StreamWant) ([]byte, error) {
	var out bytes.Buffer
	_, err := io.Copy(&out, NewStreamChecker(bytes.NewReader(b), want))
	return out.Bytes(), err
}

func TestStreamCheckerAcceptsImageStreams(t *testing.T) {
	full := readStream(t, "full.zs")
	out, err := check(full, StreamWant{ToGUID: fullGUID, Snapshot: "image"})
	if err != nil || !bytes.Equal(out, full) {
		t.Fatalf("full stream: err %v, passed %d of %d bytes", err, len(out), len(full))
	}
	clone := readStream(t, "clone.zs")
	out, err = check(clone, StreamWant{ToGUID: cloneGUID, FromGUID: fullGUID, Snapshot: "image"})
	if err != nil || !bytes.Equal(out, clone) {
		t.Fatalf("clone stream: err %v, passed %d of %d bytes", err, len(out), len(clone))
	}
	h, err := ReadStreamHeader(bytes.NewReader(clone), StreamWant{FromGUID: fullGUID})
	if err != nil || h.ToGUID != cloneGUID || h.FromGUID != fullGUID || !strings.HasSuffix(h.ToName, "/child@image") {
		t.Fatalf("header %+v, %v", h, err)
	}
}

// TestSecurityC1ReceivedProperties: a stream made with zfs send -p (or -R)
// carries the dataset's properties (here mountpoint=/tmp/secstor-x); not one
// byte of it may reach zfs receive.
func TestSecurityC1ReceivedProperties(t *testing.T) {
	for _, name := range []string{"props.zs", "recursive.zs"} {
		out, err := check(readStream(t, name), StreamWant{})
		if !errors.Is(err, ErrStreamRefused) || !strings.Contains(err.Error(), "compound stream") {
			t.Errorf("%s: err %v, want a refused compound stream", name, err)
		}
		if len(out) != 0 {
			t.Errorf("%s: %d bytes passed on before the refusal", name, len(out))
		}
	}
}

func TestSecurityC1StreamRefusals(t *testing.T) {
	full := readStream(t, "full.zs")
	clone := readStream(t, "clone.zs")
	le := binary.LittleEndian
	mod := func(b []byte, f func(b []byte)) []byte {
		c := append([]byte(nil), b...)
		f(c)
		return c
	}
	cases := []struct {
		name   string
		stream []byte
		want   StreamWant
		msg    string
	}{
		{"wrong toguid", full, StreamWant{ToGUID: 42}, "the record says 42"},
		{"incremental where full recorded", clone, StreamWant{ToGUID: cloneGUID}, "where a full stream is recorded"},
		{"wrong base", clone, StreamWant{ToGUID: cloneGUID, FromGUID: 7}, "the parent's is 7"},
		{"snapshot name", full, StreamWant{Snapshot: "other"}, "want @other"},
		{"not a stream", []byte(strings.Repeat("x", 400)), StreamWant{}, "bad magic"},
		{"empty", nil, StreamWant{}, "empty stream"},
		{"truncated", full[:len(full)-100], StreamWant{}, "END"},
		{"trailing data", append(append([]byte(nil), full...), 'x'), StreamWant{}, "data after the END"},
		{"two streams", append(append([]byte(nil), full...), full...), StreamWant{}, "data after the END"},
		{"nvlist payload", mod(full, func(b []byte) { le.PutUint32(b[4:], 64) }), StreamWant{}, "nvlist payload"},
		{"raw feature", mod(full, func(b []byte) { le.PutUint64(b[16:], 1|featureRaw<<2) }), StreamWant{}, "refused"},
		{"unknown feature", mod(full, func(b []byte) { le.PutUint64(b[16:], 1|1<<29<<2) }), StreamWant{}, "unknown stream feature"},
		{"volume", mod(full, func(b []byte) { le.PutUint32(b[32:], 3) }), StreamWant{}, "objset type 3"},
		{"unknown record", mod(full, func(b []byte) { le.PutUint32(b[drrRecordSize:], 77) }), StreamWant{}, "unknown record type 77"},
		{"second begin", mod(full, func(b []byte) { le.PutUint32(b[drrRecordSize:], drrBegin) }), StreamWant{}, "second BEGIN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := check(tc.stream, tc.want)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err %v, want %q", err, tc.msg)
			}
			if bytes.Equal(out, tc.stream) && len(out) > 0 && !strings.Contains(tc.msg, "after the END") {
				t.Fatalf("whole stream passed on")
			}
		})
	}
}

// TestStreamCheckerBigEndian: a stream from a big-endian sender is read in
// its own byte order.
func TestStreamCheckerBigEndian(t *testing.T) {
	var b [drrRecordSize]byte
	be := binary.BigEndian
	be.PutUint64(b[8:], drrBackupMagic)
	be.PutUint64(b[16:], dmuSubstream)
	be.PutUint32(b[32:], dmuOSTZFS)
	be.PutUint64(b[40:], 99)
	copy(b[56:], "p/x@image")
	var end [drrRecordSize]byte
	be.PutUint32(end[0:], drrEnd)
	be.PutUint64(end[8+32:], 99)
	s := append(b[:], end[:]...)
	if out, err := check(s, StreamWant{ToGUID: 99, Snapshot: "image"}); err != nil || len(out) != len(s) {
		t.Fatalf("err %v, %d bytes", err, len(out))
	}
}

// TestSecurityM3RedactedZFSError: a failed clone's go-zfs error carries the
// command line with -o zocker:spec=...; the message that reaches the log and
// /status has the value replaced, errors.Is still sees the cause.
func TestSecurityM3RedactedZFSError(t *testing.T) {
	spec := `{"image":"pg","env":{"POSTGRES_PASSWORD":"hmac-sha256:abc"}}`
	cause := errors.New(`exit status 1: "/sbin/zfs clone -o zocker:spec={\"image\":\"pg\",\"env\":{\"POSTGRES_PASSWORD\":\"hmac-sha256:abc\"}} p/i@image p/c" => boom`)
	err := redactValues(cause, map[string]string{PropSpec: spec}, PropSpec)
	if strings.Contains(err.Error(), "POSTGRES") || !strings.Contains(err.Error(), "<redacted>") || !errors.Is(err, cause) {
		t.Fatalf("redacted: %v", err)
	}
}

// FuzzStreamChecker: any input is either passed through whole or refused,
// never a panic, and nothing past a refused record header is passed on.
func FuzzStreamChecker(f *testing.F) {
	for _, name := range []string{"full.zs", "clone.zs", "props.zs"} {
		b, err := os.ReadFile("testdata/streams/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := check(b, StreamWant{})
		if err == nil && !bytes.Equal(out, b) {
			t.Fatalf("accepted but passed %d of %d bytes", len(out), len(b))
		}
		if len(out) > len(b) {
			t.Fatalf("passed more than read")
		}
	})
}
