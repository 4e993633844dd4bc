package repo

import (
	"encoding/binary"
	"strconv"

	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
)

// guidOf gives each fake image a stable snapshot guid.
func guidOf(id string) uint64 {
	n, _ := strconv.ParseUint(id[:15], 16, 64)
	return n + 1
}

// fakeStream is a minimal well-formed zfs send stream (BEGIN, one WRITE
// carrying payload, END), so that the fake local store's streams pass the
// same StreamChecker real ones do.
func fakeStream(guid, from uint64, payload string) []byte {
	const rs = zfs.StreamRecordSize
	le := binary.LittleEndian
	begin := make([]byte, rs)
	le.PutUint64(begin[8:], 0x2F5bacbac)
	le.PutUint64(begin[16:], 1) // substream
	le.PutUint32(begin[32:], 2) // filesystem
	le.PutUint64(begin[40:], guid)
	le.PutUint64(begin[48:], from)
	copy(begin[56:], "fake/img@image")
	write := make([]byte, rs)
	le.PutUint32(write[0:], 3)
	le.PutUint64(write[8+24:], uint64(len(payload)))
	end := make([]byte, rs)
	le.PutUint32(end[0:], 5)
	le.PutUint64(end[8+32:], guid)
	out := append(begin, write...)
	out = append(out, payload...)
	return append(out, end...)
}

// fakePayload returns the WRITE payload of a fakeStream ("" when b is not one).
func fakePayload(b []byte) string {
	const rs = zfs.StreamRecordSize
	if len(b) < 3*rs {
		return ""
	}
	return string(b[2*rs : len(b)-rs])
}
