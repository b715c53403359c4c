package processor

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// Rule is one allowlist entry, the equivalent of a clause in ESCU's
// `linux_ssh_remote_services_script_execute_filter` macro. A rule suppresses
// a result when ALL of its given conditions hold; a condition holds when ANY
// of its patterns matches. Fields left empty (or zero) are not conditions.
//
// Patterns follow Splunk's search comparison: case-insensitive, `*` matches
// any run of characters (also none) and the pattern must cover the whole
// value, so "web*" is a prefix test and "*curl*" a substring test; a pattern
// without `*` is an exact comparison. A field the event lacked holds the
// string "null" (as tstats fills it), so the pattern "null" matches it and
// "*" matches every value including "null". Field names in errors are the
// allowlist file's keys.
type Rule struct {
	// Name identifies the rule in logs and the suppressed-results metric.
	// Default "rules[i]" (i its zero-based position); names must be unique.
	Name string

	// Patterns for the by-clause fields of the result (GroupKey).
	Dest              []string // dest
	User              []string // user
	ParentProcessName []string // parent_process_name
	ProcessName       []string // process_name
	Process           []string // process (full command line)
	ProcessID         []string // process_id
	ParentProcessID   []string // parent_process_id

	// DestCIDR holds when dest is an IP address (v4 or v6; an IPv4-mapped
	// IPv6 address counts as IPv4) inside any of these prefixes (dest_cidr).
	// A host name never matches.
	DestCIDR []string
	// ProcessRegex is an RE2 expression searched for in the first
	// MaxRegexInput bytes of process (process_regex). Case-sensitive like
	// Splunk's regex command; prefix (?i) to ignore case. Default "": no
	// condition.
	ProcessRegex string
	// MinCount holds when the result's count is at least MinCount
	// (min_count). Default 0: no lower bound.
	MinCount int64
	// MaxCount holds when the result's count is at most MaxCount
	// (max_count). Default 0: no upper bound.
	MaxCount int64
}

// Filter is a compiled allowlist. It is immutable after NewFilter and so safe
// for concurrent use; a nil *Filter suppresses nothing.
type Filter struct {
	rules []compiledRule
}

type compiledRule struct {
	name       string
	fields     []fieldCondition
	cidrs      []netip.Prefix
	re         *regexp.Regexp
	minCount   int64
	maxCount   int64
	conditions int
}

type fieldCondition struct {
	get      func(*GroupKey) string
	patterns []pattern
}

// pattern is a lower-cased glob split at its stars: parts[0] must be a
// prefix, parts[len-1] a suffix, and the parts between must appear in order.
// A pattern without a star has one part and is an exact comparison.
type pattern struct {
	parts []string
}

func compilePattern(p string) pattern {
	return pattern{parts: strings.Split(strings.ToLower(p), "*")}
}

// match reports whether the lower-cased value v matches.
func (p pattern) match(v string) bool {
	parts := p.parts
	if len(parts) == 1 {
		return v == parts[0]
	}
	first, last := parts[0], parts[len(parts)-1]
	if len(v) < len(first)+len(last) || !strings.HasPrefix(v, first) || !strings.HasSuffix(v, last) {
		return false
	}
	rest := v[len(first) : len(v)-len(last)]
	for _, part := range parts[1 : len(parts)-1] {
		i := strings.Index(rest, part)
		if i < 0 {
			return false
		}
		rest = rest[i+len(part):]
	}
	return true
}

