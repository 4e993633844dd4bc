package manifests

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// trustStat makes files written just now count as unchanged by their stat
// (racyWindow 0) for the test.
func trustStat(t testing.TB) {
	old := racyWindow
	racyWindow = 0
	t.Cleanup(func() { racyWindow = old })
}

func loadCached(t *testing.T, root string, c *Cache) *Set {
	t.Helper()
	set, err := Load(root, LoadOptions{Cache: c, NumCPU: 2})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// TestCacheResyncDecodesNothing: with 1,000 unchanged manifest files, a
// resync decodes (and reads) none of them, and the Set is the one a load
// without the cache gives.
func TestCacheResyncDecodesNothing(t *testing.T) {
	trustStat(t)
	root := write1000(t)
	c := NewCache()
	first := loadCached(t, root, c)
	if st := c.Stats(); st.Decoded != 1001 || st.Unchanged != 0 {
		t.Fatalf("first load: %+v, want 1001 decoded", st)
	}
	again := loadCached(t, root, c)
	if st := c.Stats(); st != (CacheStats{Unchanged: 1001}) {
		t.Fatalf("resync: %+v, want 1001 unchanged and nothing decoded", st)
	}
	fresh, err := Load(root, LoadOptions{NumCPU: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Set{first, again} {
		if !reflect.DeepEqual(s, fresh) {
			t.Fatalf("cached load differs from an uncached one")
		}
	}
}

func TestCacheSeesChanges(t *testing.T) {
	trustStat(t)
	root := tempRoot(t)
	write(t, root, map[string]string{"a.yaml": container("a"), "b.yaml": container("b"), "c.yaml": container("c")})
	c := NewCache()
	loadCached(t, root, c)

	// Rewritten with other content: decoded again.
	write(t, root, map[string]string{"a.yaml": strings.Replace(container("a"), "base", "other", 1)})
	set := loadCached(t, root, c)
	if st := c.Stats(); st != (CacheStats{Unchanged: 2, Decoded: 1}) {
		t.Errorf("after a rewrite: %+v", st)
	}
	if got := set.Containers["a"].Spec.Image; got != "other" {
		t.Errorf("a's image = %q, want other", got)
	}

	// Touched (same content, new mtime): read and hashed, not decoded.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(root, "b.yaml"), later, later); err != nil {
		t.Fatal(err)
	}
	loadCached(t, root, c)
	if st := c.Stats(); st != (CacheStats{Unchanged: 2, Rehashed: 1}) {
		t.Errorf("after a touch: %+v", st)
	}

	// Made group-writable: the permission check still runs on a cached file.
	if err := os.Chmod(filepath.Join(root, "c.yaml"), 0o664); err != nil {
		t.Fatal(err)
	}
	set = loadCached(t, root, c)
	if _, ok := set.Containers["c"]; ok || len(errorsOf(set)) != 1 || !strings.Contains(errorsOf(set)[0], "insecure file") {
		t.Errorf("group-writable cached file: containers %v, errors %v", set.Containers, errorsOf(set))
	}

	// Removed: gone from the set and from the cache.
	os.Remove(filepath.Join(root, "c.yaml"))
	set = loadCached(t, root, c)
	if _, ok := set.Containers["c"]; ok || len(c.files) != 2 {
		t.Errorf("removed file: containers %v, %d files cached", set.Containers, len(c.files))
	}
}

// TestCacheCrossFileErrorsNotKept: an error that depends on other files
// (a dependsOn naming no Container) marks the document failed for that load
// only; once the dependency is declared, the cached document is valid.
func TestCacheCrossFileErrorsNotKept(t *testing.T) {
	trustStat(t)
	root := tempRoot(t)
	web := strings.Replace(container("web"), "spec: {image: base}", "spec: {image: base, dependsOn: [db]}", 1)
	write(t, root, map[string]string{"web.yaml": web})
	c := NewCache()
	set := loadCached(t, root, c)
	if _, ok := set.Containers["web"]; ok || len(errorsOf(set)) != 1 {
		t.Fatalf("web without db: containers %v, errors %v", set.Containers, errorsOf(set))
	}
	write(t, root, map[string]string{"db.yaml": container("db")})
	set = loadCached(t, root, c)
	if st := c.Stats(); st.Unchanged != 1 || st.Decoded != 1 {
		t.Errorf("stats %+v, want web unchanged and db decoded", st)
	}
	if _, ok := set.Containers["web"]; !ok || len(errorsOf(set)) != 0 {
		t.Errorf("web with db declared: containers %v, errors %v", set.Containers, errorsOf(set))
	}
}

// TestCacheRacyFileReread: a file changed within racyWindow of a load is
// read again at the next one even with the same stat (a second write in
// the same timestamp tick keeps mtime, size and ctime).
func TestCacheRacyFileReread(t *testing.T) {
	root := tempRoot(t)
	write(t, root, map[string]string{"a.yaml": container("a")})
	c := NewCache()
	loadCached(t, root, c)
	loadCached(t, root, c)
	if st := c.Stats(); st != (CacheStats{Rehashed: 1}) {
		t.Errorf("a file written just now: %+v, want it read again (not trusted by stat)", st)
	}
}
