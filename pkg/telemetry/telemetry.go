// Package telemetry sets up what every service reports about itself: JSON
// logs with zerolog, traces with OpenTelemetry (carried through Kafka record
// headers by franz-go's kotel plugin), and a Prometheus registry.
package telemetry

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"github.com/twmb/franz-go/plugin/kprom"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
)

// Logger writes JSON lines to stdout tagged with the service name. level is
// a zerolog level name (debug, info, warn, error).
func Logger(service, level string) zerolog.Logger {
	return newLogger(os.Stdout, service, level)
}

func newLogger(w io.Writer, service, level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("service", service).Logger()
}

// Telemetry is a service's tracer provider and metrics registry.
type Telemetry struct {
	Tracer   *sdktrace.TracerProvider
	Registry *prometheus.Registry
	kotel    *kotel.Kotel
	kprom    *kprom.Metrics
}

// Propagator carries W3C trace context (traceparent) in Kafka headers and
// HTTP requests.
var Propagator = propagation.TraceContext{}

// New sets up tracing and metrics for service. Spans are exported with OTLP
// over HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise they are
// still created, so trace ids reach the delivery log and receivers.
func New(ctx context.Context, service string) (*Telemetry, error) {
	res := resource.NewSchemaless(semconv.ServiceName("hookline-" + service))
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if os.Getenv("OTEL_TRACES_SAMPLER") == "" {
		// Recording a span for every record costs more than matching it.
		// Unsampled spans still carry trace ids into Kafka headers, the
		// delivery log and traceparent; OTEL_TRACES_SAMPLER overrides this.
		opts = append(opts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))))
	}
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("otlp exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(Propagator)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	kp := kprom.NewMetrics("hookline_kafka", kprom.Registerer(reg), kprom.Gatherer(reg))
	ko := kotel.NewKotel(kotel.WithTracer(kotel.NewTracer(kotel.TracerProvider(tp), kotel.TracerPropagator(Propagator))))
	return &Telemetry{Tracer: tp, Registry: reg, kotel: ko, kprom: kp}, nil
}

// KafkaHooks instruments a franz-go client: spans for produce and consume,
// trace context in record headers, and client metrics. Only one client
// per service may carry the metrics hook, so hooks for further clients
// come from TraceHooks.
func (t *Telemetry) KafkaHooks() kgo.Opt {
	return kgo.WithHooks(append(t.kotel.Hooks(), t.kprom)...)
}

// TraceHooks instruments a franz-go client with tracing only.
func (t *Telemetry) TraceHooks() kgo.Opt { return kgo.WithHooks(t.kotel.Hooks()...) }

// Shutdown flushes spans.
func (t *Telemetry) Shutdown(ctx context.Context) error { return t.Tracer.Shutdown(ctx) }