// NewFilter compiles rules in order; Suppress reports the first rule that
// holds. Every invalid rule is reported, each error naming the rule's index,
// name, field and offending value. No rules gives a filter that suppresses
// nothing, which is ESCU's default (the macro is empty).
func NewFilter(rules []Rule) (*Filter, error) {
	f := &Filter{rules: make([]compiledRule, 0, len(rules))}
	var errs []error
	names := map[string]int{}
	for i := range rules {
		cr, err := compileRule(i, &rules[i])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, dup := names[cr.name]; dup {
			errs = append(errs, fmt.Errorf("rules[%d] %q: name already used by rules[%d]", i, cr.name, prev))
			continue
		}
		names[cr.name] = i
		f.rules = append(f.rules, cr)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f, nil
}

func compileRule(i int, r *Rule) (compiledRule, error) {
	cr := compiledRule{name: strings.TrimSpace(r.Name), minCount: r.MinCount, maxCount: r.MaxCount}
	if cr.name == "" {
		cr.name = fmt.Sprintf("rules[%d]", i)
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("rules[%d] %q: "+format, append([]any{i, cr.name}, args...)...))
	}
	fields := []struct {
		key      string
		patterns []string
		get      func(*GroupKey) string
	}{
		{"dest", r.Dest, func(k *GroupKey) string { return k.Dest }},
		{"user", r.User, func(k *GroupKey) string { return k.User }},
		{"parent_process_name", r.ParentProcessName, func(k *GroupKey) string { return k.ParentProcessName }},
		{"process_name", r.ProcessName, func(k *GroupKey) string { return k.ProcessName }},
		{"process", r.Process, func(k *GroupKey) string { return k.Process }},
		{"process_id", r.ProcessID, func(k *GroupKey) string { return k.ProcessID }},
		{"parent_process_id", r.ParentProcessID, func(k *GroupKey) string { return k.ParentProcessID }},
	}
	for _, fd := range fields {
		if len(fd.patterns) == 0 {
			continue
		}
		fc := fieldCondition{get: fd.get}
		for j, p := range fd.patterns {
			if p == "" {
				bad("%s[%d]: empty pattern (a missing field is matched by \"null\")", fd.key, j)
				continue
			}
			fc.patterns = append(fc.patterns, compilePattern(p))
		}
		cr.fields = append(cr.fields, fc)
		cr.conditions++
	}
	for j, c := range r.DestCIDR {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			bad("dest_cidr[%d]: invalid CIDR %q: %v", j, c, err)
			continue
		}
		if p.Addr().Is4In6() {
			bad("dest_cidr[%d]: %q is an IPv4-mapped IPv6 prefix; write it as IPv4 (mapped dests are compared as IPv4)", j, c)
			continue
		}
		cr.cidrs = append(cr.cidrs, p.Masked())
	}
	if len(r.DestCIDR) > 0 {
		cr.conditions++
	}
	if r.ProcessRegex != "" {
		re, err := regexp.Compile(r.ProcessRegex)
		if err != nil {
			bad("process_regex: invalid expression %q: %v", r.ProcessRegex, err)
		}
		cr.re = re
		cr.conditions++
	}
	if r.MinCount < 0 {
		bad("min_count: must not be negative (0 means no bound), got %d", r.MinCount)
	}
	if r.MaxCount < 0 {
		bad("max_count: must not be negative (0 means no bound), got %d", r.MaxCount)
	}
	if r.MinCount > 0 && r.MaxCount > 0 && r.MinCount > r.MaxCount {
		bad("min_count %d is greater than max_count %d: the rule could never hold", r.MinCount, r.MaxCount)
	}
	if r.MinCount > 0 || r.MaxCount > 0 {
		cr.conditions++
	}
	if cr.conditions == 0 && len(errs) == 0 {
		bad("no condition: a rule needs at least one of dest, user, parent_process_name, process_name, process, process_id, parent_process_id, dest_cidr, process_regex, min_count, max_count")
	}
	return cr, errors.Join(errs...)
}

// Suppress reports the name of the first rule that holds for r. It
// satisfies consumer.Suppressor.
func (f *Filter) Suppress(r *Result) (rule string, suppressed bool) {
	if f == nil {
		return "", false
	}
	for i := range f.rules {
		if f.rules[i].holds(r) {
			return f.rules[i].name, true
		}
	}
	return "", false
}

// Len returns the number of rules.
func (f *Filter) Len() int {
	if f == nil {
		return 0
	}
	return len(f.rules)
}

// RuleNames returns the rule names in evaluation order.
func (f *Filter) RuleNames() []string {
	if f == nil {
		return nil
	}
	names := make([]string, len(f.rules))
	for i := range f.rules {
		names[i] = f.rules[i].name
	}
	return names
}

func (cr *compiledRule) holds(r *Result) bool {
	if cr.minCount > 0 && r.Count < cr.minCount {
		return false
	}
	if cr.maxCount > 0 && r.Count > cr.maxCount {
		return false
	}
	for i := range cr.fields {
		if !cr.fields[i].holds(&r.Key) {
			return false
		}
	}
	if len(cr.cidrs) > 0 && !destInPrefixes(r.Key.Dest, cr.cidrs) {
		return false
	}
	if cr.re != nil && !cr.re.MatchString(regexInput(r.Key.Process)) {
		return false
	}
	return true
}

func (fc *fieldCondition) holds(k *GroupKey) bool {
	v := strings.ToLower(fc.get(k))
	for _, p := range fc.patterns {
		if p.match(v) {
			return true
		}
	}
	return false
}

func destInPrefixes(dest string, prefixes []netip.Prefix) bool {
	addr, err := netip.ParseAddr(strings.TrimSpace(dest))
	if err != nil {
		return false
	}
	addr = addr.WithZone("").Unmap()
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// MaxRegexInput bounds what a process_regex reads: the first 8 KiB of the
// command line, the part a risk record carries. RE2 runs in time linear in
// its input, but an attacker chooses the input: a 200 KB command line under
// a large expression would stall the partition's worker for seconds.
const MaxRegexInput = 8 << 10

func regexInput(s string) string {
	if len(s) > MaxRegexInput {
		return s[:MaxRegexInput]
	}
	return s
}
