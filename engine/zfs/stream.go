package zfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The zfs send stream format, as far as this package checks it. A stream is
// a sequence of dmu_replay_record_t (312 bytes each, in the sender's byte
// order, found out from the magic) each followed by a payload whose length
// depends on the record type (OpenZFS include/sys/zfs_ioctl.h; zfs-fuse and
// illumos use the same layout with fewer fields, the later ones being zero
// padding there):
//
//	uint32 drr_type; uint32 drr_payloadlen; union drr_u (304 bytes)
//	drr_begin: magic, versioninfo, creation_time (uint64); objset type,
//	           flags (uint32); toguid, fromguid (uint64); toname[256]
//
// versioninfo's low two bits say SUBSTREAM (one dataset's snapshot) or
// COMPOUNDSTREAM: the wrapper `zfs send -R`, `-p` and `-b` emit, whose BEGIN
// payload is a packed nvlist holding the datasets' properties, followed by
// one substream per snapshot. Bits 2..31 are feature flags.
const (
	drrRecordSize  = 312
	drrBackupMagic = 0x2F5bacbac

	drrBegin          = 0
	drrObject         = 1
	drrFreeObjects    = 2
	drrWrite          = 3
	drrFree           = 4
	drrEnd            = 5
	drrWriteByRef     = 6
	drrSpill          = 7
	drrWriteEmbedded  = 8
	drrObjectRange    = 9
	drrRedact         = 10
	dmuSubstream      = 1
	dmuCompoundStream = 2
	dmuOSTZFS         = 2 // dmu_objset_type_t DMU_OST_ZFS: a filesystem

	featureDedup     = 1 << 0
	featureDedupProp = 1 << 1
	featureResuming  = 1 << 20
	featureRedacted  = 1 << 21
	featureRaw       = 1 << 24
	featureHolds     = 1 << 26
	// featureKnown are the OpenZFS feature bits (DMU_BACKUP_FEATURE_MASK
	// plus the dedup ones of older senders); anything else is refused.
	featureKnown = featureDedup | featureDedupProp | 1<<2 | 1<<16 | 1<<17 | 1<<19 |
		featureResuming | featureRedacted | 1<<22 | 1<<23 | featureRaw | 1<<25 | featureHolds | 1<<27
	// featureRefused carry state of their own: a resume token, a redaction
	// list, encryption keys (raw: the dataset would keep the sender's key
	// and encryption properties), holds; dedup streams (zfs send -D) rebuild
	// data from earlier records (WRITE_BYREF): a small stream, large data.
	featureRefused = featureDedup | featureDedupProp | featureResuming | featureRedacted | featureRaw | featureHolds

	// maxPayload bounds one record's payload: the largest ZFS block (16 MiB)
	// plus room; a larger length is a corrupt or hostile stream.
	maxPayload = 16<<20 + 4096
)

// StreamRecordSize is the size of one record header: what ReadStreamHeader
// needs to see the BEGIN record.
const StreamRecordSize = drrRecordSize

// ErrStreamRefused is returned (wrapped) by a StreamChecker for a stream
// that is malformed or carries more than one filesystem snapshot's data.
// Compare with errors.Is.
var ErrStreamRefused = errors.New("zfs stream refused")

// StreamHeader is what a stream's BEGIN record says.
type StreamHeader struct {
	ToGUID   uint64
	FromGUID uint64
	// ToName is the snapshot's name on the sending side (pool/ds@snap).
	ToName string
	// Features are the feature flags of versioninfo.
	Features uint64
}

// StreamWant is what a stream must be to be received as an image.
type StreamWant struct {
	// ToGUID is the GUID of the snapshot the stream must carry; 0 accepts any
	// (only for callers that have no record to compare with).
	ToGUID uint64
	// FromGUID is the GUID of the snapshot an incremental stream must be
	// based on; 0 requires a full stream.
	FromGUID uint64
	// Snapshot is the snapshot name (after the @) the stream must carry;
	// "" accepts any.
	Snapshot string
}

