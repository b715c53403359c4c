package allowlist

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sshlateral/sshlateral/processor"
)

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger(t *testing.T) (*slog.Logger, *syncBuffer) {
	t.Helper()
	buf := &syncBuffer{}
	return slog.New(slog.NewJSONHandler(buf, nil)), buf
}

// writeFile writes content and moves the modification time forward by step,
// so that a change is visible even on file systems with coarse timestamps.
func writeFile(t *testing.T, path, content string, step int) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2026, 1, 1, 0, 0, step, 0, time.UTC)
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func resultFor(dest, user, process string) *processor.Result {
	return &processor.Result{Key: processor.GroupKey{Dest: dest, User: user, ParentProcessName: "bash", ProcessName: "ssh",
		Process: process, ProcessID: "10", ParentProcessID: "9"}, Count: 2}
}

const yamlAllowlist = `
# build hosts pull scripts from the artifact store
rules:
  - name: ansible-controller
    dest: ["build-*", "ci-*"]
    user: svc_ansible
    process: "*https://artifacts.example.com/*"
  - name: lab-network
    dest_cidr: [10.99.0.0/16, "2001:db8:99::/48"]
    max_count: 5
  - name: missing-user
    user: "null"
    process_regex: '(?i)--connect-timeout'
`

const jsonAllowlist = `{"rules": [
  {"name": "ansible-controller", "dest": ["build-*", "ci-*"], "user": "svc_ansible",
   "process": ["*https://artifacts.example.com/*"]},
  {"name": "lab-network", "dest_cidr": ["10.99.0.0/16", "2001:db8:99::/48"], "max_count": 5},
  {"name": "missing-user", "user": ["null"], "process_regex": "(?i)--connect-timeout"}
]}`

func TestParseFilterFile(t *testing.T) {
	cases := []struct {
		name, file, content string
	}{
		{"yaml", "allow.yaml", yamlAllowlist},
		{"yml", "allow.yml", yamlAllowlist},
		{"json", "allow.json", jsonAllowlist},
	}
	checks := []struct {
		result *processor.Result
		want   string
	}{
		{resultFor("BUILD-07", "svc_ansible", "ssh -oBatchMode=yes x curl https://artifacts.example.com/a.sh"), "ansible-controller"},
		{resultFor("build-07", "root", "ssh -oBatchMode=yes x curl https://artifacts.example.com/a.sh"), ""},
		{resultFor("10.99.3.1", "root", "ssh x http://y"), "lab-network"},
		{resultFor("2001:db8:99::5", "root", "ssh x http://y"), "lab-network"},
		{resultFor("10.98.3.1", "root", "ssh x http://y"), ""},
		{resultFor("web", "null", "ssh -oConnectTimeout=3 x CURL --Connect-Timeout 5 http://y"), "missing-user"},
		{resultFor("web", "alice", "ssh -oConnectTimeout=3 x curl --connect-timeout 5 http://y"), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(tc.file, []byte(tc.content))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := strings.Join(f.RuleNames(), ","); got != "ansible-controller,lab-network,missing-user" {
				t.Fatalf("rules = %s", got)
			}
			for _, c := range checks {
				rule, _ := f.Suppress(c.result)
				if rule != c.want {
					t.Errorf("dest %s user %s: rule %q, want %q", c.result.Key.Dest, c.result.Key.User, rule, c.want)
				}
			}
		})
	}
}

