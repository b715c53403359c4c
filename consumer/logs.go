package consumer

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// logLimiter rate-limits hot-path log lines per kind (dead letters, fetch
// errors, suppressions): hostile input or a broken broker must not turn the
// log into a second copy of the stream. Lines over the limit are counted and
// the count is reported with the next line that passes.
type logLimiter struct {
	log   *slog.Logger
	every time.Duration

	mu    sync.Mutex
	kinds map[string]*logBucket
}

type logBucket struct {
	last       time.Time
	suppressed int64
}

// logBurstInterval: at most one line per kind per interval.
const logBurstInterval = time.Second

func newLogLimiter(log *slog.Logger) *logLimiter {
	return &logLimiter{log: log, every: logBurstInterval, kinds: map[string]*logBucket{}}
}

func (l *logLimiter) allow(kind string) (ok bool, suppressed int64) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.kinds[kind]
	if b == nil {
		b = &logBucket{}
		l.kinds[kind] = b
	}
	if now.Sub(b.last) < l.every {
		b.suppressed++
		return false, 0
	}
	b.last, suppressed, b.suppressed = now, b.suppressed, 0
	return true, suppressed
}

func (l *logLimiter) emit(level slog.Level, kind, msg string, args []any) {
	ok, suppressed := l.allow(kind)
	if !ok {
		return
	}
	if suppressed > 0 {
		args = append(args, "suppressed_since_last", suppressed)
	}
	l.log.Log(context.Background(), level, msg, args...)
}

func (l *logLimiter) warn(kind, msg string, args ...any) { l.emit(slog.LevelWarn, kind, msg, args) }
func (l *logLimiter) info(kind, msg string, args ...any) { l.emit(slog.LevelInfo, kind, msg, args) }
