// Tracing set-up shared by the OBS1 interop scripts: a tracer provider exporting to memory,
// the W3C trace-context propagator, and the spans as plain JSON.
const { trace, propagation } = require('@opentelemetry/api');
const { W3CTraceContextPropagator } = require('@opentelemetry/core');
const {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} = require('@opentelemetry/sdk-trace-base');

function setUpTracing() {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  trace.setGlobalTracerProvider(provider);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  return exporter;
}

function spansOf(exporter) {
  return exporter.getFinishedSpans().map((span) => {
    const parent = span.parentSpanContext || null;
    return {
      name: span.name,
      kind: span.kind,
      traceId: span.spanContext().traceId,
      spanId: span.spanContext().spanId,
      parentSpanId: parent ? parent.spanId : span.parentSpanId || null,
    };
  });
}

module.exports = { setUpTracing, spansOf };
