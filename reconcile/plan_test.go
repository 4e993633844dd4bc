package reconcile

import (
	"slices"
	"strings"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

func intp(i int) *int { return &i }

type planCase struct {
	name string
	// world builds the inputs; t is there for the helpers' Fatal.
	world func(t *testing.T) (Desired, Observed, Options)
	want  []string
	// deps optionally checks DependsOn of some actions, by key.
	deps map[string][]string
}

// web is the reference container; edits of it make the replacement cases.
func web(mut ...func(*manifests.Container)) *manifests.Container { return container("web", mut...) }

// replaceCase: web was applied as before, the manifest now has edit.
func replaceCase(field string, edit func(*manifests.Container)) planCase {
	return planCase{
		name: "replace on " + field,
		world: func(t *testing.T) (Desired, Observed, Options) {
			return desired(newSet(img("base"), web(edit))), observed(applied(t, web(), "id1")), Options{}
		},
		want: []string{"replace container/web: " + field + " changed"},
	}
}

func planCases() []planCase {
	cases := []planCase{
		{
			name: "unchanged set is in sync",
			world: func(t *testing.T) (Desired, Observed, Options) {
				return desired(newSet(img("base"), web())), observed(applied(t, web(), "id1")), Options{}
			},
			want: []string{},
		},
		{
			name: "defaults written out are not a change",
			world: func(t *testing.T) (Desired, Observed, Options) {
				explicit := web(func(c *manifests.Container) {
					c.Spec.RestartPolicy, c.Spec.State, c.Spec.Hostname = "Always", "Running", "web"
					c.Spec.Network.Mode, c.Spec.StopSignal, c.Spec.StopTimeout = "loopback", "SIGTERM", "10000ms"
					c.Spec.Env = map[string]string{}
				})
				return desired(newSet(img("base"), explicit)), observed(applied(t, web(), "id1")), Options{}
			},
			want: []string{},
		},
		{
			name: "reordered dependsOn is not a change",
			world: func(t *testing.T) (Desired, Observed, Options) {
				a := web(func(c *manifests.Container) { c.Spec.DependsOn = []string{"db", "cache"} })
				b := web(func(c *manifests.Container) { c.Spec.DependsOn = []string{"cache", "db"} })
				db, cache := container("db"), container("cache")
				return desired(newSet(img("base"), a, db, cache)),
					observed(applied(t, b, "id1"), applied(t, db, "id1"), applied(t, cache, "id1")), Options{}
			},
			want: []string{},
		},
		{
			name: "new container is created",
			world: func(t *testing.T) (Desired, Observed, Options) {
				return desired(newSet(img("base"), web())), observed(), Options{}
			},
			want: []string{"create container/web: not present"},
		},
		{
			name: "new stopped container is created, not started",
			world: func(t *testing.T) (Desired, Observed, Options) {
				return desired(newSet(img("base"), web(func(c *manifests.Container) { c.Spec.State = "Stopped" }))), observed(), Options{}
			},
			want: []string{"create container/web: not present"},
		},
		{
			name: "missing image is imported and its container waits",
			world: func(t *testing.T) (Desired, Observed, Options) {
				o := observed()
				o.Tags, o.Images = nil, nil
				return desired(newSet(img("base"), web())), o, Options{}
			},
			want: []string{"import image/base: not present", "blocked hold container/web: waiting-for-image"},
		},
		{
			name: "changed tarball is re-imported and the running container waits",
			world: func(t *testing.T) (Desired, Observed, Options) {
				d := desired(newSet(img("base"), web()))
				d.ImageInputs["base"] = "in2"
				return d, observed(applied(t, web(), "id1")), Options{}
			},
			want: []string{"import image/base: inputs changed: in1 -> in2", "blocked hold container/web: waiting-for-image"},
		},
		{
			name: "tarball sha256 in the manifest stands in for missing inputs",
			world: func(t *testing.T) (Desired, Observed, Options) {
				img := img("base", func(i *manifests.Image) { i.Spec.Tarball.SHA256 = "sha-new" })
				d := desired(newSet(img, web()))
				d.ImageInputs = nil
				return d, observed(applied(t, web(), "id1")), Options{}
			},
			want: []string{"import image/base: inputs changed: in1 -> sha-new", "blocked hold container/web: waiting-for-image"},
		},
		{
			name: "build image not present is built",
			world: func(t *testing.T) (Desired, Observed, Options) {
				img := img("app", func(i *manifests.Image) {
					i.Spec = manifests.ImageSpec{Build: &manifests.BuildSource{Context: "/src/app"}}
				})
				d := desired(newSet(img))
				d.ImageInputs["app"] = "b1"
				return d, observed(), Options{}
			},
			want: []string{"build image/app: not present"},
		},
		{
			name: "pull image whose remote tag moved is pulled",
			world: func(t *testing.T) (Desired, Observed, Options) {
				img := img("base", func(i *manifests.Image) {
					i.Spec = manifests.ImageSpec{Pull: &manifests.PullSource{Repository: "ssh://repo/z"}}
				})
				d := desired(newSet(img))
				d.RemoteIDs = map[string]string{"base": "id9"}
				return d, observed(), Options{}
			},
			want: []string{"pull image/base: repository tag moved to id9 (from id1)"},
		},
		{
			name: "oci image whose registry tag moved is pulled; its container waits",
			world: func(t *testing.T) (Desired, Observed, Options) {
				img := img("base", func(i *manifests.Image) {
					i.Spec = manifests.ImageSpec{OCI: &manifests.OCISource{Ref: "127.0.0.1:5000/base:v1", Insecure: true}}
				})
				d := desired(newSet(img, web()))
				d.RemoteIDs = map[string]string{"base": "id9"}
				return d, observed(applied(t, web(), "id1")), Options{}
			},
			want: []string{"pull image/base: registry tag moved to sha256:id9 (from sha256:id1)", "blocked hold container/web: waiting-for-image"},
		},
		{
			name: "oci image from an archive holding another image is pulled",
			world: func(t *testing.T) (Desired, Observed, Options) {
				img := img("base", func(i *manifests.Image) {
					i.Spec = manifests.ImageSpec{OCI: &manifests.OCISource{Archive: "/var/cache/runtime.txz"}}
				})
				d := desired(newSet(img))
				d.RemoteIDs = map[string]string{"base": "id9"}
				return d, observed(), Options{}
			},
			want: []string{"pull image/base: archive holds sha256:id9 (from sha256:id1)"},
		},
		{
			name: "oci image whose registry is unreachable stays as it is",
			world: func(t *testing.T) (Desired, Observed, Options) {
				img := img("base", func(i *manifests.Image) {
					i.Spec = manifests.ImageSpec{OCI: &manifests.OCISource{Ref: "127.0.0.1:5000/base:v1"}}
				})
				return desired(newSet(img, web())), observed(applied(t, web(), "id1")), Options{}
			},
			want: []string{},
		},
		{
			name: "pull image with unknown remote uses the local tag",
			world: func(t *testing.T) (Desired, Observed, Options) {
				img := img("base", func(i *manifests.Image) {
					i.Spec = manifests.ImageSpec{Pull: &manifests.PullSource{Repository: "ssh://repo/z"}}
				})
				return desired(newSet(img, web())), observed(applied(t, web(), "id1")), Options{}
			},
			want: []string{},
		},
		{
			name: "undeclared image with a local tag is used",
			world: func(t *testing.T) (Desired, Observed, Options) {
				return desired(newSet(web())), observed(), Options{}
			},
			want: []string{"create container/web: not present"},
		},
		{
			name: "undeclared absent image waits",
			world: func(t *testing.T) (Desired, Observed, Options) {
				return desired(newSet(web(func(c *manifests.Container) { c.Spec.Image = "nginx" }))), observed(), Options{}
			},
			want: []string{"blocked hold container/web: waiting-for-image"},
		},
		replaceCase("spec.command", func(c *manifests.Container) {
			c.Spec.Command = manifests.Command{Argv: []string{"/bin/httpd", "-f", "-v"}}
		}),
		replaceCase("spec.command", func(c *manifests.Container) { c.Spec.Command = manifests.Command{Shell: "/bin/httpd -f"} }),
		replaceCase("spec.env", func(c *manifests.Container) { c.Spec.Env = map[string]string{"TZ": "UTC"} }),
		replaceCase("spec.user", func(c *manifests.Container) { c.Spec.User = "www" }),
		replaceCase("spec.workdir", func(c *manifests.Container) { c.Spec.Workdir = "/srv" }),
		replaceCase("spec.hostname", func(c *manifests.Container) { c.Spec.Hostname = "www" }),
		replaceCase("spec.network", func(c *manifests.Container) {
			c.Spec.Network = manifests.Network{Mode: "alias", Interface: "em0", Addresses: []string{"192.0.2.5/24"}}
		}),
		replaceCase("spec.volumes", func(c *manifests.Container) {
			c.Spec.Volumes = []manifests.VolumeMount{{HostPath: "/srv/www", Path: "/www", ReadOnly: true}}
		}),
		replaceCase("spec.restartPolicy", func(c *manifests.Container) { c.Spec.RestartPolicy = "Never" }),
		replaceCase("spec.healthcheck", func(c *manifests.Container) {
			c.Spec.Healthcheck = &manifests.Healthcheck{Command: manifests.Command{Argv: []string{"/bin/true"}}}
		}),
		replaceCase("spec.resources", func(c *manifests.Container) { c.Spec.Resources.Memory = "512M" }),
		replaceCase("spec.stopSignal", func(c *manifests.Container) { c.Spec.StopSignal = "SIGINT" }),
		replaceCase("spec.stopTimeout", func(c *manifests.Container) { c.Spec.StopTimeout = "30s" }),
		replaceCase("spec.securelevel", func(c *manifests.Container) { c.Spec.Securelevel = intp(3) }),
		replaceCase("spec.jailParams", func(c *manifests.Container) { c.Spec.JailParams = map[string]string{"allow.raw_sockets": "true"} }),
		{
			name: "replace on a new image ID",
			world: func(t *testing.T) (Desired, Observed, Options) {
				o := observed(applied(t, web(), "id1"))
				o.Tags["base"] = "id2"
				o.Images["id2"] = ObservedImage{ID: "id2", Inputs: "in2"}
				d := desired(newSet(img("base"), web()))
				d.ImageInputs["base"] = "in2"
				return d, o, Options{}
			},
			want: []string{"replace container/web: image changed: id1 -> id2"},
		},
		{
			name: "replace names both a field and the image",
			world: func(t *testing.T) (Desired, Observed, Options) {
				o := observed(applied(t, web(), "id1"))
				o.Tags["base"] = "sha256:3f2a9c1b7e04aaaaaaaa"
				return desired(newSet(web(func(c *manifests.Container) { c.Spec.User = "www" }))), o, Options{}
			},
			want: []string{"replace container/web: spec.user changed; image changed: id1 -> 3f2a9c1b7e04"},
		},
		{
			name: "replace without a readable applied spec says so",
			world: func(t *testing.T) (Desired, Observed, Options) {
				oc := applied(t, web(), "id1", func(oc *ObservedContainer) { oc.Spec, oc.SpecHash = "", "old" })
				return desired(newSet(web())), observed(oc), Options{}
			},
			want: []string{"replace container/web: spec hash changed (no readable applied spec)"},
		},
		{
			name: "drift: should run and does not is started",
			world: func(t *testing.T) (Desired, Observed, Options) {
				return desired(newSet(web())), observed(applied(t, web(), "id1", func(oc *ObservedContainer) { oc.Running = false })), Options{}
			},
			want: []string{"start container/web: not running"},
		},
		{
			name: "drift: runs and should not is stopped, not replaced",
			world: func(t *testing.T) (Desired, Observed, Options) {
				stopped := web(func(c *manifests.Container) { c.Spec.State = "Stopped" })
				return desired(newSet(stopped)), observed(applied(t, web(), "id1")), Options{}
			},
			want: []string{"stop container/web: running, spec.state is Stopped"},
		},
		{
			name: "stopped container that is stopped is in sync",
			world: func(t *testing.T) (Desired, Observed, Options) {
				stopped := web(func(c *manifests.Container) { c.Spec.State = "Stopped" })
				return desired(newSet(stopped)), observed(applied(t, stopped, "id1")), Options{}
			},
			want: []string{},
		},
		{
			name: "removed from manifests is pruned",
			world: func(t *testing.T) (Desired, Observed, Options) {
				return desired(newSet(web())), observed(applied(t, web(), "id1"), applied(t, container("old"), "id1")), Options{}
			},
			want: []string{"prune container/old: removed from manifests"},
		},
		{
			name: "unmanaged containers are never pruned",
			world: func(t *testing.T) (Desired, Observed, Options) {
				hand := applied(t, container("hand"), "id1", func(oc *ObservedContainer) { oc.Managed = false })
				return desired(newSet(web())), observed(applied(t, web(), "id1"), hand), Options{}
			},
			want: []string{},
		},
		{
			name: "declared name held by an unmanaged dataset is not taken over",
			world: func(t *testing.T) (Desired, Observed, Options) {
				hand := applied(t, web(func(c *manifests.Container) { c.Spec.User = "x" }), "id0", func(oc *ObservedContainer) { oc.Managed, oc.Running = false, false })
				return desired(newSet(web())), observed(hand), Options{}
			},
			want: []string{"blocked hold container/web: name-conflict"},
		},
		{
			name: "declared name held by a foreign jail is not taken over",
			world: func(t *testing.T) (Desired, Observed, Options) {
				o := observed()
				o.Foreign["web"] = "jail 12"
				return desired(newSet(web())), o, Options{}
			},
			want: []string{"blocked hold container/web: name-conflict"},
		},
		{
			name: "declared name held by a container made with run is not taken over",
			world: func(t *testing.T) (Desired, Observed, Options) {
				o := observed()
				o.Foreign["web"] = HolderRun
				return desired(newSet(web())), o, Options{}
			},
			want: []string{"blocked hold container/web: name-conflict"},
		},
		{
			name: "failed file keeps its container: no prune, no change",
			world: func(t *testing.T) (Desired, Observed, Options) {
				s := failFile(newSet(img("base")), "web")
				return desired(s), observed(applied(t, web(), "id1", func(oc *ObservedContainer) { oc.ImageID = "id0" })), Options{}
			},
			want: []string{"blocked hold container/web: invalid-manifest"},
		},
		{
			name: "failed file's container is still kept running by its applied spec",
			world: func(t *testing.T) (Desired, Observed, Options) {
				s := failFile(newSet(img("base")), "web")
				return desired(s), observed(applied(t, web(), "id1", func(oc *ObservedContainer) { oc.Running = false })), Options{}
			},
			want: []string{"start container/web: not running (last applied spec kept)", "blocked hold container/web: invalid-manifest"},
		},
		{
			name: "object moved into a failed file is kept",
			world: func(t *testing.T) (Desired, Observed, Options) {
				s := failFile(newSet(img("base")), "other", "Container/web")
				return desired(s), observed(applied(t, web(), "id1")), Options{}
			},
			want: []string{"blocked hold container/web: invalid-manifest"},
		},
		{
			name: "failed file keeps a Delete volume",
			world: func(t *testing.T) (Desired, Observed, Options) {
				v := volume("data", func(v *manifests.Volume) { v.Spec.ReclaimPolicy = "Delete" })
				s := failFile(newSet(web()), "data")
				return desired(s), observed(applied(t, web(), "id1"), appliedVolume(t, v)), Options{}
			},
			want: []string{"blocked hold volume/data: invalid-manifest"},
		},
		{
			name: "duplicates are neither changed nor pruned",
			world: func(t *testing.T) (Desired, Observed, Options) {
				s := newSet(img("base"))
				s.Blocked = []string{"Container/web"}
				s.Problems = []manifests.Problem{
					{File: "/m/a.yaml", Object: "Container/web", Message: "duplicate", Severity: "error"},
					{File: "/m/b.yaml", Object: "Container/web", Message: "duplicate", Severity: "error"},
				}
				return desired(s), observed(applied(t, web(), "id0")), Options{}
			},
			want: []string{"blocked hold container/web: duplicate"},
		},
		{
			name: "empty manifest set prunes nothing",
			world: func(t *testing.T) (Desired, Observed, Options) {
				return desired(newSet()), observed(applied(t, web(), "id1")), Options{}
			},
			want: []string{"blocked prune container/web: empty-manifests"},
		},
		{
			name: "missing manifest directory prunes nothing",
			world: func(t *testing.T) (Desired, Observed, Options) {
				return Desired{Set: &manifests.Set{Missing: true}}, observed(applied(t, web(), "id1")), Options{}
			},
			want: []string{"blocked prune container/web: empty-manifests"},
		},
		{
			name: "nil manifest set prunes nothing",
			world: func(t *testing.T) (Desired, Observed, Options) {
				return Desired{}, observed(applied(t, web(), "id1")), Options{}
			},
			want: []string{"blocked prune container/web: empty-manifests"},
		},
		{
			name: "empty manifest set prunes with AllowEmpty",
			world: func(t *testing.T) (Desired, Observed, Options) {
				return desired(newSet()), observed(applied(t, web(), "id1")), Options{AllowEmpty: true}
			},
			want: []string{"prune container/web: removed from manifests"},
		},
		{
			name: "more than max-prune prunes nothing",
			world: func(t *testing.T) (Desired, Observed, Options) {
				var objs []any
				for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
					objs = append(objs, applied(t, container(n), "id1"))
				}
				v := volume("scratch", func(v *manifests.Volume) { v.Spec.ReclaimPolicy = "Delete" })
				objs = append(objs, applied(t, web(), "id1"), appliedVolume(t, v))
				return desired(newSet(web())), observed(objs...), Options{}
			},
			want: []string{
				"blocked destroy-volume volume/scratch: max-prune",
				"blocked prune container/a: max-prune", "blocked prune container/b: max-prune",
				"blocked prune container/c: max-prune", "blocked prune container/d: max-prune",
				"blocked prune container/e: max-prune", "blocked prune container/f: max-prune",
			},
		},
		{
			name: "exactly max-prune prunes",
			world: func(t *testing.T) (Desired, Observed, Options) {
				var objs []any
				for _, n := range []string{"a", "b"} {
					objs = append(objs, applied(t, container(n), "id1"))
				}
				return desired(newSet(web())), observed(append(objs, applied(t, web(), "id1"))...), Options{MaxPrune: 2}
			},
			want: []string{"prune container/a: removed from manifests", "prune container/b: removed from manifests"},
		},
		{
			name: "negative max-prune is no limit",
			world: func(t *testing.T) (Desired, Observed, Options) {
				var objs []any
				for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
					objs = append(objs, applied(t, container(n), "id1"))
				}
				return desired(newSet(web())), observed(append(objs, applied(t, web(), "id1"))...), Options{MaxPrune: -1}
			},
			want: []string{
				"prune container/a: removed from manifests", "prune container/b: removed from manifests",
				"prune container/c: removed from manifests", "prune container/d: removed from manifests",
				"prune container/e: removed from manifests", "prune container/f: removed from manifests",
			},
		},
		{
			name: "retained volume removed from manifests stays",
			world: func(t *testing.T) (Desired, Observed, Options) {
				return desired(newSet(web())), observed(applied(t, web(), "id1"), appliedVolume(t, volume("logs"))), Options{}
			},
			want: []string{},
		},
		{
			name: "Delete volume removed from manifests is destroyed after its container is pruned",
			world: func(t *testing.T) (Desired, Observed, Options) {
				v := volume("data", func(v *manifests.Volume) { v.Spec.ReclaimPolicy = "Delete" })
				user := container("db", func(c *manifests.Container) {
					c.Spec.Volumes = []manifests.VolumeMount{{Volume: "data", Path: "/data"}}
				})
				return desired(newSet(web())), observed(applied(t, web(), "id1"), applied(t, user, "id1"), appliedVolume(t, v)), Options{}
			},
			want: []string{"prune container/db: removed from manifests", "destroy-volume volume/data: removed from manifests, reclaimPolicy Delete"},
			deps: map[string][]string{"Volume/data": {"Container/db"}},
		},
		{
			name: "Delete volume still mounted by a remaining container is kept",
			world: func(t *testing.T) (Desired, Observed, Options) {
				v := volume("data", func(v *manifests.Volume) { v.Spec.ReclaimPolicy = "Delete" })
				user := web(func(c *manifests.Container) {
					c.Spec.Volumes = []manifests.VolumeMount{{Volume: "data", Path: "/data"}}
				})
				return desired(newSet(user)), observed(applied(t, user, "id1"), appliedVolume(t, v)), Options{}
			},
			want: []string{"blocked destroy-volume volume/data: volume-in-use"},
		},
		{
			name: "new volume is created before the container that mounts it",
			world: func(t *testing.T) (Desired, Observed, Options) {
				user := web(func(c *manifests.Container) {
					c.Spec.Volumes = []manifests.VolumeMount{{Volume: "data", Path: "/data"}}
				})
				return desired(newSet(user, volume("data"))), observed(), Options{}
			},
			want: []string{"create-volume volume/data: not present", "create container/web: not present"},
			deps: map[string][]string{"Container/web": {"Volume/data"}},
		},
		{
			name: "volume quota and properties changes update it",
			world: func(t *testing.T) (Desired, Observed, Options) {
				v := volume("data", func(v *manifests.Volume) {
					v.Spec.Quota = "10G"
					v.Spec.Properties = map[string]string{"compression": "lz4"}
				})
				ov := appliedVolume(t, volume("data", func(v *manifests.Volume) { v.Spec.Quota = "1G" }),
					func(ov *ObservedVolume) { ov.Properties = map[string]string{"compression": "off"} })
				return desired(newSet(v)), observed(ov), Options{}
			},
			want: []string{"update-volume volume/data: spec.quota, spec.properties.compression changed"},
		},
		{
			name: "volume quota written differently is not a change",
			world: func(t *testing.T) (Desired, Observed, Options) {
				v := volume("data", func(v *manifests.Volume) { v.Spec.Quota = "1024M" })
				ov := appliedVolume(t, volume("data", func(v *manifests.Volume) { v.Spec.Quota = "1G" }))
				return desired(newSet(v)), observed(ov), Options{}
			},
			want: []string{},
		},
		{
			name: "declared volume held by an unmanaged dataset is not taken over",
			world: func(t *testing.T) (Desired, Observed, Options) {
				ov := appliedVolume(t, volume("data"), func(ov *ObservedVolume) { ov.Managed = false })
				return desired(newSet(volume("data"))), observed(ov), Options{}
			},
			want: []string{"blocked hold volume/data: name-conflict"},
		},
		{
			name: "container mounting an absent volume is blocked",
			world: func(t *testing.T) (Desired, Observed, Options) {
				user := web(func(c *manifests.Container) {
					c.Spec.Volumes = []manifests.VolumeMount{{Volume: "nope", Path: "/data"}}
				})
				return desired(newSet(user)), observed(), Options{}
			},
			want: []string{"blocked create container/web: missing-volume"},
		},
		{
			name: "dependsOn orders starts: dependency first",
			world: func(t *testing.T) (Desired, Observed, Options) {
				app := container("app", func(c *manifests.Container) { c.Spec.DependsOn = []string{"zdb"} })
				return desired(newSet(app, container("zdb"))), observed(), Options{}
			},
			want: []string{"create container/zdb: not present", "create container/app: not present"},
			deps: map[string][]string{"Container/app": {"Container/zdb"}},
		},
		{
			name: "dependsOn orders drift starts and replaces",
			world: func(t *testing.T) (Desired, Observed, Options) {
				app := container("app", func(c *manifests.Container) { c.Spec.DependsOn = []string{"zdb"} })
				zdb := container("zdb")
				return desired(newSet(app, container("zdb", func(c *manifests.Container) { c.Spec.User = "pg" }))),
					observed(applied(t, app, "id1", func(oc *ObservedContainer) { oc.Running = false }), applied(t, zdb, "id1")), Options{}
			},
			want: []string{"replace container/zdb: spec.user changed", "start container/app: not running"},
			deps: map[string][]string{"Container/app": {"Container/zdb"}},
		},
		{
			name: "dependsOn orders prunes: dependents first",
			world: func(t *testing.T) (Desired, Observed, Options) {
				app := container("app", func(c *manifests.Container) { c.Spec.DependsOn = []string{"zdb"} })
				return desired(newSet(web())), observed(applied(t, web(), "id1"), applied(t, app, "id1"), applied(t, container("zdb"), "id1")), Options{}
			},
			want: []string{"prune container/app: removed from manifests", "prune container/zdb: removed from manifests"},
			deps: map[string][]string{"Container/zdb": {"Container/app"}},
		},
		{
			name: "dependsOn orders stops: dependents first",
			world: func(t *testing.T) (Desired, Observed, Options) {
				stop := func(c *manifests.Container) { c.Spec.State = "Stopped" }
				app := container("app", func(c *manifests.Container) { c.Spec.DependsOn = []string{"zdb"} })
				appStopped := container("app", stop, func(c *manifests.Container) { c.Spec.DependsOn = []string{"zdb"} })
				return desired(newSet(appStopped, container("zdb", stop))), observed(applied(t, app, "id1"), applied(t, container("zdb"), "id1")), Options{}
			},
			want: []string{"stop container/app: running, spec.state is Stopped", "stop container/zdb: running, spec.state is Stopped"},
			deps: map[string][]string{"Container/zdb": {"Container/app"}},
		},
		{
			name: "dependency that does not run holds the start back",
			world: func(t *testing.T) (Desired, Observed, Options) {
				app := container("app", func(c *manifests.Container) { c.Spec.DependsOn = []string{"db"} })
				db := container("db", func(c *manifests.Container) { c.Spec.State = "Stopped" })
				return desired(newSet(app, db)), observed(applied(t, db, "id1")), Options{}
			},
			want: []string{"blocked create container/app: waiting-for-dependency"},
		},
		{
			name: "a held-back dependency holds back its dependents in turn",
			world: func(t *testing.T) (Desired, Observed, Options) {
				a := container("a", func(c *manifests.Container) { c.Spec.DependsOn = []string{"b"} })
				b := container("b", func(c *manifests.Container) { c.Spec.DependsOn = []string{"c"} })
				c := container("c", func(c *manifests.Container) { c.Spec.State = "Stopped" })
				return desired(newSet(a, b, c)), observed(applied(t, c, "id1")), Options{}
			},
			want: []string{"blocked create container/a: waiting-for-dependency", "blocked create container/b: waiting-for-dependency"},
		},
		{
			name: "unhealthy dependency holds the start back",
			world: func(t *testing.T) (Desired, Observed, Options) {
				app := container("app", func(c *manifests.Container) { c.Spec.DependsOn = []string{"db"} })
				db := container("db")
				return desired(newSet(app, db)), observed(applied(t, db, "id1", func(oc *ObservedContainer) { oc.Health = HealthUnhealthy })), Options{}
			},
			want: []string{"blocked create container/app: waiting-for-dependency"},
		},
		{
			name: "healthy running dependency lets the start go",
			world: func(t *testing.T) (Desired, Observed, Options) {
				app := container("app", func(c *manifests.Container) { c.Spec.DependsOn = []string{"db"} })
				db := container("db")
				return desired(newSet(app, db)), observed(applied(t, db, "id1", func(oc *ObservedContainer) { oc.Health = HealthHealthy })), Options{}
			},
			want: []string{"create container/app: not present"},
		},
		{
			name: "images, then volumes, then containers",
			world: func(t *testing.T) (Desired, Observed, Options) {
				a := container("a", func(c *manifests.Container) { c.Spec.Image = "zz" })
				o := observed()
				o.Tags["zz"] = "idz"
				return desired(newSet(a, web(), img("base"), volume("data"))), o, Options{}
			},
			want: []string{"create-volume volume/data: not present", "create container/a: not present", "create container/web: not present"},
		},
		{
			name: "a first pass: image import, volume, containers wait for the image",
			world: func(t *testing.T) (Desired, Observed, Options) {
				o := observed()
				o.Tags, o.Images = nil, nil
				return desired(newSet(web(), img("base"), volume("data"))), o, Options{}
			},
			want: []string{"import image/base: not present", "create-volume volume/data: not present", "blocked hold container/web: waiting-for-image"},
		},
	}
	return cases
}