// StreamChecker is an io.Reader that passes a zfs send stream through only
// after checking each record header, so that `zfs receive` reading from it
// never gets a byte of a stream this package would refuse. It checks:
//
//   - the first record is a BEGIN of a SUBSTREAM: never a compound stream
//     (made by `zfs send -p`, `-R`, `-b` or a replication send), which is
//     how properties (mountpoint, canmount, setuid, sharenfs, zocker:*, ...)
//     and child datasets travel; no BEGIN payload (nvlist: resume token,
//     redaction snapshots, encryption keys); no raw, resuming, redacted or
//     holds feature, no unknown feature bit; a filesystem, not a volume;
//   - toguid, fromguid and the snapshot name are the ones wanted;
//   - every later record is a known data record with a bounded payload,
//     the stream ends with END for that toguid, and nothing follows it.
//
// Once an error is returned every later Read returns it; the caller must
// treat whatever `zfs receive` made from the bytes before as garbage and
// destroy it. The checker does not verify the fletcher-4 checksums: zfs
// receive does.
//
// It is the one check for streams from elsewhere: pull, and load of a saved
// archive, use it.
type StreamChecker struct {
	r    io.Reader
	want StreamWant
	// Header is the BEGIN record, set once it was read and accepted.
	Header StreamHeader
	order  binary.ByteOrder
	// pending are checked bytes not yet handed out.
	pending []byte
	// left is the payload of the current record still to pass through.
	left int64
	done bool // END seen
	err  error
	hdr  [drrRecordSize]byte
}

// NewStreamChecker returns a checker reading the stream from r.
func NewStreamChecker(r io.Reader, want StreamWant) *StreamChecker {
	return &StreamChecker{r: r, want: want}
}

// Err is the reason the stream was refused (nil while it is acceptable).
func (c *StreamChecker) Err() error { return c.err }

// Read implements io.Reader.
func (c *StreamChecker) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for len(c.pending) == 0 && c.left == 0 {
		if c.done {
			// Nothing may follow END: a second stream would be left
			// unread by zfs receive and unchecked by us.
			var b [1]byte
			n, err := io.ReadFull(c.r, b[:])
			if n > 0 {
				return 0, c.fail("data after the END record")
			}
			if err == io.EOF {
				return 0, io.EOF
			}
			return 0, c.failRead(err)
		}
		if err := c.next(); err != nil {
			return 0, err
		}
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if err == io.EOF {
		if c.left > 0 {
			return n, c.fail("stream ends inside a record")
		}
		err = nil
	}
	if err != nil {
		return n, c.failRead(err)
	}
	return n, nil
}

func (c *StreamChecker) fail(format string, args ...any) error {
	c.err = fmt.Errorf("%w: %s", ErrStreamRefused, fmt.Sprintf(format, args...))
	return c.err
}

func (c *StreamChecker) failRead(err error) error {
	c.err = fmt.Errorf("read zfs stream: %w", err)
	return c.err
}

// next reads and checks one record header and queues it.
func (c *StreamChecker) next() error {
	first := c.order == nil
	if _, err := io.ReadFull(c.r, c.hdr[:]); err != nil {
		if err == io.EOF && first {
			return c.fail("empty stream")
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return c.fail("stream ends without an END record")
		}
		return c.failRead(err)
	}
	h := c.hdr[:]
	if first {
		switch {
		case binary.LittleEndian.Uint64(h[8:]) == drrBackupMagic:
			c.order = binary.LittleEndian
		case binary.BigEndian.Uint64(h[8:]) == drrBackupMagic:
			c.order = binary.BigEndian
		default:
			return c.fail("not a zfs send stream (bad magic)")
		}
	}
	o := c.order
	typ, payloadLen := o.Uint32(h[0:]), o.Uint32(h[4:])
	u := h[8:] // drr_u
	var payload uint64
	switch typ {
	case drrBegin:
		if !first {
			return c.fail("a second BEGIN record: more than one snapshot in the stream")
		}
		if err := c.begin(u, payloadLen); err != nil {
			return err
		}
	case drrEnd:
		// drr_end: checksum (4 x uint64), toguid.
		if g := o.Uint64(u[32:]); g != c.Header.ToGUID {
			return c.fail("END record for snapshot guid %d, stream began %d", g, c.Header.ToGUID)
		}
		c.done = true
	case drrObject:
		// drr_object: object(8) type(4) bonustype(4) blksz(4) bonuslen(4)
		// checksumtype, compress, dn_slots, flags (1 each) raw_bonuslen(4).
		if raw := o.Uint32(u[28:]); raw != 0 {
			return c.fail("raw (encrypted) OBJECT record")
		}
		payload = (uint64(o.Uint32(u[20:])) + 7) &^ 7
	case drrWrite:
		// drr_write: object(8) type(4) pad(4) offset(8) logical_size(8)
		// toguid(8) checksumtype, flags, compressiontype (1 each) pad2[5]
		// key(40) compressed_size(8).
		payload = o.Uint64(u[24:])
		if u[42] != 0 { // compressed (zfs send -c)
			payload = o.Uint64(u[88:])
		}
	case drrSpill:
		// drr_spill: object(8) length(8) toguid(8) flags compressiontype
		// pad[6] compressed_size(8).
		payload = o.Uint64(u[8:])
		if cs := o.Uint64(u[32:]); cs != 0 {
			payload = cs
		}
	case drrWriteEmbedded:
		// drr_write_embedded: object offset length toguid (8 each)
		// compression etype pad[6] lsize(4) psize(4).
		payload = (uint64(o.Uint32(u[44:])) + 7) &^ 7
	case drrFreeObjects, drrFree, drrWriteByRef, drrObjectRange:
	case drrRedact:
		return c.fail("redacted stream")
	default:
		return c.fail("unknown record type %d", typ)
	}
	if payload > maxPayload {
		return c.fail("record type %d with a payload of %d bytes", typ, payload)
	}
	c.pending = append(c.pending[:0], h...)
	c.left = int64(payload)
	return nil
}

