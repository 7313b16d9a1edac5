// Tracing set-up shared by the OBS1 interop scripts: a tracer provider exporting to a list
// in memory, the W3C trace-context propagator, and the spans as plain JSON.
const { trace, propagation } = require('@opentelemetry/api');
const { ExportResultCode, W3CTraceContextPropagator } = require('@opentelemetry/core');
const { BasicTracerProvider, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');

// Keeps every finished span (the SDK's own in-memory exporter does the same).
class RecordingExporter {
  constructor() {
    this.finished = [];
  }
  export(spans, done) {
    this.finished.push(...spans);
    done({ code: ExportResultCode.SUCCESS });
  }
  shutdown() {
    return Promise.resolve();
  }
  getFinishedSpans() {
    return this.finished;
  }
}

function setUpTracing() {
  const exporter = new RecordingExporter();
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