func TestDiffTable(t *testing.T) {
	cases := planCases()
	if len(cases) < 30 {
		t.Fatalf("only %d cases, want at least 30", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, o, opts := tc.world(t)
			p := Diff(d, o, opts)
			got := summary(p)
			if !slices.Equal(got, tc.want) {
				t.Errorf("plan:\n  got  %q\n  want %q", got, tc.want)
			}
			if p.InSync != (len(tc.want) == 0) {
				t.Errorf("InSync = %v with %d entries", p.InSync, len(got))
			}
			for key, want := range tc.deps {
				found := false
				for _, a := range p.Actions {
					if a.Key() == key {
						found = true
						if !slices.Equal(a.DependsOn, want) {
							t.Errorf("%s dependsOn = %q, want %q", key, a.DependsOn, want)
						}
					}
				}
				if !found {
					t.Errorf("no action for %s", key)
				}
			}
			// Every dependency must come earlier in the list.
			pos := map[string]int{}
			for i, a := range p.Actions {
				pos[a.Key()] = i
			}
			for i, a := range p.Actions {
				for _, dep := range a.DependsOn {
					if j, ok := pos[dep]; !ok || j >= i {
						t.Errorf("%s depends on %s, which is not before it", a.Key(), dep)
					}
				}
			}
			// Determinism: the same inputs give the same plan.
			if again := summary(Diff(d, o, opts)); !slices.Equal(again, got) {
				t.Errorf("second Diff differs: %q", again)
			}
		})
	}
}

