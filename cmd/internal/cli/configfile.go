package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// ConfigFlagName is the flag (and SSHLATERAL_CONFIG) naming the config file.
const ConfigFlagName = "config"

// ParseFlagsWithConfig applies the layers from strongest to weakest:
// command-line flags, then SSHLATERAL_* environment variables (ParseFlags),
// then the YAML file named by --config / SSHLATERAL_CONFIG, then defaults.
// --config itself comes from the first two layers only, so it is known
// before the file is read.
func ParseFlagsWithConfig(fs *flag.FlagSet, e Env, args []string, configPath *string) error {
	if err := ParseFlags(fs, e, args); err != nil {
		return err
	}
	if *configPath == "" {
		return nil
	}
	return applyConfigFile(fs, e, *configPath)
}

// applyConfigFile sets every flag named in the file that neither the command
// line nor the environment set. Keys are flag names; a value is a scalar or,
// for list flags such as brokers, a list joined with commas; null leaves the
// flag alone. Unknown keys are errors: a misspelt key must not silently fall
// back to a default.
func applyConfigFile(fs *flag.FlagSet, e Env, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	values, err := parseConfigFile(data)
	if err != nil {
		return fmt.Errorf("--config %s: %w", path, err)
	}
	setByArgs := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { setByArgs[f.Name] = true })
	var errs []error
	for _, v := range values {
		f := fs.Lookup(v.key)
		switch {
		case v.key == ConfigFlagName:
			errs = append(errs, fmt.Errorf("--config %s line %d: key %q: a config file cannot name another", path, v.line, v.key))
			continue
		case f == nil:
			errs = append(errs, fmt.Errorf("--config %s line %d: unknown key %q (keys are flag names, e.g. brokers, http-addr)", path, v.line, v.key))
			continue
		case v.null || setByArgs[f.Name] || e.Getenv(EnvName(f.Name)) != "":
			continue
		}
		if err := f.Value.Set(v.value); err != nil {
			errs = append(errs, fmt.Errorf("--%s (from --config %s line %d, value %q): %w", f.Name, path, v.line, v.value, err))
		}
	}
	return errors.Join(errs...)
}

type configValue struct {
	key, value string
	null       bool
	line       int
}

// parseConfigFile reads a YAML mapping of flag names to values, keeping the
// values' text as written so that each flag parses it like the command line.
func parseConfigFile(data []byte) ([]configValue, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil // empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: want a mapping of flag names to values", root.Line)
	}
	var out []configValue
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: keys must be flag names", k.Line)
		}
		key := strings.TrimPrefix(strings.TrimPrefix(k.Value, "-"), "-")
		if prev, dup := seen[key]; dup {
			return nil, fmt.Errorf("line %d: key %q already given on line %d", k.Line, key, prev)
		}
		seen[key] = k.Line
		cv := configValue{key: key, line: k.Line}
		switch v.Kind {
		case yaml.ScalarNode:
			cv.null = v.Tag == "!!null"
			cv.value = v.Value
		case yaml.SequenceNode:
			items := make([]string, 0, len(v.Content))
			for _, item := range v.Content {
				if item.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("line %d: key %q: list items must be scalars", item.Line, key)
				}
				items = append(items, item.Value)
			}
			cv.value = strings.Join(items, ",")
		default:
			return nil, fmt.Errorf("line %d: key %q: want a scalar or a list", v.Line, key)
		}
		out = append(out, cv)
	}
	return out, nil
}