func TestParseFilterFileErrors(t *testing.T) {
	cases := []struct {
		name, file, content string
		want                []string
	}{
		{"unknown yaml key", "a.yaml", "rules:\n  - name: x\n    host: web\n", []string{"host", "not found"}},
		{"unknown json key", "a.json", `{"rules":[{"name":"x","host":"web"}]}`, []string{"host"}},
		{"unknown top-level key", "a.yaml", "rule:\n  - user: x\n", []string{"rule"}},
		{"bad yaml", "a.yaml", "rules: [\n", []string{"parse YAML"}},
		{"bad json", "a.json", `{"rules": [}`, []string{"parse JSON"}},
		{"trailing json", "a.json", `{"rules": []} {}`, []string{"after the top-level object"}},
		{"pattern not a string", "a.json", `{"rules":[{"user": 7}]}`, []string{"string or a list"}},
		{"unknown extension", "a.txt", "rules: []", []string{`".txt"`, ".yaml"}},
		{"rule without condition", "a.yaml", "rules:\n  - name: nothing\n", []string{`rules[0] "nothing"`, "no condition"}},
		{"bad cidr", "a.yaml", "rules:\n  - name: net\n    dest_cidr: 10.0.0.0/33\n", []string{"dest_cidr[0]", "10.0.0.0/33"}},
		{"bad count", "a.yaml", "rules:\n  - user: x\n    min_count: many\n", []string{"many"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.file, []byte(tc.content))
			if err == nil {
				t.Fatal("Parse succeeded, want error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseFilterEmptyFileIsEmptyAllowlist(t *testing.T) {
	for _, content := range []string{"", "# no rules yet\n", "rules: []\n"} {
		f, err := Parse("a.yaml", []byte(content))
		if err != nil {
			t.Fatalf("%q: %v", content, err)
		}
		if rule, ok := f.Suppress(resultFor("web", "root", "ssh")); ok || f.Len() != 0 {
			t.Fatalf("%q: %d rules, suppressed by %q", content, f.Len(), rule)
		}
	}
}

func TestLoadFilterFileStartupErrorNamesFlag(t *testing.T) {
	logger, _ := testLogger(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "allow.yaml")
	writeFile(t, bad, "rules:\n  - name: broken\n", 1)
	for _, path := range []string{bad, filepath.Join(dir, "missing.yaml")} {
		_, err := Load(path, logger)
		if err == nil || !strings.HasPrefix(err.Error(), "--filter "+path) {
			t.Errorf("Load(%s) error = %v, want one starting with --filter and the path", path, err)
		}
	}
}

func TestFilterHolderReloads(t *testing.T) {
	logger, logs := testLogger(t)
	path := filepath.Join(t.TempDir(), "allow.yaml")
	writeFile(t, path, "rules:\n  - name: v1\n    user: alice\n", 1)
	h, err := Load(path, logger)
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := resultFor("web", "alice", "ssh"), resultFor("web", "bob", "ssh")
	assertRule := func(step string, r *processor.Result, want string) {
		t.Helper()
		if got, _ := h.Suppress(r); got != want {
			t.Fatalf("%s: user %s suppressed by %q, want %q", step, r.Key.User, got, want)
		}
	}
	assertRule("initial", alice, "v1")
	assertRule("initial", bob, "")

	// An unchanged file is not reloaded.
	h.poll()
	if ok, _ := h.ReloadCounts(); ok != 1 {
		t.Fatalf("loads after unchanged poll = %d, want 1", ok)
	}

	// A changed file is picked up by the poll.
	writeFile(t, path, "rules:\n  - name: v2\n    user: bob\n", 2)
	h.poll()
	assertRule("after change", alice, "")
	assertRule("after change", bob, "v2")

	// A broken file is rejected, logged once, and v2 stays in force.
	writeFile(t, path, "rules:\n  - name: v3\n    dest_cidr: not-a-cidr\n", 3)
	h.poll()
	h.poll()
	assertRule("after bad change", bob, "v2")
	if n := strings.Count(logs.String(), "allowlist reload failed"); n != 1 {
		t.Fatalf("reload failure logged %d times, want 1:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "not-a-cidr") {
		t.Fatalf("log does not name the bad value:\n%s", logs)
	}

	// A deleted file keeps the rules too.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	h.poll()
	assertRule("after delete", bob, "v2")

	// SIGHUP reloads a fixed file even when its timestamp and size did not
	// change since the last poll.
	writeFile(t, path, "rules:\n  - name: v4\n    user: [alice, bob]\n", 4)
	h.Reload()
	assertRule("after reload", alice, "v4")
	assertRule("after reload", bob, "v4")
	ok, failed := h.ReloadCounts()
	if ok != 3 || failed != 2 || h.RuleCount() != 1 || h.LastSuccess().IsZero() {
		t.Fatalf("loads %d failed %d rules %d last %v; want 3, 2, 1, set", ok, failed, h.RuleCount(), h.LastSuccess())
	}
}

// SIGHUP with a broken file reports it every time: the operator asked.
func TestFilterHolderReloadReportsBrokenFile(t *testing.T) {
	logger, logs := testLogger(t)
	path := filepath.Join(t.TempDir(), "allow.json")
	writeFile(t, path, `{"rules":[{"name":"v1","user":"alice"}]}`, 1)
	h, err := Load(path, logger)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, `{"rules":[{"name":"v2","process_regex":"(("}]}`, 2)
	h.Reload()
	h.Reload()
	if n := strings.Count(logs.String(), "allowlist reload failed"); n != 2 {
		t.Fatalf("failure logged %d times, want 2:\n%s", n, logs)
	}
	if got, _ := h.Suppress(resultFor("web", "alice", "ssh")); got != "v1" {
		t.Fatalf("rule in force %q, want v1", got)
	}
}

// Workers call Suppress while reloads swap the filter.
func TestFilterHolderConcurrentReload(t *testing.T) {
	logger, _ := testLogger(t)
	path := filepath.Join(t.TempDir(), "allow.yaml")
	writeFile(t, path, "rules:\n  - name: a\n    user: alice\n", 1)
	h, err := Load(path, logger)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := resultFor("web", "alice", "ssh")
			for {
				select {
				case <-stop:
					return
				default:
				}
				if rule, ok := h.Suppress(r); !ok || (rule != "a" && rule != "b") {
					t.Errorf("Suppress = %q, %v", rule, ok)
					return
				}
			}
		}()
	}
	for i := 2; i < 40; i++ {
		name := "a"
		if i%2 == 0 {
			name = "b"
		}
		writeFile(t, path, "rules:\n  - name: "+name+"\n    user: alice\n", i)
		h.poll()
	}
	close(stop)
	wg.Wait()
	if ok, _ := h.ReloadCounts(); ok != 39 {
		t.Fatalf("loads = %d, want 39", ok)
	}
}

// The allowlist shipped in deploy/ must load.
func TestDeployAllowlistExampleLoads(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "deploy", "configmap-allowlist.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		t.Fatal(err)
	}
	f, err := Parse("filter.yaml", []byte(cm.Data["filter.yaml"]))
	if err != nil {
		t.Fatalf("deploy/configmap-allowlist.yaml filter.yaml: %v", err)
	}
	if f.Len() == 0 {
		t.Fatal("example allowlist has no rules")
	}
	lab := resultFor("10.250.7.7", "root", "ssh -oBatchMode=yes x curl http://y")
	if rule, _ := f.Suppress(lab); rule != "lab-network" {
		t.Fatalf("lab host suppressed by %q, want lab-network", rule)
	}
}
