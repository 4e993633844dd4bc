package manifests

import (
	"crypto/sha256"
	"io/fs"
	"sync"
	"syscall"
)

// Cache keeps the decoded documents of the manifest files of the last load,
// so that a resync over a thousand unchanged files decodes none of them. A
// file is taken from the cache without being read when its device, inode,
// size, mtime and ctime (and mode and owner, which the permission check
// looks at) are those of the last load, and without being decoded when its
// content hashes the same. The cache holds only the files of the last load.
// One Cache serves one manifest root; it is safe for concurrent use.
type Cache struct {
	mu    sync.Mutex
	files map[string]*cachedFile // by path as read (the resolved root's)
	stats CacheStats
}

// CacheStats tell what the last load did with its files.
type CacheStats struct {
	// Unchanged files were not read (same stat); Rehashed were read but not
	// decoded (same content); Decoded were read and decoded.
	Unchanged, Rehashed, Decoded int
}

// NewCache returns an empty cache.
func NewCache() *Cache { return &Cache{files: map[string]*cachedFile{}} }

// Stats returns what the last load did with its files.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// cachedFile is what decoding one file gave: its documents and the
// problems found in it alone, with the identity of the bytes decoded.
type cachedFile struct {
	stat     statKey
	sum      [sha256.Size]byte
	display  string
	numCPU   int
	docs     []*Document
	problems []Problem
}

// statKey identifies a file's content without reading it: a rewrite
// changes mtime and ctime (and usually the size), a rename-over changes the
// inode, a chmod or chown changes ctime and mode or owner.
type statKey struct {
	dev, ino         uint64
	size             int64
	mtimeNs, ctimeNs int64
	mode             fs.FileMode
	uid              uint32
	valid            bool
}

func statKeyOf(info fs.FileInfo) statKey {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return statKey{}
	}
	return statKey{
		dev: uint64(st.Dev), ino: uint64(st.Ino), size: st.Size,
		mtimeNs: info.ModTime().UnixNano(), ctimeNs: ctimeNs(st),
		mode: info.Mode(), uid: st.Uid, valid: true,
	}
}

// load opens a load: it returns the entries of the last one and a map for
// this one's, which end replaces the cache with.
func (c *Cache) begin() (prev map[string]*cachedFile, next map[string]*cachedFile) {
	c.mu.Lock()
	c.stats = CacheStats{}
	return c.files, map[string]*cachedFile{}
}

func (c *Cache) end(next map[string]*cachedFile, stats CacheStats) {
	c.files, c.stats = next, stats
	c.mu.Unlock()
}

// docsCopy returns fresh Documents for one load (assemble marks them
// Failed); the decoded objects are shared, as nothing changes them.
func docsCopy(docs []*Document) []*Document {
	out := make([]*Document, len(docs))
	for i, d := range docs {
		cp := *d
		out[i] = &cp
	}
	return out
}
