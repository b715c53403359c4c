// Package allowlist loads the --filter file (ESCU's filter macro as YAML or
// JSON rules), keeps the rules in force and reloads them on change and on
// SIGHUP, keeping the last good rules when a new file is invalid.
package allowlist

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sshlateral/sshlateral/processor"
)

// filterFile is the allowlist file: YAML (.yaml, .yml) or JSON (.json).
//
//	rules:
//	  - name: ansible-controller
//	    dest: ["build-*"]
//	    user: svc_ansible
//	    process: ["*https://artifacts.example.com/*"]
type filterFile struct {
	Rules []filterFileRule `yaml:"rules" json:"rules"`
}

type filterFileRule struct {
	Name              string   `yaml:"name" json:"name"`
	Dest              patterns `yaml:"dest" json:"dest"`
	User              patterns `yaml:"user" json:"user"`
	ParentProcessName patterns `yaml:"parent_process_name" json:"parent_process_name"`
	ProcessName       patterns `yaml:"process_name" json:"process_name"`
	Process           patterns `yaml:"process" json:"process"`
	ProcessID         patterns `yaml:"process_id" json:"process_id"`
	ParentProcessID   patterns `yaml:"parent_process_id" json:"parent_process_id"`
	DestCIDR          patterns `yaml:"dest_cidr" json:"dest_cidr"`
	ProcessRegex      string   `yaml:"process_regex" json:"process_regex"`
	MinCount          int64    `yaml:"min_count" json:"min_count"`
	MaxCount          int64    `yaml:"max_count" json:"max_count"`
}

// patterns accepts a list or, for a single pattern, a plain string.
type patterns []string

func (p *patterns) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var s string
		if err := n.Decode(&s); err != nil {
			return err
		}
		*p = patterns{s}
		return nil
	}
	var list []string
	if err := n.Decode(&list); err != nil {
		return err
	}
	*p = list
	return nil
}

func (p *patterns) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*p = patterns{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New("want a string or a list of strings")
	}
	*p = list
	return nil
}

// Parse decodes an allowlist file; unknown keys are errors, so that a
// misspelt key cannot silently widen a rule.
func Parse(name string, data []byte) (*processor.Filter, error) {
	var ff filterFile
	switch ext := strings.ToLower(filepath.Ext(name)); ext {
	case ".yaml", ".yml":
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		// An empty document decodes as io.EOF: an empty allowlist.
		if err := dec.Decode(&ff); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("parse YAML: %w", err)
		}
	case ".json":
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ff); err != nil {
			return nil, fmt.Errorf("parse JSON: %w", err)
		}
		if dec.More() {
			return nil, errors.New("parse JSON: data after the top-level object")
		}
	default:
		return nil, fmt.Errorf("unknown extension %q: want .yaml, .yml or .json", ext)
	}
	rules := make([]processor.Rule, len(ff.Rules))
	for i, r := range ff.Rules {
		rules[i] = processor.Rule{
			Name: r.Name, Dest: r.Dest, User: r.User, ParentProcessName: r.ParentProcessName,
			ProcessName: r.ProcessName, Process: r.Process, ProcessID: r.ProcessID,
			ParentProcessID: r.ParentProcessID, DestCIDR: r.DestCIDR, ProcessRegex: r.ProcessRegex,
			MinCount: r.MinCount, MaxCount: r.MaxCount,
		}
	}
	return processor.NewFilter(rules)
}

// Holder is the allowlist in force. It satisfies consumer.Suppressor;
// reloads swap the compiled filter atomically, so workers never lock.
type Holder struct {
	path   string
	logger *slog.Logger
	cur    atomic.Pointer[processor.Filter]

	mu      sync.Mutex        // serialises reloads (poll and SIGHUP)
	stamp   fileStamp         // of the last file read, good or bad
	hash    [sha256.Size]byte // of the last content read
	hashErr error             // why that content was rejected, or nil

	loads, failures atomic.Int64 // successful loads (the first included) and rejected ones
	lastGood        atomic.Int64 // unix nanoseconds of the last successful load
}

