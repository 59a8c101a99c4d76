package dlq

import "github.com/rs/zerolog"

var nopLog = zerolog.Nop()
