package consumer

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// clientLog makes the Kafka client's own trouble visible: its warnings
// and errors (a group join failing, say) go to the pipeline's log, and
// failed broker connections are counted (kafka_errors "connect") and
// logged, all rate-limited per message.
type clientLog struct{ p *Pipeline }

var (
	_ kgo.Logger            = clientLog{}
	_ kgo.HookBrokerConnect = clientLog{}
)

// Level is Warn: the client's info and debug lines describe normal work.
func (clientLog) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (l clientLog) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lvl := slog.LevelWarn
	if level == kgo.LogLevelError {
		lvl = slog.LevelError
	}
	l.p.logs.emit(lvl, "kafka-client:"+msg, "kafka client: "+msg, append(keyvals, "topic", l.p.cfg.InputTopic))
}

func (l clientLog) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	l.p.stats.countKafkaError("connect")
	l.p.logs.warn("connect", "cannot connect to broker",
		"broker", net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port))), "topic", l.p.cfg.InputTopic, "err", err)
}
