// OBS1: add one job with Node BullMQ 5 traced by bullmq-otel; print the job and the spans.
// Usage: node otel_produce.cjs <redis-url> <prefix> <queue>
const { setUpTracing, spansOf } = require('./otel_common.cjs');
const exporter = setUpTracing();
const { Queue } = require('bullmq');
const { BullMQOtel } = require('bullmq-otel');
const IORedis = require('ioredis');

const [url, prefix, name] = process.argv.slice(2);

(async () => {
  const connection = new IORedis(url, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection, prefix, telemetry: new BullMQOtel('node-producer') });
  const job = await queue.add('traced', { from: 'node' });
  const raw = await connection.hget(`${prefix}:${name}:${job.id}`, 'opts');
  await queue.close();
  await connection.quit();
  console.log(JSON.stringify({ id: job.id, opts: JSON.parse(raw), spans: spansOf(exporter) }));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