func TestDiffCarriesExecutorData(t *testing.T) {
	o := observed(applied(t, web(), "id1"))
	edited := web(func(c *manifests.Container) { c.Spec.User = "www" })
	p := Diff(desired(newSet(img("base"), edited)), o, Options{})
	if len(p.Actions) != 1 {
		t.Fatalf("actions: %q", summary(p))
	}
	a := p.Actions[0]
	if a.Container != edited || a.ImageID != "id1" || a.SpecHash != SpecHash(edited, "id1") || a.Manifest != "web.yaml" {
		t.Errorf("action = %+v", a)
	}
}

func TestDiffWaitingIsNotAFailure(t *testing.T) {
	o := observed()
	o.Tags, o.Images = nil, nil
	p := Diff(desired(newSet(img("base"), web())), o, Options{})
	if len(p.Blocked) != 1 || !p.Blocked[0].Waiting() || p.Blocked[0].Guard() {
		t.Fatalf("blocked = %+v", p.Blocked)
	}
	if !strings.Contains(p.Blocked[0].Message, "waiting for image base (import: not present)") {
		t.Errorf("message = %q", p.Blocked[0].Message)
	}
}

func TestDiffUnmanagedNeverTouched(t *testing.T) {
	// Whatever the manifests say, no action ever names an unmanaged object.
	hand := applied(t, web(), "id0", func(oc *ObservedContainer) { oc.Managed, oc.Running = false, false })
	handVol := ObservedVolume{Name: "data", ReclaimPolicy: manifests.ReclaimDelete}
	for _, s := range []*manifests.Set{newSet(), newSet(web()), newSet(web(func(c *manifests.Container) { c.Spec.State = "Stopped" })), nil} {
		for _, opts := range []Options{{}, {AllowEmpty: true, MaxPrune: -1}} {
			p := Diff(Desired{Set: s}, observed(hand, handVol), opts)
			for _, a := range p.Actions {
				if a.Name == "web" || a.Name == "data" {
					t.Errorf("action on an unmanaged object: %s", a)
				}
			}
		}
	}
}