// begin checks the BEGIN record (u is drr_u).
func (c *StreamChecker) begin(u []byte, payloadLen uint32) error {
	o := c.order
	vi := o.Uint64(u[8:])
	objType, toGUID, fromGUID := o.Uint32(u[24:]), o.Uint64(u[32:]), o.Uint64(u[40:])
	name := u[48 : 48+256]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	c.Header = StreamHeader{ToGUID: toGUID, FromGUID: fromGUID, ToName: string(name), Features: (vi >> 2) & (1<<30 - 1)}
	switch vi & 3 {
	case dmuSubstream:
	case dmuCompoundStream:
		return c.fail("a compound stream (made by zfs send -p, -R or a replication send): it carries dataset properties (mountpoint, setuid, ...) or more than one dataset")
	default:
		return c.fail("unknown stream header type %d", vi&3)
	}
	if payloadLen != 0 {
		return c.fail("BEGIN record carries a %d-byte nvlist payload (resume token, redaction or encryption keys)", payloadLen)
	}
	f := c.Header.Features
	if f&^featureKnown != 0 {
		return c.fail("unknown stream feature flags %#x", f&^featureKnown)
	}
	if f&featureRefused != 0 {
		return c.fail("stream features %#x (dedup, raw, resuming, redacted or holds) are refused", f&featureRefused)
	}
	if objType != dmuOSTZFS {
		return c.fail("stream of objset type %d, want a filesystem", objType)
	}
	if toGUID == 0 {
		return c.fail("stream without a snapshot guid")
	}
	if c.want.ToGUID != 0 && toGUID != c.want.ToGUID {
		return c.fail("stream carries snapshot guid %d, the record says %d", toGUID, c.want.ToGUID)
	}
	if fromGUID != c.want.FromGUID {
		if c.want.FromGUID == 0 {
			return c.fail("incremental stream (from snapshot guid %d) where a full stream is recorded", fromGUID)
		}
		return c.fail("stream is based on snapshot guid %d, the parent's is %d", fromGUID, c.want.FromGUID)
	}
	if c.want.Snapshot != "" {
		_, snap, ok := strings.Cut(c.Header.ToName, "@")
		if !ok || snap != c.want.Snapshot {
			return c.fail("stream of snapshot %q, want @%s", c.Header.ToName, c.want.Snapshot)
		}
	}
	return nil
}

// ReadStreamHeader reads and checks the BEGIN record at the start of r
// against want, as a StreamChecker does, and returns it. For callers that
// only look (a listing, a record of what a stream is); receiving must go
// through a StreamChecker so that every record is checked.
func ReadStreamHeader(r io.Reader, want StreamWant) (StreamHeader, error) {
	c := NewStreamChecker(r, want)
	if err := c.next(); err != nil {
		return c.Header, err
	}
	return c.Header, nil
}
