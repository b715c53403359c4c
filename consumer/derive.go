package consumer

import "log/slog"

// withDerived returns c with the defaults that depend on other fields
// filled in: the changelog topic named after the group, the default logger.
func (c Config) withDerived() Config {
	if c.ChangelogTopic == "" && !c.DisableChangelog {
		c.ChangelogTopic = c.Group + ".state-changelog"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