func TestManifestRef(t *testing.T) {
	s := &manifests.Set{Root: "/srv/zocker/current", Resolved: "/srv/zocker/rev-abc"}
	for in, want := range map[string]string{
		"/srv/zocker/rev-abc/apps/web.yaml": "apps/web.yaml",
		"/srv/zocker/current/web.yaml":      "web.yaml",
		"/elsewhere/x.yaml":                 "/elsewhere/x.yaml",
		"web.yaml":                          "web.yaml",
	} {
		if got := ManifestRef(s, in); got != want {
			t.Errorf("ManifestRef(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDiffFailedFileAcrossSwap(t *testing.T) {
	// After a git-sync swap the resolved root differs, but the relative
	// zocker:manifest still matches the failed file.
	s := failFile(newSet(), "web")
	s.Files[0].Path = "/srv/zocker/rev-def/web.yaml"
	s.Root, s.Resolved = "/srv/zocker/current", "/srv/zocker/rev-def"
	p := Diff(Desired{Set: s}, observed(applied(t, web(), "id1")), Options{AllowEmpty: true})
	if got := summary(p); !slices.Equal(got, []string{"blocked hold container/web: invalid-manifest"}) {
		t.Errorf("plan = %q", got)
	}
}

func TestActionGeneration(t *testing.T) {
	gen := func(d Desired, o Observed) map[string]string {
		out := map[string]string{}
		for _, a := range Diff(d, o, Options{}).Actions {
			out[a.Key()] = a.Generation()
		}
		return out
	}
	o := observed()
	o.Tags, o.Images = nil, nil
	d1 := desired(newSet(img("base"), web(), volume("data", func(v *manifests.Volume) { v.Spec.Quota = "1G" })))
	d2 := desired(newSet(img("base", func(i *manifests.Image) { i.Spec.Tarball.Path = "/other.txz" }), web(),
		volume("data", func(v *manifests.Volume) { v.Spec.Quota = "2G" })))
	g1, again, g2 := gen(d1, o), gen(d1, o), gen(d2, o)
	for _, key := range []string{"Image/base", "Volume/data"} {
		if g1[key] == "" || g1[key] != again[key] {
			t.Errorf("%s generation unstable: %q, %q", key, g1[key], again[key])
		}
		if g1[key] == g2[key] {
			t.Errorf("%s generation does not follow its spec: %q", key, g1[key])
		}
	}
	// A started container carries its spec hash as generation too.
	stopped := Diff(desired(newSet(web())), observed(applied(t, web(), "id1", func(oc *ObservedContainer) { oc.Running = false })), Options{})
	if len(stopped.Actions) != 1 || stopped.Actions[0].Generation() != SpecHash(web(), "id1") {
		t.Errorf("start generation: %+v", stopped.Actions)
	}
}

// A build whose Zockerfile starts FROM another declared Image being made in
// the same pass waits for it.
func TestBuildWaitsForItsBaseImage(t *testing.T) {
	hello := img("hello", func(i *manifests.Image) {
		i.Spec.Tarball = nil
		i.Spec.Build = &manifests.BuildSource{Context: "/ctx", File: "Zockerfile"}
	})
	d := Desired{Set: newSet(img("aaa"), hello, img("zzz")),
		ImageInputs: map[string]string{"aaa": "in-a", "hello": "build:h", "zzz": "in-z"},
		BuildBases:  map[string]string{"hello": "zzz"}}
	p := Diff(d, Observed{}, Options{})
	var order []string
	for _, a := range p.Actions {
		order = append(order, a.Name)
		if a.Name == "hello" && (len(a.DependsOn) != 1 || a.DependsOn[0] != "Image/zzz") {
			t.Errorf("build depends on %v, want [Image/zzz]", a.DependsOn)
		}
	}
	if strings.Join(order, ",") != "aaa,zzz,hello" {
		t.Errorf("order %v: the build must come after its base", order)
	}
}

func TestPlanNameInUseByRun(t *testing.T) {
	o := observed()
	o.Foreign["web"] = HolderRun
	p := Diff(desired(newSet(web())), o, Options{})
	if len(p.Blocked) != 1 || p.Blocked[0].Message != "name in use by a container made with run: it is never taken over (zocker-reconcile rm web frees it)" {
		t.Fatalf("blocked: %+v", p.Blocked)
	}
	if len(p.Actions) != 0 {
		t.Errorf("actions on a name held by run: %+v", p.Actions)
	}
}
