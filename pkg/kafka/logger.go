package kafka

import (
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
)

// logger adapts zerolog to franz-go's Logger. The client's info chatter
// (group joins, metadata) is logged at debug; its warnings and errors keep
// their level.
type logger struct{ log zerolog.Logger }

func (l logger) Level() kgo.LogLevel {
	switch l.log.GetLevel() {
	case zerolog.TraceLevel, zerolog.DebugLevel:
		return kgo.LogLevelDebug
	case zerolog.InfoLevel, zerolog.WarnLevel:
		return kgo.LogLevelWarn
	default:
		return kgo.LogLevelError
	}
}

func (l logger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var e *zerolog.Event
	switch level {
	case kgo.LogLevelError:
		e = l.log.Error()
	case kgo.LogLevelWarn:
		e = l.log.Warn()
	default:
		e = l.log.Debug()
	}
	e.Fields(keyvals).Msg(msg)
}
