package metrics

// Checks of the operations files that sit beside the metrics: the Prometheus
// example (rules and scrape config, with promtool) and the rc.d script (sh -n,
// shellcheck). The tools are Debian packages (prometheus, shellcheck); when
// one is missing the check skips, except under CI=true where it fails, since
// a skipped check is not a pass.

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

const (
	promDir  = "../examples/prometheus"
	rcScript = "../rc.d/zocker_reconcile"
)

// tool returns the path of name, skipping the test when it is missing (or
// failing it under CI=true).
func tool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	return testenv.RequireTool(t, name, debianPackage)
}

func run(t *testing.T, dir string, argv ...string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("%v: %v\n%s", argv, err, out)
	}
}

func TestPromtoolRulesAndConfig(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	run(t, promDir, promtool, "check", "rules", "rules.yml")
	run(t, promDir, promtool, "check", "config", "prometheus.yml")
	// The rule unit tests prove each alert fires when it should and stays
	// quiet when it should (a Stopped container is not "down").
	run(t, promDir, promtool, "test", "rules", "rules_test.yml")
}

// TestRulesUseExistingMetrics keeps rules.yml in step with this package: a
// renamed metric would leave an alert that silently never fires.
func TestRulesUseExistingMetrics(t *testing.T) {
	rules, err := os.ReadFile(filepath.Join(promDir, "rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	// Only the expressions: annotations mention "service zocker_reconcile".
	used := map[string]bool{}
	for _, expr := range regexp.MustCompile(`(?m)^\s*expr:(.*)$`).FindAllStringSubmatch(string(rules), -1) {
		for _, n := range regexp.MustCompile(`\bzocker_[a-z_]+`).FindAllString(expr[1], -1) {
			used[n] = true
		}
	}
	if len(used) == 0 {
		t.Fatal("rules.yml references no zocker_ metric")
	}

	reg := prometheus.NewRegistry()
	m := New(reg)
	m.ManifestLoad(ResultSuccess, 0, "r", time.Unix(1, 0))
	m.SetObjectReady(KindContainer, "a", true)
	m.ContainerState("a", true, true, 0)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	var missing []string
	for n := range used {
		if !have[n] {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("rules.yml uses metrics this package does not export: %v", missing)
	}
}

func TestRCScriptSyntax(t *testing.T) {
	run(t, ".", "sh", "-n", rcScript)
	shellcheck := tool(t, "shellcheck", "shellcheck")
	run(t, ".", shellcheck, "-s", "sh", rcScript)
}

// TestRCScriptCommand runs the rc.d script against a stub rc.subr (FreeBSD's
// is not here) to check what rc.subr would start: daemon(8)'s options, then
// the serve argv with the rc.conf knobs, flags last, and that reload signals
// the child (zocker-reconcile), not the daemon(8) supervisor.
func TestRCScriptCommand(t *testing.T) {
	dir := t.TempDir()
	script, err := os.ReadFile(rcScript)
	if err != nil {
		t.Fatal(err)
	}
	stub := filepath.Join(dir, "rc.subr")
	rcconf := filepath.Join(dir, "rc.conf")
	body := regexp.MustCompile(`(?m)^\. /etc/rc\.subr$`).ReplaceAllLiteral(script, []byte(". "+stub))
	if string(body) == string(script) {
		t.Fatal("rc.d script does not source /etc/rc.subr")
	}
	writeFile(t, filepath.Join(dir, "zocker_reconcile"), string(body))
	writeFile(t, rcconf, `svcj_all_enable=YES
zocker_reconcile_enable=YES
zocker_reconcile_listen=0.0.0.0:9847
zocker_reconcile_flags="--log-format json --max-prune 10"
`)
	writeFile(t, stub, `
load_rc_config() { . "`+rcconf+`"; }
warn() { echo "warn: $*" >&2; }
_run_rc_notrunning() { echo notrunning; }
check_pidfile() { echo "check_pidfile $*" >&2; echo 4242; }
kill() { echo "kill $*"; }
run_rc_command() {
	case "$1" in
	argv)
		echo "name=$name rcvar=$rcvar pidfile=$pidfile procname=$procname svcj=$zocker_reconcile_svcj"
		echo "flags-for-rc.subr=[$zocker_reconcile_flags]"
		eval "set -- $command $zocker_reconcile_flags $command_args"
		for a; do echo "arg $a"; done ;;
	reload)
		rc_pid=17
		$reload_cmd ;;
	esac
}
`)
	out, err := exec.Command("sh", filepath.Join(dir, "zocker_reconcile"), "argv").CombinedOutput()
	if err != nil {
		t.Fatalf("argv: %v\n%s", err, out)
	}
	want := `name=zocker_reconcile rcvar=zocker_reconcile_enable pidfile=/var/run/zocker_reconcile.pid procname=/usr/sbin/daemon svcj=NO
flags-for-rc.subr=[]
arg /usr/sbin/daemon
arg -R
arg 10
arg -P
arg /var/run/zocker_reconcile.pid
arg -p
arg /var/run/zocker_reconcile.child.pid
arg -H
arg -o
arg /var/log/zocker-reconcile.log
arg -t
arg zocker_reconcile
arg /usr/local/sbin/zocker-reconcile
arg serve
arg --manifests
arg /usr/local/etc/zocker.d
arg --root
arg zroot/zocker
arg --listen
arg 0.0.0.0:9847
arg --state-dir
arg /var/run/zocker
arg --log-format
arg json
arg --max-prune
arg 10
`
	if string(out) != want {
		t.Errorf("started command:\n%s\nwant:\n%s", out, want)
	}

	out, err = exec.Command("sh", filepath.Join(dir, "zocker_reconcile"), "reload").CombinedOutput()
	if err != nil {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	for _, w := range []string{
		"check_pidfile /var/run/zocker_reconcile.child.pid /usr/local/sbin/zocker-reconcile",
		"kill -HUP 4242",
	} {
		if !regexp.MustCompile(regexp.QuoteMeta(w)).Match(out) {
			t.Errorf("reload output lacks %q:\n%s", w, out)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}