type fileStamp struct {
	modTime time.Time
	size    int64
}

// Load reads the allowlist at start: any problem is an error
// naming --filter.
func Load(path string, logger *slog.Logger) (*Holder, error) {
	h := &Holder{path: path, logger: logger}
	if _, err := h.reload(true); err != nil {
		return nil, fmt.Errorf("--filter %s: %w", path, err)
	}
	return h, nil
}

// Suppress applies the filter in force.
func (h *Holder) Suppress(r *processor.Result) (string, bool) {
	return h.cur.Load().Suppress(r)
}

// Reload re-reads the file (SIGHUP). A file that fails to read or parse is
// logged and the last good rules stay in force.
func (h *Holder) Reload() {
	changed, err := h.reload(true)
	switch {
	case err != nil:
		h.rejected(err)
	case !changed:
		h.logger.Info("allowlist unchanged", "path", h.path, "rules", h.cur.Load().Len())
	}
}

// poll reloads when the file's modification time or size changed and its
// content differs; a file that stays broken is reported once.
func (h *Holder) poll() {
	changed, err := h.reload(false)
	if err != nil && changed {
		h.rejected(err)
	}
}

func (h *Holder) rejected(err error) {
	h.failures.Add(1)
	h.logger.Error("allowlist reload failed; keeping the previous rules", "flag", "--filter", "path", h.path,
		"rules", h.cur.Load().Len(), "err", err)
}

// Watch polls every interval until ctx ends.
func (h *Holder) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.poll()
		}
	}
}

// reload reads the file if forced or its stamp changed, and installs it if
// its content changed and it is valid. changed reports that new content was
// read (installed or rejected); unchanged content returns the error it was
// rejected with, if any.
func (h *Holder) reload(force bool) (changed bool, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fi, err := os.Stat(h.path)
	if err != nil {
		// A file that disappears (e.g. mid-swap of a mounted ConfigMap) is
		// reported once, until it changes again.
		changed = h.stamp != (fileStamp{})
		h.stamp = fileStamp{}
		return changed || force, err
	}
	stamp := fileStamp{modTime: fi.ModTime(), size: fi.Size()}
	if !force && stamp == h.stamp {
		return false, nil
	}
	data, err := os.ReadFile(h.path)
	if err != nil {
		return true, err
	}
	h.stamp = stamp
	sum := sha256.Sum256(data)
	if sum == h.hash && h.cur.Load() != nil {
		return false, h.hashErr
	}
	h.hash = sum
	f, err := Parse(h.path, data)
	h.hashErr = err
	if err != nil {
		return true, err
	}
	h.cur.Store(f)
	h.loads.Add(1)
	h.lastGood.Store(time.Now().UnixNano())
	h.logger.Info("allowlist loaded", "path", h.path, "rules", f.Len(), "names", f.RuleNames(),
		"sha256", fmt.Sprintf("%x", sum[:8]))
	return true, nil
}

func (h *Holder) RuleCount() int {
	if h == nil {
		return 0
	}
	return h.cur.Load().Len()
}

func (h *Holder) ReloadCounts() (succeeded, failed int64) {
	return h.loads.Load(), h.failures.Load()
}

func (h *Holder) LastSuccess() time.Time {
	if ns := h.lastGood.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// WatchReloadSignal reloads the allowlist on SIGHUP until ctx ends. Without
// --filter SIGHUP is still caught, so that it cannot kill the process.
func WatchReloadSignal(ctx context.Context, h *Holder, logger *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if h == nil {
					logger.Info("SIGHUP ignored: no --filter to reload")
					continue
				}
				logger.Info("SIGHUP: reloading allowlist", "path", h.path)
				h.Reload()
			}
		}
	}()
}
