-- OBS1: the trace context of an outbox append (propagation headers as JSON text), so the
-- publish and delivery spans can link to the trace that wrote the event. NULL when the
-- appender was not tracing; adding a nullable column rewrites nothing.
ALTER TABLE portside_outbox_events ADD COLUMN trace_context text;
